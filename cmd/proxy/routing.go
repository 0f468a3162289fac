package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// router is the proxy's Router and what it needs: the service connection to
// the warehouse, the executor of rollup queries and the build catalog it
// follows.
type router struct {
	*routing.Router
	pool   *pgxpool.Pool
	exec   *jobs.ProxyExecutor
	loaded atomic.Bool
}

// startRouter builds the router with an empty catalog and, in the
// background, loads the tables' columns from the warehouse (retrying while
// it is unreachable), then follows the build catalog: every change of a
// rollup's state becomes a new catalog snapshot. Until the first snapshot
// every statement passes through and /readyz says not ready.
func startRouter(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, b *builds) (*router, error) {
	pool, err := pgxpool.New(ctx, cfg.Warehouse.DSN)
	if err != nil {
		return nil, err
	}
	// Workers over NATS when nats.url names a shared server; else this
	// process's DuckDB, over the files in place (file://) or a local cache
	// of them (s3://).
	exec, err := jobs.NewProxyExecutor(ctx, cfg, b.Node().Conn, b.View(), log)
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
	r := &router{
		Router: routing.NewRouter(&rewrite.Catalog{}, routing.Options{
			Executor:   cached,
			RollupOnly: cfg.Routing.RollupOnly,
			Privileges: routing.NewPrivileges(pool, cfg.Routing.PrivilegeCacheTTL.Std(), log),
			Statuses:   func() []routing.RollupStatus { return rollupStatuses(b.Rollups()) },
			Registerer: reg,
		}),
		pool: pool,
		exec: exec,
	}
	go r.follow(ctx, cfg, log, b)
	return r, nil
}

// follow loads the warehouse's tables once, then publishes a catalog
// snapshot at every change of the build catalog.
func (r *router) follow(ctx context.Context, cfg *config.Config, log *slog.Logger, b *builds) {
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
		cat, err := routing.NewCatalog(cfg, tables, bytewise)
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
		case <-ctx.Done():
			return
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

func rollupStatuses(in []jobs.Status) []routing.RollupStatus {
	out := make([]routing.RollupStatus, 0, len(in))
	for _, s := range in {
		rs := routing.RollupStatus{Name: s.Name, Status: string(s.Status), Version: s.Version, Rows: s.Rows, Bytes: s.Bytes}
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

func (r *router) Close() {
	r.exec.Close()
	r.pool.Close()
}
