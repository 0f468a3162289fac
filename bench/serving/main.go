// Command pgrollup-bench-serving measures how fast pgrollup serves a BI
// dashboard from rollups. It is what
// `make bench-serving` runs:
//
//	make bench-serving                                   # 10M orders, 5 runs, 10 s pgbench runs
//	make bench-serving SERVING_FLAGS='-rows 2000000 -runs 3 -duration 5s'
//	go build -o bin/pgrollup-bench-serving ./bench/serving && bin/pgrollup-bench-serving -pgrollup bin/pgrollup -keep
//
// It starts a throw-away PostgreSQL cluster (internal/pgcluster), generates a
// fact table of -rows orders over about two years joined many-to-one to a
// customers table, declares three rollups (daily by status, monthly by the
// customer's country through the join, hourly partitioned by month), starts
// `pgrollup serve` and waits for the builds. Then:
//
//  1. The dashboard: about ten statements in the shapes Metabase, Tableau,
//     Superset and Looker send. Each is timed (median of -runs, resp.
//     -fastruns, after a warm-up) directly on Postgres, through pgrollup, and on DuckDB alone
//     over the same Parquet files with the exact SQL pgrollup runs (taken
//     from EXPLAIN (ROLLUP) through the proxy). It prints the speed-up over
//     Postgres (goal: median ≥ 100×) and the overhead over DuckDB alone
//     (goal: pgrollup ≤ 1.5 × DuckDB + 1 ms).
//  2. pgbench: a custom script of rollup hits through pgrollup at each of
//     -clients, with -M simple and -M extended, against the same statements
//     rewritten onto materialized views holding the same rollups, run
//     directly on Postgres (goal: pgrollup ahead).
//
// Missed goals are reported, not fatal: the figures depend on the machine and
// on whatever else runs on it, so the load average is printed with them. The
// program does fail when a dashboard or pgbench statement was not answered
// from a rollup (checked with pgrollup's /metrics, not assumed) or when
// pgrollup's answer differs from Postgres's (rows, column names and types).
//
// With PGROLLUP_TEST_DSN set, the data goes into that server instead of a
// throw-away cluster (database pgrollup_serving, role pgrollup_serving, both
// dropped at the end).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
)

type options struct {
	pgrollup  string
	rows      int
	customers int
	runs      int
	fastRuns  int
	duration  time.Duration
	rounds    int
	clients   []int
	protocol  string
	pgbench   bool
	keep      bool
	// resultCache is pgrollup's routing.result_cache_bytes. Off by default:
	// the dashboard's overhead over DuckDB alone is about the serving path,
	// which repeated runs of one statement would not reach with it on.
	resultCache string
	// pgbenchResultCache is routing.result_cache_bytes for a second pgbench
	// comparison after a restart: the default configuration's.
	pgbenchResultCache string
}

func main() {
	var o options
	var clients string
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.IntVar(&o.rows, "rows", 10_000_000, "orders to generate (at least 10 million for figures worth quoting)")
	flag.IntVar(&o.customers, "customers", 100_000, "customers to generate")
	flag.IntVar(&o.runs, "runs", 5, "timed runs of each dashboard statement directly on Postgres, after one warm-up (the median is reported)")
	flag.IntVar(&o.fastRuns, "fastruns", 50, "timed runs of each dashboard statement through pgrollup and on DuckDB alone, after one warm-up (the median is reported; they take milliseconds, and the overhead goal is about single milliseconds)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each pgbench run lasts (whole seconds)")
	flag.IntVar(&o.rounds, "rounds", 1, "repeat every pgbench run this many times (interleaved) and report the median")
	flag.StringVar(&clients, "clients", "1,8,32", "comma-separated pgbench client counts")
	flag.StringVar(&o.protocol, "protocol", "extended", "protocol of the dashboard statements: extended (as pgjdbc, i.e. Metabase and Tableau) or simple (as psycopg2, i.e. Superset)")
	flag.BoolVar(&o.pgbench, "pgbench", true, "run the pgbench comparison after the dashboard")
	flag.StringVar(&o.resultCache, "result-cache", "0", "pgrollup's routing.result_cache_bytes, e.g. 64MB; 0 measures every answer computed by DuckDB")
	flag.StringVar(&o.pgbenchResultCache, "pgbench-result-cache", "64MB", "routing.result_cache_bytes of a second pgbench comparison, after restarting pgrollup (the default is the default configuration's); the same value as -result-cache skips it")
	flag.BoolVar(&o.keep, "keep", false, "leave Postgres and pgrollup running after the benchmark until Ctrl-C")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalUsage("unexpected arguments %q", flag.Args())
	}
	var err error
	if o.clients, err = benchkit.ParseInts(clients); err != nil {
		fatalUsage("-clients: %v", err)
	}
	switch {
	case o.rows < 1000:
		fatalUsage("-rows must be at least 1000")
	case o.customers < 1:
		fatalUsage("-customers must be at least 1")
	case o.runs < 1 || o.fastRuns < 1:
		fatalUsage("-runs and -fastruns must be at least 1")
	case o.rounds < 1:
		fatalUsage("-rounds must be at least 1")
	case o.duration < time.Second:
		fatalUsage("-duration must be at least 1s")
	case o.protocol != "extended" && o.protocol != "simple":
		fatalUsage("-protocol must be extended or simple")
	}

	benchkit.Main("bench-serving", func(ctx context.Context) error { return run(ctx, o) })
}

func fatalUsage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-serving: "+format+"\n", args...)
	os.Exit(2)
}

func run(ctx context.Context, o options) (err error) {
	rollupBin, err := benchkit.PgrollupBinary(o.pgrollup, "bench-serving")
	if err != nil {
		return err
	}
	pgbenchBin := ""
	if o.pgbench {
		if pgbenchBin, err = exec.LookPath("pgbench"); err != nil {
			return fmt.Errorf("pgbench not found (Debian: apt-get install postgresql, or run scripts/deps.sh; -pgbench=false skips it): %w", err)
		}
	}
	tmp, removeTmp, err := benchkit.TempDir("pgrollup-bench-serving-", false)
	if err != nil {
		return err
	}
	defer removeTmp()

	fmt.Printf("pgrollup serving bench: %d orders, %d customers, %d/%d runs per statement (direct/pgrollup and DuckDB, %s protocol), pgbench %ss at clients %v; result cache %s; %d CPUs, load average %s\n",
		o.rows, o.customers, o.runs, o.fastRuns, o.protocol, benchkit.SecondsArg(o.duration), o.clients, o.resultCache, runtime.NumCPU(), proc.LoadAverage())

	w, err := startWarehouse(ctx, o)
	if err != nil {
		return err
	}
	defer benchkit.KeepFirst(&err, w.stop)
	if err := w.load(ctx, o); err != nil {
		return err
	}
	if o.pgbench {
		if err := w.createViews(ctx); err != nil {
			return err
		}
	}

	p, err := startPgrollup(ctx, rollupBin, filepath.Join(tmp, "pgrollup"), w, o.resultCache)
	if err != nil {
		return err
	}
	defer func() { // p may be restarted below
		if p != nil {
			p.proc.Stop(15 * time.Second)
		}
	}()
	if err := p.waitBuilds(ctx, 30*time.Minute); err != nil {
		return err
	}

	var failures []string
	dash, err := runDashboard(ctx, o, w, p)
	if err != nil {
		return err
	}
	failures = append(failures, dash.failures...)

	var benches []*pgbenchReport
	if o.pgbench {
		bench, err := runPgbenchComparison(ctx, o, pgbenchBin, filepath.Join(tmp, "pgbench"), w, p, o.resultCache)
		if err != nil {
			return err
		}
		failures = append(failures, bench.failures...)
		benches = append(benches, bench)
	}
	if o.pgbench && o.pgbenchResultCache != o.resultCache {
		// The same rollups (the catalog survives the restart), answered
		// as a default installation answers repeated statements.
		p.proc.Stop(15 * time.Second)
		benchkit.Step("Restarting pgrollup with routing.result_cache_bytes %s for a second pgbench comparison", o.pgbenchResultCache)
		if p, err = startPgrollup(ctx, rollupBin, filepath.Join(tmp, "pgrollup"), w, o.pgbenchResultCache); err != nil {
			return err
		}
		if err := p.waitBuilds(ctx, 5*time.Minute); err != nil {
			return err
		}
		bench, err := runPgbenchComparison(ctx, o, pgbenchBin, filepath.Join(tmp, "pgbench-cache"), w, p, o.pgbenchResultCache)
		if err != nil {
			return err
		}
		failures = append(failures, bench.failures...)
		benches = append(benches, bench)
	}

	printSummary(dash, benches)
	fmt.Printf("Load average at the end: %s\n", proc.LoadAverage())

	if o.keep && ctx.Err() == nil {
		fmt.Printf("\n-keep: leaving everything running until Ctrl-C\n")
		fmt.Printf("  Postgres directly:  psql %q\n", w.clientDSN())
		fmt.Printf("  through pgrollup:   psql %q\n", p.clientDSN(w))
		fmt.Printf("  admin and metrics:  %s/api/rollups  %s/metrics\n", p.adminURL, p.adminURL)
		fmt.Printf("  pgrollup's config and log: %s\n", filepath.Dir(p.proc.LogPath))
		select {
		case <-ctx.Done():
		case <-p.proc.Exited:
			fmt.Printf("pgrollup exited (%v)\n%s\n", p.proc.WaitErr, proc.Tail(p.proc.LogPath, 20))
		}
		// Ctrl-C ends -keep: that is the normal way out, not a failure.
		ctx = context.Background()
	}
	if len(failures) > 0 {
		return checksFailed(failures)
	}
	return ctx.Err()
}

// checksFailed is the list of statements that were not answered from a
// rollup or not answered as Postgres answers them: the benchmark's figures
// are not worth reading then. Missed speed goals are not in it.
type checksFailed []string

func (c checksFailed) Error() string {
	return fmt.Sprintf("%d check(s) failed:\n  %s", len(c), strings.Join(c, "\n  "))
}

// command prints a command line exactly as it is run.
func command(args ...string) {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	fmt.Printf("    $ %s\n", strings.Join(q, " "))
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
