package serve

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/local"
	"github.com/pgrollup/pgrollup/jobs/remote"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// proxyExecutor is how a proxy answers rollup routes under its configuration,
// with the file mapping routing.ApplyBuilds must use for it:
//
//   - nats.url set (workers scaled out): a remote.Client; decisions carry
//     storage keys, workers resolve them.
//   - embedded NATS and file:// storage (the single-binary default): DuckDB
//     in this process over the files in place, each checked before use.
//   - embedded NATS and s3:// storage: DuckDB in this process over a Parquet
//     cache in worker.cache_dir, prefetching newly activated versions.
type proxyExecutor struct {
	executor.Executor
	// LocalPath is the localPath argument of routing.ApplyBuilds.
	LocalPath func(key string) (string, bool)
	close     []func()
}

// newProxyExecutor chooses and opens the executor. nc is the proxy's NATS
// connection; view is the catalog view whose new versions the s3 cache
// prefetches (nil: no prefetch); files checks the files this process reads
// and drops those of broken versions from its cache and DuckDB (nil: no
// checks). The executor lives until Close.
func newProxyExecutor(ctx context.Context, cfg *config.Config, nc *nats.Conn, view *catalog.View, files *integrity.Checker, log *slog.Logger) (*proxyExecutor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.NATS.URL != "" {
		if nc == nil {
			return nil, errors.New("rollup executor: nats.url is set but there is no NATS connection")
		}
		c := remote.NewClient(nc, remote.ClientOptions{Timeout: cfg.Routing.WorkerTimeout.Std(), Log: log})
		return &proxyExecutor{Executor: c, LocalPath: routing.StorageKeys}, nil
	}
	// A file:// storage is read in place; another is cached in
	// worker.cache_dir.
	dir, inPlace := cfg.Storage.LocalDir()
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err == nil && !inPlace {
		err = os.MkdirAll(cfg.Worker.CacheDir, 0o755)
	}
	if err != nil {
		return nil, err
	}
	f, err := app.OpenCachedFiles(cfg, storage, files, log, log)
	if err != nil {
		return nil, err
	}
	if inPlace {
		return &proxyExecutor{Executor: local.NewInPlace(f.Cache, f.DB, dir), LocalPath: routing.LocalFiles(dir),
			close: []func(){f.Close}}, nil
	}
	p := &proxyExecutor{
		Executor:  local.New(f.Cache, f.DB, cfg.Worker.Concurrency),
		LocalPath: routing.StorageKeys,
	}
	if view != nil {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); f.Cache.Follow(fctx, view) }()
		p.close = append(p.close, func() { cancel(); <-done })
	}
	p.close = append(p.close, f.Close)
	return p, nil
}

// Close releases what the executor opened; rows still open must be closed first.
func (p *proxyExecutor) Close() {
	for _, f := range p.close {
		f()
	}
	p.close = nil
}
