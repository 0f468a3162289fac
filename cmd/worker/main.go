// Command pgrollup-worker builds rollups for a scaled-out pgrollup: it takes build jobs
// from NATS (nats.url must name the server the proxies use) with worker.concurrency
// builds at a time, each in its own DuckDB limited to worker.duckdb_memory_limit.
// It also answers the proxies' rollup queries (remote.Serve): worker.concurrency
// at a time on one shared DuckDB limited to worker.duckdb_memory_limit, over Parquet
// files cached under worker.cache_dir up to worker.cache_max_bytes.
//
// An admin HTTP listener (--admin-listen, by default the config's admin.listen)
// serves GET /healthz, GET /readyz (200 once connected to NATS with the catalog
// loaded) and GET /metrics (Prometheus: builds and query serving), the last with
// the admin.token bearer token when one is set.
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
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/builds"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/jobs/remote"
	"github.com/pgrollup/pgrollup/rollup"
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
	o := options{name: *name, ackWait: *ackWait, admin: cfg.Admin.Listen}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "admin-listen" {
			o.admin, o.adminFromFlag = *adminListen, true
		}
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, o, log); err != nil {
		log.Error("pgrollup-worker stopped", "err", err)
		return 1
	}
	return 0
}

// options are the worker's command-line settings.
type options struct {
	name    string
	ackWait time.Duration
	// admin is the admin listener's address; "" runs without one.
	admin string
	// adminFromFlag: admin was given with --admin-listen rather than taken
	// from the config.
	adminFromFlag bool
}

// serve runs the worker until ctx ends: the admin listener first, so that
// health probes answer while NATS is still being reached, then the query
// server and the build worker.
func serve(ctx context.Context, cfg *config.Config, o options, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// No catalog gauges (nil view): pgrollup_rollup_rows, _bytes and
	// _age_seconds describe the shared catalog, which every proxy exports
	// already; a copy per worker would only duplicate each rollup's series.
	metrics, err := builds.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	fileMetrics, err := integrity.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var ready readiness
	admin, err := startAdmin(o, cfg.Admin.Token, reg, ready.ready, log)
	if err != nil {
		return err
	}
	defer admin.stop()
	context.AfterFunc(ctx, ready.stop)

	err = work(ctx, cfg, o, metrics, fileMetrics, reg, &ready, log)
	if err != nil && ctx.Err() != nil {
		// A signal while it was still connecting (to NATS, or the storage)
		// cut that short: a requested stop, not a failure.
		log.Info("pgrollup-worker stopped while starting", "err", err)
		return nil
	}
	return err
}

// work connects to NATS, answers queries and takes build jobs until ctx ends.
func work(ctx context.Context, cfg *config.Config, o options, metrics *builds.Metrics, fileMetrics *integrity.Metrics, reg prometheus.Registerer, ready *readiness, log *slog.Logger) error {
	storage, err := rollup.OpenStorage(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Worker.CacheDir, 0o755); err != nil {
		return fmt.Errorf("worker.cache_dir: %w", err)
	}
	n, err := node.Open(ctx, cfg, "pgrollup-worker", log)
	if err != nil {
		return err
	}
	defer n.Close()
	q, err := serveQueries(ctx, cfg, n, storage, o.name, fileMetrics, log)
	if err != nil {
		return err
	}
	defer q.stop()
	if err := reg.Register(newQueryCollector(q.server.Stats, q.cache.Stats)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ready.set(n.Conn, q.view)
	w := builds.NewWorker(builds.WorkerOptions{
		JetStream: n.JetStream, Catalog: n.Catalog, Concurrency: cfg.Worker.Concurrency,
		AckWait: o.ackWait, Name: o.name, Log: log, Metrics: metrics,
		Builder: &rollup.Builder{DSN: cfg.Warehouse.DSN, Storage: storage, TempDir: cfg.Worker.CacheDir,
			MemoryLimit: cfg.Worker.DuckDBMemoryLimit.Int64(), Log: log},
	})
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
func serveQueries(ctx context.Context, cfg *config.Config, n *node.Node, storage rollup.Storage, name string, metrics *integrity.Metrics, log *slog.Logger) (*queries, error) {
	ctx, cancel := context.WithCancel(ctx)
	view, err := n.Catalog.Watch(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	who := name
	if who == "" {
		host, _ := os.Hostname()
		who = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	files := integrity.New(integrity.Options{Catalog: n.Catalog, View: view, Metrics: metrics,
		Name: "pgrollup-worker " + who, Log: log.With("component", "integrity")})
	db, err := duck.Open(cfg.Worker.DuckDBMemoryLimit.Int64(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	c, err := cache.New(cache.Options{Dir: cfg.Worker.CacheDir, MaxBytes: cfg.Worker.CacheMaxBytes.Int64(), Storage: storage,
		Integrity: files, Log: log})
	if err != nil {
		cancel()
		db.Close()
		return nil, err
	}
	files.OnBroken(func(keys []string) {
		paths := make([]string, len(keys))
		for i, k := range keys {
			paths[i] = c.Path(k)
		}
		db.Forget(paths)
		c.Forget(keys)
	})
	var followed sync.WaitGroup
	followed.Go(func() { files.Follow(ctx) })
	followed.Go(func() { c.Follow(ctx, view) })
	qs, err := remote.Serve(ctx, n.Conn, remote.ServerOptions{
		Cache: c, DuckDB: db, Concurrency: cfg.Worker.Concurrency, Name: name, Log: log,
	})
	if err != nil {
		cancel()
		followed.Wait()
		c.Close()
		db.Close()
		return nil, err
	}
	return &queries{server: qs, cache: c, view: view, stop: func() {
		cancel()
		qs.Wait()
		followed.Wait()
		c.Close()
		db.Close()
	}}, nil
}
