package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/routing"
)

// router is the proxy's Router and what it needs: the service connection to
// the warehouse and the in-process DuckDB.
type router struct {
	*routing.Router
	pool   *pgxpool.Pool
	duck   *routing.DuckDB
	loaded atomic.Bool
}

// startRouter builds the router with an empty catalog and loads the real
// one (the tables' columns from the warehouse) in the background, retrying
// while the warehouse is unreachable: until then every statement passes
// through and /readyz says not ready.
func startRouter(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*router, error) {
	pool, err := pgxpool.New(ctx, cfg.Warehouse.DSN)
	if err != nil {
		return nil, err
	}
	duck, err := routing.OpenDuckDB(cfg.Worker.DuckDBMemoryLimit.Int64())
	if err != nil {
		pool.Close()
		return nil, err
	}
	r := &router{
		Router: routing.NewRouter(&rewrite.Catalog{}, routing.Options{
			Executor:   duck,
			RollupOnly: cfg.Routing.RollupOnly,
			Privileges: routing.NewPrivileges(pool, cfg.Routing.PrivilegeCacheTTL.Std(), log),
			Registerer: reg,
		}),
		pool: pool,
		duck: duck,
	}
	go r.load(ctx, cfg, log)
	return r, nil
}

func (r *router) load(ctx context.Context, cfg *config.Config, log *slog.Logger) {
	for {
		cat, err := loadCatalog(ctx, r.pool, cfg)
		if err == nil {
			r.SetCatalog(cat)
			r.loaded.Store(true)
			log.Info("catalog loaded", "rollups", len(cat.Rollups), "tables", len(cat.Tables))
			return
		}
		log.Warn("cannot load the catalog from the warehouse; retrying in 5s", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

func loadCatalog(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config) (*rewrite.Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tables, err := routing.LoadTables(ctx, pool, cfg)
	if err != nil {
		return nil, err
	}
	bytewise, err := routing.TextSortsBytewise(ctx, pool)
	if err != nil {
		return nil, err
	}
	return routing.NewCatalog(cfg, tables, bytewise)
}

// Ready reports whether the catalog is loaded.
func (r *router) Ready() bool { return r.loaded.Load() }

func (r *router) Close() {
	r.duck.Close()
	r.pool.Close()
}
