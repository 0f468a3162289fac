package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/local"
	"github.com/pgrollup/pgrollup/jobs/remote"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// ProxyExecutor is how a proxy answers rollup routes under its configuration,
// with the file mapping routing.ApplyBuilds must use for it:
//
//   - nats.url set (workers scaled out): a remote.Client; decisions carry
//     storage keys, workers resolve them.
//   - embedded NATS and file:// storage (the single-binary default): DuckDB
//     in this process over the files in place, each checked before use.
//   - embedded NATS and s3:// storage: DuckDB in this process over a Parquet
//     cache in worker.cache_dir, prefetching newly activated versions.
type ProxyExecutor struct {
	executor.Executor
	// LocalPath is the localPath argument of routing.ApplyBuilds.
	LocalPath func(key string) (string, bool)
	// Remote reports whether queries go to workers over NATS.
	Remote bool
	close  []func()
}

// NewProxyExecutor chooses and opens the executor. nc is the proxy's NATS
// connection; view is the catalog view whose new versions the s3 cache
// prefetches (nil: no prefetch); files checks the files this process reads
// and drops those of broken versions from its cache and DuckDB (nil: no
// checks). The executor lives until Close.
func NewProxyExecutor(ctx context.Context, cfg *config.Config, nc *nats.Conn, view *catalog.View, files *integrity.Checker, log *slog.Logger) (*ProxyExecutor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.NATS.URL != "" {
		if nc == nil {
			return nil, errors.New("rollup executor: nats.url is set but there is no NATS connection")
		}
		c := remote.NewClient(nc, remote.ClientOptions{Timeout: cfg.Routing.WorkerTimeout.Std(), Log: log})
		return &ProxyExecutor{Executor: c, LocalPath: routing.StorageKeys, Remote: true}, nil
	}
	db, err := duck.Open(cfg.Worker.DuckDBMemoryLimit.Int64(), log)
	if err != nil {
		return nil, err
	}
	if dir, ok := cfg.Storage.LocalDir(); ok {
		fsys, err := rollup.NewFileStorage(dir)
		var c *cache.Cache
		if err == nil {
			c, err = cache.New(cache.Options{Storage: fsys, Integrity: files, Log: log})
		}
		if err != nil {
			db.Close()
			return nil, err
		}
		files.OnBroken(func(keys []string) { db.Forget(cachePaths(c, keys)) })
		return &ProxyExecutor{Executor: local.NewInPlace(c, db, fsys.Dir()), LocalPath: routing.LocalFiles(dir),
			close: []func(){func() { db.Close() }}}, nil
	}
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err == nil {
		err = os.MkdirAll(cfg.Worker.CacheDir, 0o755)
	}
	var c *cache.Cache
	if err == nil {
		c, err = cache.New(cache.Options{Dir: cfg.Worker.CacheDir, MaxBytes: cfg.Worker.CacheMaxBytes.Int64(), Storage: storage, Integrity: files, Log: log})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	files.OnBroken(func(keys []string) {
		db.Forget(cachePaths(c, keys))
		c.Forget(keys)
	})
	p := &ProxyExecutor{
		Executor:  local.New(c, db, cfg.Worker.Concurrency),
		LocalPath: routing.StorageKeys,
	}
	if view != nil {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); c.Follow(fctx, view) }()
		p.close = append(p.close, func() { cancel(); <-done })
	}
	p.close = append(p.close, c.Close, func() { db.Close() })
	return p, nil
}

// cachePaths are the local files of keys, as DuckDB reads them.
func cachePaths(c *cache.Cache, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = c.Path(k)
	}
	return out
}

// Close releases what the executor opened; rows still open must be closed first.
func (p *ProxyExecutor) Close() {
	for _, f := range p.close {
		f()
	}
	p.close = nil
}
