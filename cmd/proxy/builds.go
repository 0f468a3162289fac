package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/api"
	"github.com/pgrollup/pgrollup/jobs/builds"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

// buildSystem is the rollup build machinery of one pgrollup process: the job system
// (embedded NATS unless nats.url is set), the catalog view, the scheduler and,
// unless --build-worker=false, an in-process worker.
type buildSystem struct {
	node    *node.Node
	view    *catalog.View
	api     *api.Rollups
	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	log     *slog.Logger
	storage rollup.Storage
	files   *integrity.Checker

	schedMu     sync.Mutex
	sched       *builds.Scheduler
	schedCancel context.CancelFunc // stops sched's Run
}

// startBuilds starts the build machinery with an in-process worker; Close stops it.
func startBuilds(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*buildSystem, error) {
	return startBuildsWith(ctx, cfg, log, reg, true)
}

// startBuildsWith is startBuilds with the in-process worker optional. Without
// buildWorker the process schedules builds and follows the catalog but takes no
// build job: the pgrollup-worker processes on the shared NATS run them.
func startBuildsWith(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, buildWorker bool) (*buildSystem, error) {
	if !buildWorker && cfg.NATS.URL == "" {
		// The embedded server accepts in-process connections only: no
		// pgrollup-worker could ever reach its queue, so nothing would build.
		return nil, errors.New("--build-worker=false needs nats.url: with the embedded NATS server no pgrollup-worker can take the build jobs")
	}
	targets, err := builds.Targets(cfg)
	if err != nil {
		return nil, err
	}
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	n, err := node.Open(ctx, cfg, "pgrollup", log)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &buildSystem{node: n, runCtx: runCtx, cancel: cancel, log: log, storage: storage}
	fail := func(err error) (*buildSystem, error) {
		cancel()
		n.Close()
		return nil, err
	}
	if b.view, err = n.Catalog.Watch(runCtx); err != nil {
		return fail(err)
	}
	if b.sched, err = b.newScheduler(cfg, targets); err != nil {
		return fail(err)
	}
	b.api = &api.Rollups{Scheduler: b.sched, Lookup: b.view.Get}
	metrics, err := builds.NewMetrics(reg)
	if err == nil {
		err = api.RegisterGauges(reg, b.api.Statuses)
	}
	if err != nil {
		return fail(fmt.Errorf("metrics: %w", err))
	}
	fileMetrics, err := integrity.NewMetrics(reg)
	if err != nil {
		return fail(fmt.Errorf("metrics: %w", err))
	}
	host, _ := os.Hostname()
	b.files = integrity.New(integrity.Options{Catalog: n.Catalog, View: b.view, Metrics: fileMetrics,
		Name: fmt.Sprintf("pgrollup %s-%d", host, os.Getpid()), Log: log.With("component", "integrity")})
	b.sched.SetFiles(b.files)
	if buildWorker {
		if err := ensureDir(cfg.Worker.CacheDir); err != nil {
			return fail(err)
		}
		worker := builds.NewWorker(builds.WorkerOptions{
			JetStream: n.JetStream, Catalog: n.Catalog, Concurrency: cfg.Worker.Concurrency,
			Builder: &rollup.Builder{DSN: cfg.Warehouse.DSN, Storage: storage, TempDir: cfg.Worker.CacheDir,
				MemoryLimit: cfg.Worker.DuckDBMemoryLimit.Int64(), Log: log},
			Log: log.With("component", "worker"), Metrics: metrics,
		})
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := worker.Run(runCtx); err != nil {
				log.Error("build worker stopped", "err", err)
			}
		}()
	} else {
		log.Info("no in-process build worker (--build-worker=false): pgrollup-worker processes run the builds")
	}
	b.runScheduler(b.sched)
	return b, nil
}

// followFiles starts dropping the files of broken versions from what this
// process holds, once everything that holds them has registered with Files.
func (b *buildSystem) followFiles() {
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.files.Follow(b.runCtx) }()
}

func (b *buildSystem) newScheduler(cfg *config.Config, targets []builds.Target) (*builds.Scheduler, error) {
	return builds.NewScheduler(builds.SchedulerOptions{
		JetStream: b.node.JetStream, Catalog: b.node.Catalog, Targets: targets,
		WarehouseDSN: cfg.Warehouse.DSN, Storage: b.storage, Files: b.files, Log: b.log.With("component", "scheduler"),
	})
}

// runScheduler runs sched until Close or until a reload replaces it.
func (b *buildSystem) runScheduler(sched *builds.Scheduler) {
	ctx, cancel := context.WithCancel(b.runCtx)
	b.schedMu.Lock()
	b.sched, b.schedCancel = sched, cancel
	b.schedMu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		select { // schedule against a loaded catalog, so statuses are right from the start
		case <-b.view.Ready():
		case <-ctx.Done():
			return
		}
		if err := sched.Run(ctx); err != nil {
			b.log.Error("build scheduler stopped", "err", err)
		}
	}()
}

// reconfigure schedules the rollups of a reloaded configuration: a new
// scheduler records new and changed definitions and queues their first
// builds, and retires those no longer configured; the old one stops. A
// build in progress carries on.
func (b *buildSystem) reconfigure(cfg *config.Config) error {
	targets, err := builds.Targets(cfg)
	if err != nil {
		return err
	}
	sched, err := b.newScheduler(cfg, targets)
	if err != nil {
		return err
	}
	b.schedMu.Lock()
	stop := b.schedCancel
	b.schedMu.Unlock()
	stop()
	b.api.SetScheduler(sched)
	b.runScheduler(sched)
	return nil
}

// APIHandler serves GET /api/rollups, GET /api/rollups/{name} and
// POST /api/rollups/{name}/refresh.
func (b *buildSystem) APIHandler() http.Handler { return b.api.Handler() }

// Ready reports whether the catalog is loaded.
func (b *buildSystem) Ready() bool {
	select {
	case <-b.view.Ready():
		return true
	default:
		return false
	}
}

// Rollups returns the status of every configured rollup (SHOW ROLLUPS).
func (b *buildSystem) Rollups() []api.Status { return b.api.Statuses() }

// Node is the NATS connection and JetStream of this process.
func (b *buildSystem) Node() *node.Node { return b.node }

// Files checks the rollup files this process reads and acts on broken ones.
func (b *buildSystem) Files() *integrity.Checker { return b.files }

// View is the live catalog, for the rewriter's snapshot.
func (b *buildSystem) View() *catalog.View { return b.view }

// Close stops the scheduler and the in-process worker, if any (a build in progress is
// handed back to the queue), then the job system.
func (b *buildSystem) Close(ctx context.Context) error {
	b.cancel()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(ctx.Err(), b.node.Close())
	case <-time.After(time.Minute):
	}
	return b.node.Close()
}

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("worker.cache_dir: %w", err)
	}
	return nil
}
