package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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

// Builds is the rollup build machinery of one pgrollup proxy: the job system
// (embedded NATS unless nats.url is set), the catalog view, the scheduler and,
// unless --build-worker=false, an in-process worker.
type Builds struct {
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

// StartBuilds starts the build machinery, registering its metrics on reg;
// Close stops it. Without buildWorker the process schedules builds and
// follows the catalog but takes no build job: the pgrollup-worker processes
// on the shared NATS run them.
func StartBuilds(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, buildWorker bool) (*Builds, error) {
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
	n, err := node.Open(ctx, cfg, "pgrollup")
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &Builds{node: n, runCtx: runCtx, cancel: cancel, log: log, storage: storage}
	fail := func(err error) (*Builds, error) {
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
	m, err := newMetrics(reg)
	if err == nil {
		err = api.RegisterGauges(reg, b.api.Statuses)
	}
	if err != nil {
		return fail(err)
	}
	b.files = newChecker(n, b.view, m, "pgrollup", "", log)
	b.sched.SetFiles(b.files)
	if buildWorker {
		if err := ensureCacheDir(cfg); err != nil {
			return fail(err)
		}
		worker := newBuildWorker(cfg, n, storage, m, workerSettings{log: log.With("component", "worker"), builderLog: log})
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

// FollowFiles starts dropping the files of broken versions from what this
// process holds, once everything that holds them has registered with Files.
func (b *Builds) FollowFiles() {
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.files.Follow(b.runCtx) }()
}

// newScheduler is a scheduler of targets, which scrubs the files with b's
// checker.
func (b *Builds) newScheduler(cfg *config.Config, targets []builds.Target) (*builds.Scheduler, error) {
	return builds.NewScheduler(builds.SchedulerOptions{
		JetStream: b.node.JetStream, Catalog: b.node.Catalog, Targets: targets,
		WarehouseDSN: cfg.Warehouse.DSN, Storage: b.storage, Files: b.files, Log: b.log.With("component", "scheduler"),
	})
}

// runScheduler runs sched until Close or until a reload replaces it.
func (b *Builds) runScheduler(sched *builds.Scheduler) {
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

// Reconfigure schedules the rollups of a reloaded configuration: a new
// scheduler records new and changed definitions and queues their first
// builds, and retires those no longer configured; the old one stops. A
// build in progress carries on.
func (b *Builds) Reconfigure(cfg *config.Config) error {
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
func (b *Builds) APIHandler() http.Handler { return b.api.Handler() }

// Ready reports whether the catalog is loaded.
func (b *Builds) Ready() bool {
	select {
	case <-b.view.Ready():
		return true
	default:
		return false
	}
}

// Rollups returns the status of every configured rollup (SHOW ROLLUPS).
func (b *Builds) Rollups() []api.Status { return b.api.Statuses() }

// Node is the NATS connection and JetStream of this process.
func (b *Builds) Node() *node.Node { return b.node }

// Files checks the rollup files this process reads and acts on broken ones.
func (b *Builds) Files() *integrity.Checker { return b.files }

// View is the live catalog, for the rewriter's snapshot.
func (b *Builds) View() *catalog.View { return b.view }

// Close stops the scheduler and the in-process worker, if any (a build in progress is
// handed back to the queue), then the job system.
func (b *Builds) Close(ctx context.Context) error {
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
