package app

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/builds"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

// ensureCacheDir makes worker.cache_dir, where builds put their temporary
// files and the cache its copies.
func ensureCacheDir(cfg *config.Config) error {
	if err := os.MkdirAll(cfg.Worker.CacheDir, 0o755); err != nil {
		return fmt.Errorf("worker.cache_dir: %w", err)
	}
	return nil
}

// newChecker checks the rollup files this process reads. binary and name
// say who found a broken file in the catalog's record of it; an empty name
// is host-pid.
func newChecker(n *node.Node, view *catalog.View, m *metrics, binary, name string, log *slog.Logger) *integrity.Checker {
	if name == "" {
		host, _ := os.Hostname()
		name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return integrity.New(integrity.Options{Catalog: n.Catalog, View: view, Metrics: m.files,
		Name: binary + " " + name, Log: log.With("component", "integrity")})
}

// workerSettings are what a process's build worker is told beside the config.
type workerSettings struct {
	// ackWait and name are builds.WorkerOptions's; zero takes their defaults.
	ackWait time.Duration
	name    string
	// log is the worker's; the builder logs to builderLog.
	log, builderLog *slog.Logger
}

// newBuildWorker returns a build worker taking jobs from n's queue with
// worker.concurrency builds at a time, each in its own DuckDB limited to
// worker.duckdb_memory_limit, with its temporary files in worker.cache_dir.
func newBuildWorker(cfg *config.Config, n *node.Node, storage rollup.Storage, m *metrics, o workerSettings) *builds.Worker {
	return builds.NewWorker(builds.WorkerOptions{
		JetStream: n.JetStream, Catalog: n.Catalog, Concurrency: cfg.Worker.Concurrency,
		AckWait: o.ackWait, Name: o.name, Log: o.log, Metrics: m.builds,
		Builder: &rollup.Builder{DSN: cfg.Warehouse.DSN, Storage: storage, TempDir: cfg.Worker.CacheDir,
			MemoryLimit: cfg.Worker.DuckDBMemoryLimit.Int64(), Log: o.builderLog},
	})
}
