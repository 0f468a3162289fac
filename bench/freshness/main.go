// Command pgrollup-bench-freshness measures live answers: a table receiving a
// steady insert stream, with dashboard statements answered as fresh as the
// warehouse by a lambda rollup, or split at bucket edges (exact edges). It is
// what `make bench-freshness` runs:
//
//	make bench-freshness                                  # 10M orders, 11 runs per statement
//	make bench-freshness FRESHNESS_FLAGS='-rows 1000000 -runs 7'
//	go build -o bin/pgrollup-bench-freshness ./bench/freshness && bin/pgrollup-bench-freshness -pgrollup bin/pgrollup
//
// It starts a throw-away PostgreSQL cluster (internal/pgcluster), generates
// -rows orders over the last 180 days up to now with an index on created_at
// (and, with -noindex, a copy of the table without the index), declares a
// lambda rollup (late_window 1m) and a plain rollup of the same shape (hourly
// by status) on each table, starts `pgrollup serve` with its result cache
// off (every answer is computed) and continuous verification off (its
// re-runs would load the warehouse the measurement shares), and waits for
// the builds. Then a goroutine inserts -rate rows a second, timestamped
// now, into every table while each dashboard statement is timed,
// interleaved:
//
//   - live: through pgrollup as fresh as the warehouse. Lambda statements in
//     a session with pgrollup.max_staleness = 0 (only lambda rollups answer);
//     statements whose range cuts through buckets (Grafana's $__timeFilter,
//     a relative range, a Cube date range) split at bucket edges by the plain
//     rollup, and again in the session with pgrollup.max_staleness = 0, split
//     at bucket edges over the lambda rollup. Every live answer is compared
//     with Postgres's at the same moment (the insert stream waits while both
//     run): values, column names, types and command tag.
//   - plain: the plain rollup path. A lambda statement in a session without
//     a staleness bound, answered by the plain rollup alone; an edges
//     statement with its range cut down to whole buckets.
//   - Postgres: the statement directly on the warehouse.
//
// How pgrollup answered (hit mode and rollup) is read from /metrics after
// each statement's runs, not assumed; a statement not served as claimed,
// or an answer that differs from Postgres's, fails the benchmark. It prints a
// Markdown ratio table with the goals of issue 15: live at most 3× the plain
// rollup path, and at least 20× faster than Postgres. With -noindex, the same
// statements over the copy without an index on created_at are timed through
// pgrollup (whatever it decides) against passing through to Postgres
// (goal: never more than 10% slower).
//
// The figures depend on the machine and its load; the load average is
// printed with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/promtext"
)

// The role and database of the benchmark's clients: an ordinary role, as a
// BI tool's login is.
const (
	benchUser     = "pgrollup_fresh"
	benchPassword = "bench"
	benchDB       = "pgrollup_fresh"
)

type options struct {
	pgrollup string
	rows     int
	runs     int
	rate     int
	protocol string
	noIndex  bool
	// noIndexRuns are the timed runs over the table without the index:
	// those of Postgres take seconds on 10 million rows.
	noIndexRuns int
	// resultCache is routing.result_cache_bytes: off by default, so that
	// every answer is computed.
	resultCache string
	keep        bool
	// logLevel is pgrollup's --log-level: debug logs why an answer fell
	// back to the warehouse, which the failures then show.
	logLevel string
	// lateWindow is the lambda rollups' late_window, and refresh their
	// refresh.every (incremental, by -partitions); "": built once, so
	// the warehouse part grows with the run.
	lateWindow, refresh string
	// partitions is the lambda rollups' partition_granularity with refresh.
	partitions string
}

func main() {
	var o options
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.IntVar(&o.rows, "rows", 10_000_000, "orders to generate (10 million for figures worth quoting)")
	flag.IntVar(&o.runs, "runs", 11, "timed runs of each statement on each path, interleaved, after a warm-up (medians are reported)")
	flag.IntVar(&o.rate, "rate", 200, "rows inserted per second into each table while the statements run")
	flag.StringVar(&o.protocol, "protocol", "extended", "protocol of the statements: extended (an unnamed statement, as pgjdbc sends it) or simple (a Query message, as psycopg2)")
	flag.IntVar(&o.noIndexRuns, "noindex-runs", 3, "timed runs of each statement over the table without the index, through pgrollup and directly, after a warm-up")
	flag.BoolVar(&o.noIndex, "noindex", true, "also time the statements over a copy of the table without an index on created_at, through pgrollup against passing through")
	flag.StringVar(&o.resultCache, "result-cache", "0", "pgrollup's routing.result_cache_bytes, e.g. 64MB (the default configuration's); 0 computes every answer")
	flag.StringVar(&o.logLevel, "log-level", "info", "pgrollup's --log-level; debug logs every statement and why an answer fell back to the warehouse")
	flag.StringVar(&o.lateWindow, "late-window", "1m", "the lambda rollups' lambda.late_window: the rows of the last this much are read from the warehouse at every answer")
	flag.StringVar(&o.refresh, "refresh", "", "the lambda rollups' refresh.every (e.g. 15s), as incremental builds of -partitions partitions; empty: built once, so the rows above the cutoff grow with the run")
	flag.StringVar(&o.partitions, "partitions", "month", "the lambda rollups' partition_granularity with -refresh: each answer's DuckDB part opens every partition's file, and a merged incremental build rewrites the newest one")
	flag.BoolVar(&o.keep, "keep", false, "leave Postgres and pgrollup running after the benchmark until Ctrl-C")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		fatalUsage("unexpected arguments %q", flag.Args())
	case o.rows < 10_000:
		fatalUsage("-rows must be at least 10000")
	case o.runs < 1 || o.noIndexRuns < 1:
		fatalUsage("-runs and -noindex-runs must be at least 1")
	case o.rate < 1:
		fatalUsage("-rate must be at least 1")
	case o.protocol != "extended" && o.protocol != "simple":
		fatalUsage("-protocol must be extended or simple")
	}
	benchkit.Main("bench-freshness", func(ctx context.Context) error { return run(ctx, o) })
}

func fatalUsage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-freshness: "+format+"\n", args...)
	os.Exit(2)
}

func run(ctx context.Context, o options) (err error) {
	bin, err := benchkit.PgrollupBinary(o.pgrollup, "bench-freshness")
	if err != nil {
		return err
	}
	tmp, removeTmp, err := benchkit.TempDir("pgrollup-bench-freshness-", false)
	if err != nil {
		return err
	}
	defer removeTmp()
	t0 := time.Now()
	fmt.Printf("pgrollup freshness bench: %d orders, %d runs per statement and path (%s protocol), %d rows/s inserted per table, result cache %s, lambda late_window %s, %s; %d CPUs, load average %s\n",
		o.rows, o.runs, o.protocol, o.rate, o.resultCache, o.lateWindow, refreshText(o.refresh, o.partitions), runtime.NumCPU(), proc.LoadAverage())

	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		// The table stays in memory: Postgres gets its best case.
		"shared_buffers":       "1GB",
		"work_mem":             "64MB",
		"maintenance_work_mem": "512MB",
		"max_wal_size":         "4GB",
		"timezone":             "UTC",
	})
	if err != nil {
		return err
	}
	defer benchkit.KeepFirst(&err, cluster.Stop)
	tables := []string{"orders"}
	if o.noIndex {
		tables = append(tables, "orders_noidx")
	}
	if err := load(ctx, cluster, o.rows, tables); err != nil {
		return err
	}

	p, err := startPgrollup(ctx, bin, tmp, cluster, tables, o)
	if err != nil {
		return err
	}
	defer p.proc.Stop(15 * time.Second)
	benchkit.Step("Waiting for the rollup builds (GET %s/api/rollups)", p.adminURL)
	if err := proc.WaitRollups(ctx, p.adminURL, p.proc.Exited, 20*time.Minute, benchkit.Done); err != nil {
		return p.proc.Failed(err)
	}

	st, err := startStream(ctx, cluster.DSN(benchDB), tables, o.rate)
	if err != nil {
		return err
	}
	rep, err := measureAll(ctx, o, cluster, p, st, tables)
	inserted, streamErr := st.stop()
	if err != nil {
		return err
	}
	if streamErr != nil {
		return fmt.Errorf("insert stream: %w", streamErr)
	}
	rep.inserted, rep.streamFor = inserted, st.elapsed()
	rep.print(o)
	fmt.Printf("\nWhole run: %s; load average at the end: %s\n", benchkit.Since(t0), proc.LoadAverage())
	if o.keep && ctx.Err() == nil {
		fmt.Printf("\n-keep: leaving everything running until Ctrl-C\n")
		fmt.Printf("  Postgres directly:           psql %q\n", cluster.DSNFor(benchUser, benchPassword, benchDB))
		fmt.Printf("  through pgrollup, live:      psql %q\n", p.dsn(true))
		fmt.Printf("  through pgrollup, no bound:  psql %q\n", p.dsn(false))
		fmt.Printf("  admin and metrics:           %s/api/rollups  %s/metrics\n", p.adminURL, p.adminURL)
		fmt.Printf("  pgrollup's log:              %s\n", p.proc.LogPath)
		select {
		case <-ctx.Done():
		case <-p.proc.Exited:
		}
	}
	if len(rep.failures) > 0 {
		return fmt.Errorf("%d check(s) failed:\n  %s", len(rep.failures), strings.Join(rep.failures, "\n  "))
	}
	return nil
}

// ordersSQL fills a table with $2 orders from $1 rows back: evenly over the
// 180 days before now, in time order (as an append-only table's rows are),
// with a few NULL statuses and amounts.
const ordersSQL = `INSERT INTO %s (customer_id, status, amount, quantity, created_at)
SELECT (1 + (g::bigint * 7919) %% 100000)::int,
       CASE WHEN g %% 1000 = 3 THEN NULL
            ELSE (ARRAY['completed','completed','completed','completed','shipped','shipped','pending','cancelled','refunded'])[1 + floor(random() * 9)::int] END,
       CASE WHEN g %% 1000 = 7 THEN NULL ELSE round((1 + random() * random() * 499)::numeric, 2) END,
       1 + floor(random() * random() * 10)::int,
       $3::timestamptz - interval '180 days' + (g - 1 + random()) * (interval '180 days' / $2::int)
FROM generate_series($1::int, $4::int) AS g`

// load creates the orders table (and its copies), fills it and indexes it.
func load(ctx context.Context, cluster *pgcluster.Cluster, rows int, tables []string) error {
	benchkit.Step("Generating %d orders over the last 180 days", rows)
	t0 := time.Now()
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	err = benchkit.ExecAll(ctx, conn,
		`CREATE ROLE `+benchUser+` LOGIN PASSWORD '`+benchPassword+`'`,
		`CREATE DATABASE `+benchDB,
		`GRANT CONNECT ON DATABASE `+benchDB+` TO `+benchUser,
		`ALTER DATABASE `+benchDB+` SET timezone TO 'UTC'`)
	conn.Close(context.Background())
	if err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, cluster.DSN(benchDB))
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	exec := func(sql string, args ...any) error {
		t1 := time.Now()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", benchkit.FirstLine(sql), err)
		}
		benchkit.Done("%s (%s)", benchkit.FirstLine(sql), benchkit.Since(t1))
		return nil
	}
	if err := exec(`CREATE TABLE orders (customer_id integer, status text, amount numeric(12,2), quantity integer NOT NULL, created_at timestamptz NOT NULL)`); err != nil {
		return err
	}
	// Two sessions fill halves of the table at once (the machine has two
	// cores), each in time order, written one after the other.
	var now time.Time
	if err := db.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return err
	}
	if err := fillParallel(ctx, cluster.DSN(benchDB), rows, now); err != nil {
		return err
	}
	benchkit.Done("orders filled (%s)", benchkit.Since(t0))
	if err := exec(`CREATE INDEX orders_created_at ON orders (created_at)`); err != nil {
		return err
	}
	for _, t := range tables[1:] {
		// A copy without the index on created_at.
		if err := exec(`CREATE TABLE ` + t + ` AS SELECT * FROM orders`); err != nil {
			return err
		}
		if err := exec(`ALTER TABLE ` + t + ` ALTER COLUMN created_at SET NOT NULL, ALTER COLUMN quantity SET NOT NULL`); err != nil {
			return err
		}
	}
	for _, t := range tables {
		if err := exec(`VACUUM ANALYZE ` + t); err != nil {
			return err
		}
		if err := exec(`GRANT SELECT ON ` + t + ` TO ` + benchUser); err != nil {
			return err
		}
	}
	benchkit.Done("%d orders per table (%s)", rows, benchkit.Since(t0))
	return nil
}

// fillParallel inserts rows orders in batches over two sessions.
func fillParallel(ctx context.Context, dsn string, rows int, now time.Time) error {
	batch := max(100_000, (rows+9)/10)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	next := make(chan int)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs <- err
				for range next {
				}
				return
			}
			defer c.Close(context.Background())
			for lo := range next {
				if _, err := c.Exec(ctx, fmt.Sprintf(ordersSQL, "orders"), lo, rows, now, min(lo+batch-1, rows)); err != nil {
					errs <- fmt.Errorf("filling orders: %w", err)
					for range next {
					}
					return
				}
			}
		}()
	}
	for lo := 1; lo <= rows; lo += batch {
		select {
		case next <- lo:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// rollupsYAML declares, for each table, a lambda rollup and a plain one of
// the same shape: hourly by status. The lambda rollup has lateWindow, and
// with refresh, incremental builds that often on the first table only: the
// others have no index on created_at, where every incremental build scans
// the table (a second of both cores at 10 million rows), which every few
// seconds would load the warehouse more than the statements measured.
func rollupsYAML(tables []string, lateWindow, refresh, partitions string) string {
	var b strings.Builder
	b.WriteString("rollups:\n")
	for _, t := range tables {
		for _, lambda := range []bool{true, false} {
			fmt.Fprintf(&b, `  - name: %s
    table: public.%s
    dimensions: [status]
    time_dimension: created_at
    granularity: hour
    measures: [sum(amount), count(*), count(amount), min(amount), max(amount), sum(quantity)]
`, rollupName(t, lambda), t)
			if lambda {
				fmt.Fprintf(&b, "    lambda: {column: created_at, late_window: %s}\n", lateWindow)
				if refresh != "" && t == tables[0] {
					fmt.Fprintf(&b, "    partition_granularity: %s\n    refresh: {every: %s, incremental: true}\n", partitions, refresh)
				}
			}
		}
	}
	return b.String()
}

// refreshText says how the lambda rollups are refreshed.
func refreshText(refresh, partitions string) string {
	if refresh == "" {
		return "built once"
	}
	return "rebuilt every " + refresh + " (incremental, " + partitions + " partitions; over the indexed table only)"
}

func rollupName(table string, lambda bool) string {
	if lambda {
		return table + "_live"
	}
	return table + "_plain"
}

// pgrollup is the running `pgrollup serve`.
type pgrollup struct {
	proc     *proc.Process
	listen   string
	adminURL string
}

// startPgrollup writes the config in dir, starts `pgrollup serve` and waits
// until it accepts sessions.
func startPgrollup(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster, tables []string, o options) (*pgrollup, error) {
	benchkit.Step("Starting pgrollup")
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	port, adminPort := ports[0], ports[1]
	p := &pgrollup{listen: fmt.Sprintf("127.0.0.1:%d", port), adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	dataDir := filepath.Join(dir, "data")
	q := strconv.Quote
	cfg := `# written by bench/freshness
listen: ` + q(p.listen) + `
warehouse:
  dsn: ` + q(cluster.DSN(benchDB)) + `
data_dir: ` + q(dataDir) + `
storage:
  url: ` + q("file://"+filepath.Join(dataDir, "rollups")) + `
worker:
  cache_dir: ` + q(filepath.Join(dataDir, "cache")) + `
routing:
  result_cache_bytes: ` + q(o.resultCache) + `
  verify_fraction: 0
auth:
  cleartext_without_tls: loopback
admin:
  listen: ` + q(fmt.Sprintf("127.0.0.1:%d", adminPort)) + `
build_timezone: UTC
` + rollupsYAML(tables, o.lateWindow, o.refresh, o.partitions)
	fmt.Println(benchkit.Indent(rollupsYAML(tables, o.lateWindow, o.refresh, o.partitions)))
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--shutdown-timeout", "5s", "--log-level", o.logLevel)
	cmd.Env = proc.CleanEnv()
	if p.proc, err = proc.Start("pgrollup", filepath.Join(dir, "pgrollup.log"), cmd); err != nil {
		return nil, err
	}
	if err := proc.WaitSession(ctx, p.proc, p.dsn(false), 60*time.Second); err != nil {
		p.proc.Stop(5 * time.Second)
		return nil, err
	}
	benchkit.Done("pgrollup on %s, admin %s", p.listen, p.adminURL)
	return p, nil
}

// dsn connects through pgrollup; live sessions start with
// pgrollup.max_staleness = 0, as a BI tool's connection string sets it.
func (p *pgrollup) dsn(live bool) string {
	v := url.Values{"sslmode": {"disable"}}
	if live {
		v.Set("options", "-c pgrollup.max_staleness=0")
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(benchUser, benchPassword), Host: p.listen, Path: "/" + benchDB, RawQuery: strings.ReplaceAll(v.Encode(), "+", "%20")}
	return u.String()
}

// hitKey is a series of pgrollup_rollup_hits_total.
type hitKey struct{ rollup, mode string }

// hits reads pgrollup_rollup_hits_total by rollup and mode, with
// pgrollup_rollup_fallbacks_total by reason as mode "fallback:REASON".
func (p *pgrollup) hits(ctx context.Context) (map[hitKey]float64, error) {
	body, err := proc.Get(ctx, p.adminURL+"/metrics")
	if err != nil {
		return nil, err
	}
	m, err := promtext.Parse(body)
	if err != nil {
		return nil, err
	}
	out := map[hitKey]float64{}
	for series, v := range m {
		switch {
		case strings.HasPrefix(series, "pgrollup_rollup_hits_total{"):
			out[hitKey{label(series, "rollup"), label(series, "mode")}] += v
		case strings.HasPrefix(series, "pgrollup_rollup_fallbacks_total"):
			out[hitKey{label(series, "rollup"), "fallback:" + label(series, "reason")}] += v
		}
	}
	return out, nil
}

// warnings are the last n warnings and errors in pgrollup's log.
func (p *pgrollup) warnings(n int) string {
	var out []string
	for _, line := range strings.Split(proc.Tail(p.proc.LogPath, 400), "\n") {
		if strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") || strings.Contains(line, "relaying to the warehouse") {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// label is the value of a label in an exposed series name.
func label(series, name string) string {
	i := strings.Index(series, name+`="`)
	if i < 0 {
		return ""
	}
	v := series[i+len(name)+2:]
	return v[:strings.IndexByte(v, '"')]
}

// stream inserts rows into the tables at a steady rate, timestamped now,
// and can be paused while an answer is compared with Postgres's.
type stream struct {
	mu       sync.Mutex // held by each insert, and by a comparison
	cancel   context.CancelFunc
	finished chan struct{}
	err      error
	inserted int
	t0, t1   time.Time
}

// streamSQL inserts $1 orders timestamped within the last second.
const streamSQL = `INSERT INTO %s (customer_id, status, amount, quantity, created_at)
SELECT 1 + floor(random() * 100000)::int,
       (ARRAY['completed','completed','completed','completed','shipped','shipped','pending','cancelled','refunded','returned'])[1 + floor(random() * 10)::int],
       round((1 + random() * 499)::numeric, 2), 1 + floor(random() * 5)::int,
       clock_timestamp() - random() * interval '1 second'
FROM generate_series(1, $1::int)`

func startStream(ctx context.Context, dsn string, tables []string, rate int) (*stream, error) {
	benchkit.Step("Inserting %d rows a second into %s while the statements run", rate, strings.Join(tables, " and "))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{cancel: cancel, finished: make(chan struct{}), t0: time.Now()}
	const tick = 50 * time.Millisecond
	go func() {
		defer close(s.finished)
		defer conn.Close(context.Background())
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.t1 = time.Now()
				return
			case <-t.C:
			}
			// As many rows as are due by now: a pause is made up for
			// after it, so the rate holds on average.
			s.mu.Lock()
			due := int(time.Since(s.t0).Seconds()*float64(rate)) - s.inserted
			if due > 0 {
				for _, table := range tables {
					if _, err := conn.Exec(ctx, fmt.Sprintf(streamSQL, table), due); err != nil {
						if ctx.Err() == nil {
							s.err = err
						}
						s.mu.Unlock()
						s.t1 = time.Now()
						return
					}
				}
				s.inserted += due
			}
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// stop ends the stream and returns the rows it inserted into each table.
func (s *stream) stop() (int, error) {
	s.cancel()
	<-s.finished
	return s.inserted, s.err
}

func (s *stream) elapsed() time.Duration { return s.t1.Sub(s.t0) }

// running reports an error if the stream has stopped on its own.
func (s *stream) running() error {
	select {
	case <-s.finished:
		if s.err != nil {
			return fmt.Errorf("insert stream: %w", s.err)
		}
		return errors.New("insert stream stopped")
	default:
		return nil
	}
}
