package serve

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

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
//   - nats.url set (workers scaled out), routing.answer_on:
//     auto: workers that take the query within autoAcceptTimeout, else
//     DuckDB in this process (preferWorkers); workers: a remote.Client only;
//     local: DuckDB in this process only. Decisions carry storage keys,
//     which workers and this process's cache resolve.
//   - embedded NATS and file:// storage (the single-binary default): DuckDB
//     in this process over the files in place, each checked before use.
//   - embedded NATS and s3:// storage: DuckDB in this process over a Parquet
//     cache in worker.cache_dir, prefetching newly activated versions.
type proxyExecutor struct {
	executor.Executor
	// LocalPath is the localPath argument of routing.ApplyBuilds.
	LocalPath func(key string) (string, bool)
	// Details are readiness details: rollup queries no worker answered.
	Details func() []string
	close   []func()
}

// newProxyExecutor chooses and opens the executor. nc is the proxy's NATS
// connection; view is the catalog view whose new versions the s3 cache
// prefetches (nil: no prefetch); files checks the files this process reads
// and drops those of broken versions from its cache and DuckDB (nil: no
// checks); reg takes the executor's metrics (nil: none). The executor lives
// until Close.
func newProxyExecutor(ctx context.Context, cfg *config.Config, nc *nats.Conn, view *catalog.View, files *integrity.Checker, reg prometheus.Registerer, log *slog.Logger) (*proxyExecutor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.NATS.URL == "" || cfg.Routing.AnswerOn == config.AnswerLocal {
		// Without nats.url no worker can reach this process's queries.
		return openLocalExecutor(ctx, cfg, view, files, false, log)
	}
	if nc == nil {
		return nil, errors.New("rollup executor: nats.url is set but there is no NATS connection")
	}
	o := remote.ClientOptions{Timeout: cfg.Routing.WorkerTimeout.Std(), Release: app.Release(), Log: log}
	if cfg.Routing.AnswerOn == config.AnswerWorkers {
		p, err := newPreferWorkers(remote.NewClient(nc, o), nil, reg, log)
		if err != nil {
			return nil, err
		}
		return &proxyExecutor{Executor: p, LocalPath: routing.StorageKeys, Details: p.Details}, nil
	}
	// auto: this process answers what no worker takes within a short
	// deadline. It reads the files only then, so its s3 cache prefetches
	// nothing: the workers' caches hold what they answer.
	o.AcceptTimeout = autoAcceptTimeout
	local, err := openLocalExecutor(ctx, cfg, nil, files, true, log)
	if err != nil {
		return nil, err
	}
	p, err := newPreferWorkers(remote.NewClient(nc, o), local.Executor, reg, log)
	if err != nil {
		local.Close()
		return nil, err
	}
	local.Executor, local.Details = p, p.Details
	return local, nil
}

// openLocalExecutor opens DuckDB in this process over the rollup storage:
// files read in place from a file:// storage, else a cache in
// worker.cache_dir that prefetches the new versions of view (nil: none).
// With keys, queries name their files by storage key even in place, as
// they must when workers may answer them instead.
func openLocalExecutor(ctx context.Context, cfg *config.Config, view *catalog.View, files *integrity.Checker, keys bool, log *slog.Logger) (*proxyExecutor, error) {
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
	if inPlace && !keys {
		return &proxyExecutor{Executor: local.NewInPlace(f.Cache, f.DB, dir), LocalPath: routing.LocalFiles(dir),
			close: []func(){f.Close}}, nil
	}
	concurrency := cfg.Worker.Concurrency
	if inPlace {
		concurrency = 0 // as NewInPlace: files read in place need no slots
	}
	p := &proxyExecutor{
		Executor:  local.New(f.Cache, f.DB, concurrency),
		LocalPath: routing.StorageKeys,
	}
	if view != nil && !inPlace {
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
