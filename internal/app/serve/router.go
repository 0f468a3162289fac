package serve

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/jobs/api"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// router is the proxy's Router and what it needs: the service connection to
// the warehouse, the executor of rollup queries and the build catalog it
// follows.
type router struct {
	*routing.Router
	pool *pgxpool.Pool
	exec *proxyExecutor
	// verifier checks a sample of hits; a reload changes its budget.
	verifier *routing.Verifier
	// stopWatch ends the context watch's polling before the pool closes.
	stopWatch context.CancelFunc
	loaded    atomic.Bool
	// reloads holds the latest reloaded configuration not yet applied.
	reloads chan *config.Config
	// misses records what the warehouse answered, for GET /api/misses.
	misses *routing.Misses
}

// startRouter builds the router with an empty catalog and, in the
// background, loads the tables' columns from the warehouse (retrying while
// it is unreachable), then follows the build catalog: every change of a
// rollup's state becomes a new catalog snapshot. Until the first snapshot
// every statement passes through and /readyz says not ready.
func startRouter(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, b *app.Builds) (*router, error) {
	pool, err := pgxpool.New(ctx, cfg.Warehouse.DSN)
	if err != nil {
		return nil, err
	}
	// Workers over NATS when nats.url names a shared server (and, unless
	// routing.answer_on says workers, this process's DuckDB when none
	// answers); else this process's DuckDB, over the files in place
	// (file://) or a local cache of them (s3://).
	exec, err := newProxyExecutor(ctx, cfg, b.Node().Conn, b.View(), b.Files(), reg, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	cached, err := routing.NewResultCache(exec, cfg.Routing.ResultCacheBytes.Int64(), reg)
	if err != nil {
		exec.Close()
		pool.Close()
		return nil, err
	}
	go warnTrustedAddress(ctx, pool, log)
	if rc, ok := cached.(*routing.ResultCache); ok {
		// Answers kept from a version taken out of service must not be served
		// again; decisions name the files as exec.LocalPath maps them.
		b.Files().OnBroken(func(keys []string) {
			files := make([]string, 0, len(keys))
			for _, k := range keys {
				if f, ok := exec.LocalPath(k); ok {
					files = append(files, f)
				}
			}
			rc.Forget(files)
		})
	}
	b.FollowFiles()
	watch := routing.NewContextWatch(pool, cfg.Routing.PrivilegeCacheTTL.Std(), log)
	watchCtx, stopWatch := context.WithCancel(ctx)
	go watch.Run(watchCtx)
	misses := routing.NewMisses(routing.DefaultMissShapes)
	verifier := newVerifier(cfg, pool, cached, b, reg, log)
	go verifier.Run(watchCtx)
	r := &router{
		Router: routing.NewRouter(&rewrite.Catalog{}, routing.Options{
			Executor:      cached,
			RollupOnly:    cfg.Routing.RollupOnly,
			FinishMaxRows: cfg.Routing.FinishMaxRows,
			Context:       watch,
			Statuses:      func() []routing.RollupStatus { return rollupStatuses(b.Rollups()) },
			Misses:        misses,
			Registerer:    reg,
			Verify:        verifier,
		}),
		misses:    misses,
		pool:      pool,
		exec:      exec,
		verifier:  verifier,
		stopWatch: stopWatch,
		reloads:   make(chan *config.Config, 1),
	}
	go r.follow(ctx, cfg, log, b)
	return r, nil
}

// follow loads the warehouse's tables, then publishes a catalog snapshot at
// every change of the build catalog and at every reloaded configuration.
func (r *router) follow(ctx context.Context, cfg *config.Config, log *slog.Logger, b *app.Builds) {
	var tables map[string]*rewrite.Table
	var bytewise bool
	for {
		var err error
		tables, bytewise, err = loadTables(ctx, r.pool, cfg)
		if err == nil {
			break
		}
		log.Warn("cannot read the tables from the warehouse; retrying in 5s", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	defs, err := rollup.Definitions(cfg)
	if err != nil {
		log.Error("rollup definitions", "err", err)
		return
	}
	view := b.View()
	select {
	case <-view.Ready():
	case <-ctx.Done():
		return
	}
	for {
		changed := view.Changed()
		cat, err := routing.NewServingCatalog(cfg, tables, bytewise)
		if err != nil {
			log.Error("catalog", "err", err)
			return
		}
		states := map[string]*rollup.State{}
		for _, d := range defs {
			if st := view.Get(d.Name, d.Identity()); st != nil {
				states[d.Name] = st
			}
		}
		routing.ApplyBuilds(cat, states, r.exec.LocalPath)
		r.SetCatalog(cat)
		if r.loaded.CompareAndSwap(false, true) {
			log.Info("catalog loaded", "rollups", len(cat.Rollups), "tables", len(cat.Tables))
		}
		select {
		case <-changed:
		case next := <-r.reloads:
			// Nothing changes unless all of the new configuration can be
			// applied: its tables' columns are read first.
			t, bw, err := loadTables(ctx, r.pool, next)
			if err != nil {
				log.Error("config reload: cannot read the tables from the warehouse; the running rollups stay", "err", err)
				continue
			}
			nextDefs, err := rollup.Definitions(next)
			if err != nil {
				log.Error("config reload: rollup definitions; the running rollups stay", "err", err)
				continue
			}
			if _, err := routing.NewServingCatalog(next, t, bw); err != nil {
				log.Error("config reload: catalog; the running rollups stay", "err", err)
				continue
			}
			cfg, tables, bytewise, defs = next, t, bw, nextDefs
			r.SetRollupOnly(cfg.Routing.RollupOnly)
			r.verifier.SetBudget(cfg.Routing.VerifyFraction, cfg.Routing.VerifyMaxPerMinute)
			log.Info("catalog reloaded", "rollups", len(defs), "tables", len(tables), "rollup_only", cfg.Routing.RollupOnly)
		case <-ctx.Done():
			return
		}
	}
}

// reload hands follow a reloaded configuration; a newer one replaces one
// not yet applied.
func (r *router) reload(cfg *config.Config) {
	for {
		select {
		case r.reloads <- cfg:
			return
		default:
		}
		select {
		case <-r.reloads:
		default:
		}
	}
}

func loadTables(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config) (map[string]*rewrite.Table, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tables, err := routing.LoadTables(ctx, pool, cfg)
	if err != nil {
		return nil, false, err
	}
	bytewise, err := routing.TextSortsBytewise(ctx, pool)
	return tables, bytewise, err
}

func rollupStatuses(in []api.Status) []routing.RollupStatus {
	out := make([]routing.RollupStatus, 0, len(in))
	for _, s := range in {
		rs := routing.RollupStatus{Name: s.Name, Status: string(s.Status), Version: s.Version, Rows: s.Rows, Bytes: s.Bytes, Window: s.Window}
		if s.BuiltAt != nil {
			rs.BuiltAt = *s.BuiltAt
		}
		if s.LastError != nil {
			rs.LastError = *s.LastError
		}
		out = append(out, rs)
	}
	return out
}

// Ready reports whether the first catalog snapshot is in place.
func (r *router) Ready() bool { return r.loaded.Load() }

// Close stops the context watch, then the executor and the service pool.
func (r *router) Close() {
	r.stopWatch()
	r.exec.Close()
	r.pool.Close()
}
