package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/jobs/remote"
	"github.com/pgrollup/pgrollup/rollup"
)

// WorkerOptions are pgrollup-worker's command-line settings.
type WorkerOptions struct {
	// Name identifies the worker in the catalog and logs; empty is
	// host-pid-random.
	Name string
	// AckWait is how long a silent worker keeps a build job before it is
	// redelivered; 0 is builds.DefaultAckWait.
	AckWait time.Duration
	// Admin is the admin listener's address; "" runs without one.
	Admin string
	// AdminFromFlag: Admin was given with --admin-listen rather than taken
	// from the config.
	AdminFromFlag bool
}

// RunWorker runs pgrollup-worker until ctx ends: the admin listener first, so
// that health probes answer while NATS is still being reached, then the
// query server and the build worker.
func RunWorker(ctx context.Context, cfg *config.Config, o WorkerOptions, log *slog.Logger) error {
	reg := NewRegistry()
	// No catalog gauges: pgrollup_rollup_rows, _bytes and _age_seconds
	// describe the shared catalog, which every proxy exports already; a copy
	// per worker would only duplicate each rollup's series.
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}
	var ready readiness
	admin, err := startAdmin(o, cfg.Admin.Token, reg, ready.ready, log)
	if err != nil {
		return err
	}
	defer admin.stop()
	context.AfterFunc(ctx, ready.stop)

	err = work(ctx, cfg, o, m, reg, &ready, log)
	if err != nil && ctx.Err() != nil {
		// A signal while it was still connecting (to NATS, or the storage)
		// cut that short: a requested stop, not a failure.
		log.Info("pgrollup-worker stopped while starting", "err", err)
		return nil
	}
	return err
}

// work connects to NATS, answers queries and takes build jobs until ctx ends.
func work(ctx context.Context, cfg *config.Config, o WorkerOptions, m *metrics, reg prometheus.Registerer, ready *readiness, log *slog.Logger) error {
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	if err := ensureCacheDir(cfg); err != nil {
		return err
	}
	n, err := node.Open(ctx, cfg, "pgrollup-worker")
	if err != nil {
		return err
	}
	defer n.Close()
	q, err := serveQueries(ctx, cfg, n, storage, o.Name, m, log)
	if err != nil {
		return err
	}
	defer q.stop()
	if err := reg.Register(newQueryCollector(q.server.Stats, q.cache.Stats)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ready.set(n.Conn, q.view)
	w := newBuildWorker(cfg, n, storage, m, workerSettings{ackWait: o.AckWait, name: o.Name, log: log, builderLog: log})
	if err := w.Run(ctx); err != nil {
		return fmt.Errorf("build worker: %w", err)
	}
	return nil
}

// queries is the running query server and what it reads.
type queries struct {
	server *remote.Server
	cache  *cache.Cache
	view   *catalog.View
	stop   func()
}

// serveQueries answers rollup queries until ctx ends or stop is called; stop
// waits for the running queries (up to the drain timeout) and frees the
// DuckDB and the cache. The files it reads are checked against what their
// builds recorded; a broken one takes its version out of service, and the
// files of such versions are dropped from the cache and the DuckDB.
func serveQueries(ctx context.Context, cfg *config.Config, n *node.Node, storage rollup.Storage, name string, m *metrics, log *slog.Logger) (*queries, error) {
	ctx, cancel := context.WithCancel(ctx)
	view, err := n.Catalog.Watch(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	checker := newChecker(n, view, m, "pgrollup-worker", name, log)
	files, err := OpenCachedFiles(cfg, storage, checker, nil, log)
	if err != nil {
		cancel()
		return nil, err
	}
	var followed sync.WaitGroup
	followed.Go(func() { checker.Follow(ctx) })
	followed.Go(func() { files.Cache.Follow(ctx, view) })
	qs, err := remote.Serve(ctx, n.Conn, remote.ServerOptions{
		Cache: files.Cache, DuckDB: files.DB, Concurrency: cfg.Worker.Concurrency, Name: name, Release: Release(), Log: log,
	})
	if err != nil {
		cancel()
		followed.Wait()
		files.Close()
		return nil, err
	}
	return &queries{server: qs, cache: files.Cache, view: view, stop: func() {
		cancel()
		qs.Wait()
		followed.Wait()
		files.Close()
	}}, nil
}
