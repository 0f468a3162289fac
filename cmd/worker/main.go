// Command pgrollup-worker builds rollups for a scaled-out pgrollup: it takes build jobs
// from NATS (nats.url must name the server the proxies use) with worker.concurrency
// builds at a time, each in its own DuckDB limited to worker.duckdb_memory_limit.
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
	w := jobs.NewWorker(jobs.WorkerOptions{
		JetStream: node.JetStream, Catalog: node.Catalog, Concurrency: cfg.Worker.Concurrency,
		AckWait: ackWait, Name: name, Log: log,
		Builder: &rollup.Builder{DSN: cfg.Warehouse.DSN, Storage: storage, TempDir: cfg.Worker.CacheDir,
			MemoryLimit: cfg.Worker.DuckDBMemoryLimit.Int64(), Log: log},
	})
	return w.Run(ctx)
}
