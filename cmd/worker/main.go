// Command pgrollup-worker builds rollups for a scaled-out pgrollup: it takes build jobs
// from NATS (nats.url must name the server the proxies use) with worker.concurrency
// builds at a time, each in its own DuckDB limited to worker.duckdb_memory_limit.
// It also answers the proxies' rollup queries (jobs.ServeQueries): worker.concurrency
// at a time on one shared DuckDB limited to worker.duckdb_memory_limit, over Parquet
// files cached under worker.cache_dir up to worker.cache_max_bytes.
//
// Usage:
//
//	pgrollup-worker --config FILE [--log-level LEVEL] [--name NAME]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pgrollup-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "pgrollup.yaml", "config file")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	name := fs.String("name", "", "worker name in the catalog and logs (default host-pid-random)")
	ackWait := fs.Duration("ack-wait", jobs.DefaultAckWait, "how long a silent worker keeps a job before it is redelivered; the same on every worker")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "pgrollup-worker: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.NATS.URL == "" {
		fmt.Fprintln(stderr, "pgrollup-worker: nats.url is empty: a separate worker needs the NATS server the proxies use (or set PGROLLUP_NATS_URL)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, *name, *ackWait, log); err != nil {
		log.Error("pgrollup-worker stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *config.Config, name string, ackWait time.Duration, log *slog.Logger) error {
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Worker.CacheDir, 0o755); err != nil {
		return fmt.Errorf("worker.cache_dir: %w", err)
	}
	node, err := jobs.Open(ctx, cfg, "pgrollup-worker", log)
	if err != nil {
		return err
	}
	defer node.Close()
	stopQueries, err := serveQueries(ctx, cfg, node, storage, name, log)
	if err != nil {
		return err
	}
	defer stopQueries()
	w := jobs.NewWorker(jobs.WorkerOptions{
		JetStream: node.JetStream, Catalog: node.Catalog, Concurrency: cfg.Worker.Concurrency,
		AckWait: ackWait, Name: name, Log: log,
		Builder: &rollup.Builder{DSN: cfg.Warehouse.DSN, Storage: storage, TempDir: cfg.Worker.CacheDir,
			MemoryLimit: cfg.Worker.DuckDBMemoryLimit.Int64(), Log: log},
	})
	return w.Run(ctx)
}

// serveQueries answers rollup queries until ctx ends or stop is called; stop
// waits for the running queries (up to the drain timeout) and frees the
// DuckDB and the cache.
func serveQueries(ctx context.Context, cfg *config.Config, node *jobs.Node, storage rollup.Storage, name string, log *slog.Logger) (stop func(), err error) {
	duck, err := routing.OpenDuckDB(cfg.Worker.DuckDBMemoryLimit.Int64())
	if err != nil {
		return nil, err
	}
	cache, err := jobs.NewCache(jobs.CacheOptions{Dir: cfg.Worker.CacheDir, MaxBytes: cfg.Worker.CacheMaxBytes.Int64(), Storage: storage, Log: log})
	if err != nil {
		duck.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	view, err := node.Catalog.Watch(ctx)
	if err != nil {
		cancel()
		cache.Close()
		duck.Close()
		return nil, err
	}
	followed := make(chan struct{})
	go func() { defer close(followed); cache.Follow(ctx, view) }()
	qs, err := jobs.ServeQueries(ctx, node.Conn, jobs.QueryServerOptions{
		Cache: cache, DuckDB: duck, Concurrency: cfg.Worker.Concurrency, Name: name, Log: log,
	})
	if err != nil {
		cancel()
		<-followed
		cache.Close()
		duck.Close()
		return nil, err
	}
	return func() {
		cancel()
		qs.Wait()
		<-followed
		cache.Close()
		duck.Close()
	}, nil
}
