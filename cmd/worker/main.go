// Command pgrollup-worker builds rollups for a scaled-out pgrollup: it takes build jobs
// from NATS (nats.url must name the server the proxies use) with worker.concurrency
// builds at a time, each in its own DuckDB limited to worker.duckdb_memory_limit.
// It also answers the proxies' rollup queries (jobs/remote): worker.concurrency
// at a time on one shared DuckDB limited to worker.duckdb_memory_limit, over Parquet
// files cached under worker.cache_dir up to worker.cache_max_bytes.
//
// An admin HTTP listener (--admin-listen, by default the config's admin.listen)
// serves GET /healthz, GET /readyz (200 once connected to NATS with the catalog
// loaded) and GET /metrics (Prometheus: builds and query serving), the last with
// the admin.token bearer token when one is set.
//
// This package reads the command line; internal/app assembles and runs the
// worker.
//
// Usage:
//
//	pgrollup-worker --config FILE [--log-level LEVEL] [--name NAME] [--ack-wait 30s] [--admin-listen ADDR]
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

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/jobs/builds"
)

const usage = `pgrollup-worker: builds rollups and answers rollup queries for pgrollup proxies

Usage:
  pgrollup-worker --config FILE [--log-level LEVEL] [--name NAME] [--ack-wait 30s] [--admin-listen ADDR]

It takes build jobs and rollup queries from the NATS server of nats.url, which
must be the proxies'. The admin listener serves /healthz, /readyz and /metrics;
--admin-listen= (empty) runs without it.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pgrollup-worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	path := fs.String("config", "pgrollup.yaml", "config file")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	name := fs.String("name", "", "worker name in the catalog and logs (default host-pid-random)")
	ackWait := fs.Duration("ack-wait", builds.DefaultAckWait, "how long a silent worker keeps a job before it is redelivered; the same on every worker")
	adminListen := fs.String("admin-listen", "", "host:port of the admin HTTP listener (/healthz, /readyz, /metrics); default the config's admin.listen, empty for none")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgrollup-worker: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
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
	o := app.WorkerOptions{Name: *name, AckWait: *ackWait, Admin: cfg.Admin.Listen}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "admin-listen" {
			o.Admin, o.AdminFromFlag = *adminListen, true
		}
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.RunWorker(ctx, cfg, o, log); err != nil {
		log.Error("pgrollup-worker stopped", "err", err)
		return 1
	}
	return 0
}
