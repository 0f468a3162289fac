// Command pgrollup-bench-memory is what `make bench-memory` runs: it measures
// pgrollup's resident memory per idle client connection, against
// PgBouncer's, and what one pathological statement adds to it.
//
// It starts a throw-away PostgreSQL cluster with an orders table, pgrollup
// with a rollup over it (so that every statement below is one pgrollup
// would parse) and PgBouncer in session mode. Then:
//
//   - idle clients: it opens N client connections through each, runs one
//     statement on each, waits for them to settle, and reports the growth of
//     the process's resident memory (VmRSS) divided by N;
//   - pathological statements: it sends each through pgrollup, reports the
//     peak resident memory above idle while it ran (VmHWM, reset through
//     /proc/PID/clear_refs), and the resident memory some seconds after.
//
// It is a benchmark, not a test: the figures depend on the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgbouncer"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

const (
	benchUser     = "bench"
	benchPassword = "bench"
	benchDB       = "bench"
)

type options struct {
	pgrollup  string
	pgbouncer string
	clients   int
	settle    time.Duration
	capMB     int64
	skipIdle  bool
	skipStmts bool
	idleWait  time.Duration
	keep      bool
}

func main() {
	var o options
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.StringVar(&o.pgbouncer, "pgbouncer", "", "the pgbouncer binary (default: from PATH, else /usr/sbin/pgbouncer; none found: pgrollup only)")
	flag.IntVar(&o.clients, "clients", 500, "idle client connections to open through each")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "how long to wait before reading memory after clients connect or a statement ends")
	flag.Int64Var(&o.capMB, "cap", 256, "the most one statement may add to pgrollup's resident memory, in MB")
	flag.BoolVar(&o.skipIdle, "skip-idle", false, "measure only the pathological statements")
	flag.BoolVar(&o.skipStmts, "skip-statements", false, "measure only the idle clients")
	flag.DurationVar(&o.idleWait, "idle-settle", 2*time.Minute+15*time.Second, "how long idle clients stay connected before their memory is read a second time: long enough for the Go runtime's periodic collection, which shrinks stacks and frees what connecting left behind")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs and logs)")
	flag.Parse()
	if flag.NArg() > 0 || o.clients < 1 {
		fmt.Fprintln(os.Stderr, "usage: pgrollup-bench-memory [-pgrollup BIN] [-pgbouncer BIN] [-clients N] [-settle 5s] [-idle-settle 2m15s] [-cap 256] [-skip-idle] [-skip-statements]")
		os.Exit(2)
	}
	benchkit.Main("bench-memory", func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) (err error) {
	rollupBin, err := benchkit.PgrollupBinary(o.pgrollup, "bench-memory")
	if err != nil {
		return err
	}
	bouncerBin, _ := pgbouncer.Find(o.pgbouncer) // "" when there is none: PgBouncer is then left out
	tmp, removeTmp, err := benchkit.TempDir("pgrollup-bench-memory-", o.keep)
	if err != nil {
		return err
	}
	defer removeTmp()

	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		// pgrollup's and PgBouncer's server connections at once, plus slack.
		"max_connections": strconv.Itoa(2*o.clients + 30),
	})
	if err != nil {
		return err
	}
	defer benchkit.KeepFirst(&err, cluster.Stop)
	if err := setUp(ctx, cluster); err != nil {
		return err
	}

	benchkit.Step("Starting pgrollup with a rollup over orders")
	ports, err := proc.FreePorts(2)
	if err != nil {
		return err
	}
	port, adminPort := ports[0], ports[1]
	rollup, err := startPgrollup(ctx, rollupBin, filepath.Join(tmp, "pgrollup"), cluster, port, adminPort)
	if err != nil {
		return err
	}
	defer rollup.Stop(15 * time.Second)
	pgrollupURL := url(port)

	var results []idleResult
	if !o.skipIdle {
		benchkit.Step("%d idle clients through pgrollup", o.clients)
		r, err := idleClients(ctx, "pgrollup", rollup.Cmd.Process.Pid, pgrollupURL, fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort), o)
		if err != nil {
			return err
		}
		results = append(results, r)
		if bouncerBin == "" {
			benchkit.Done("PgBouncer not found (Debian: apt-get install pgbouncer, or scripts/deps.sh pgbouncer): pgrollup only")
		} else {
			benchkit.Step("Starting PgBouncer (session pooling)")
			bport, err := proc.FreePort()
			if err != nil {
				return err
			}
			bouncer, err := pgbouncer.Start(ctx, pgbouncer.Options{
				Bin: bouncerBin, Dir: filepath.Join(tmp, "pgbouncer"), Writer: "pgrollup-bench-memory",
				Host: cluster.Host, ServerPort: cluster.Port, Database: benchDB,
				User: benchUser, Password: benchPassword, Port: bport, MaxClients: o.clients,
			})
			if err != nil {
				return err
			}
			benchkit.Done("pgbouncer on 127.0.0.1:%d", bport)
			benchkit.Step("%d idle clients through PgBouncer", o.clients)
			r, err := idleClients(ctx, "pgbouncer", bouncer.Cmd.Process.Pid, url(bport), "", o)
			bouncer.Stop(10 * time.Second)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}

	var stmts []stmtResult
	if !o.skipStmts {
		benchkit.Step("Pathological statements through pgrollup, one at a time")
		if stmts, err = pathological(ctx, rollup, pgrollupURL, o); err != nil {
			return err
		}
	}

	if len(results) > 0 {
		fmt.Printf("\nIdle client connections (%d each; RSS read %s and %s after the last connected):\n\n", o.clients, o.settle, o.settle+o.idleWait)
		fmt.Printf("  %-10s %12s %12s %16s %12s %16s\n", "target", "RSS before", "RSS after", "per connection", "settled", "per connection")
		for _, r := range results {
			fmt.Printf("  %-10s %9.1f MB %9.1f MB %13.1f kB %9.1f MB %13.1f kB\n", r.target, mb(r.before), mb(r.after),
				perConn(r.after-r.before, o.clients), mb(r.settled), perConn(r.settled-r.before, o.clients))
		}
	}
	if len(stmts) == 0 {
		return nil
	}
	fmt.Printf("\nPathological statements through pgrollup (cap %d MB above idle):\n\n", o.capMB)
	fmt.Printf("  %-44s %10s %12s %14s %14s  %s\n", "statement", "bytes", "idle RSS", "peak - idle", "after - idle", "answer")
	missed := false
	for _, s := range stmts {
		verdict := ""
		if s.peak-s.idle > o.capMB<<20 {
			verdict, missed = "  OVER THE CAP", true
		}
		fmt.Printf("  %-44s %10d %9.1f MB %11.1f MB %11.1f MB  %s%s\n", s.name, s.bytes, mb(s.idle), mb(s.peak-s.idle), mb(s.after-s.idle), s.answer, verdict)
	}
	if missed {
		return errors.New("a statement took pgrollup over the memory cap")
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func perConn(b int64, n int) float64 { return float64(b) / float64(n) / 1024 }

type idleResult struct {
	target string
	// goBefore and goSettled are pgrollup's Go heap and stacks in use, from
	// its /metrics (zero for PgBouncer).
	goBefore, goSettled goMemory
	// before: without clients; after: o.settle after the last connected;
	// settled: o.idleWait after that.
	before, after, settled int64
}

// idleClients opens o.clients connections through the target, runs one
// statement on each, and reads the process's resident memory before and
// o.settle after.
func idleClients(ctx context.Context, target string, pid int, url, metrics string, o options) (idleResult, error) {
	r := idleResult{target: target}
	time.Sleep(o.settle)
	r.before = rss(pid, "VmRSS:")
	r.goBefore = scrapeGo(metrics)
	conns := make([]*pgconn.PgConn, o.clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, o.clients)
	sem := make(chan struct{}, 16)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := pgconn.Connect(cctx, url)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			// The same statement for all: distinct texts would measure
			// the statement cache, not the connections.
			if _, err := c.Exec(cctx, "SELECT count(*) FROM orders WHERE id = 1").ReadAll(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, fmt.Errorf("%s: %w", target, err)
	}
	time.Sleep(o.settle)
	r.after = rss(pid, "VmRSS:")
	benchkit.Done("%s: %.1f MB before, %.1f MB with %d idle clients: %.1f kB each", target, mb(r.before), mb(r.after), o.clients, perConn(r.after-r.before, o.clients))
	if o.idleWait > 0 {
		time.Sleep(o.idleWait)
	}
	r.settled = rss(pid, "VmRSS:")
	r.goSettled = scrapeGo(metrics)
	benchkit.Done("%s: %s later, %.1f MB: %.1f kB each", target, o.idleWait, mb(r.settled), perConn(r.settled-r.before, o.clients))
	if metrics != "" {
		benchkit.Done("%s: Go heap in use %+.1f kB, stacks %+.1f kB, all the Go runtime holds %+.1f kB, goroutines %+.1f per connection", target,
			perConn(r.goSettled.heap-r.goBefore.heap, o.clients), perConn(r.goSettled.stacks-r.goBefore.stacks, o.clients),
			perConn(r.goSettled.resident-r.goBefore.resident, o.clients),
			float64(r.goSettled.goroutines-r.goBefore.goroutines)/float64(o.clients))
	}
	return r, nil
}

type stmtResult struct {
	name              string
	bytes             int
	idle, peak, after int64
	answer            string
}

// statements are the pathological ones, each mentioning orders so that
// pgrollup would parse it; their texts are made when they run.
var statements = []struct {
	name string
	sql  func() string
}{
	{"30,000-term chain (60 kB)", func() string {
		return "SELECT count(*) FROM orders WHERE status = 'completed' AND 1" + strings.Repeat("+1", 30000) + " > 0"
	}},
	{"20,000 parentheses", func() string {
		return "SELECT count(*) FROM orders WHERE " + strings.Repeat("(", 20000) + "true" + strings.Repeat(")", 20000)
	}},
	{"5,000 nested subqueries", func() string {
		return "SELECT " + strings.Repeat("(SELECT ", 5000) + "count(*) FROM orders" + strings.Repeat(")", 5000)
	}},
	{"100,000-deep JSON literal", func() string {
		return "SELECT count(*) FROM orders WHERE '" + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "'::jsonb IS NOT NULL"
	}},
	{"100,000 nested comments", func() string {
		// Spaced out: a run of /* and */ alone costs Postgres's lexer
		// quadratic time.
		return "SELECT count(*) FROM orders /* " + strings.Repeat("/* ", 100000) + strings.Repeat("*/ ", 100000) + "*/"
	}},
	{"50 MB string literal", func() string {
		return "SELECT count(*) FROM orders WHERE status = '" + strings.Repeat("x", 50<<20) + "'"
	}},
	{"10 MB IN list (1,000,000 values)", func() string {
		var b strings.Builder
		b.WriteString("SELECT count(*) FROM orders WHERE id IN (")
		for i := range 1000000 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(1000000 + i))
		}
		return b.String() + ")"
	}},
	{"IN list at the token limit (50,000 values)", func() string {
		return "SELECT status, count(*) FROM orders WHERE status IN ('completed'" + strings.Repeat(",'pending'", 49990) + ") GROUP BY status"
	}},
	{"IN list within the limits (20,000 values)", func() string {
		return "SELECT status, count(*) FROM orders WHERE status IN ('completed'" + strings.Repeat(",'pending'", 20000) + ") GROUP BY status"
	}},
}

// pathological runs each statement on a fresh session through pgrollup and
// reads its resident memory: before, at the peak, and o.settle after.
func pathological(ctx context.Context, p *proc.Process, url string, o options) ([]stmtResult, error) {
	pid := p.Cmd.Process.Pid
	clearRefs := filepath.Join("/proc", strconv.Itoa(pid), "clear_refs")
	var out []stmtResult
	for _, s := range statements {
		sql := s.sql()
		conn, err := pgconn.Connect(ctx, url)
		if err != nil {
			return nil, err
		}
		r := stmtResult{name: s.name, bytes: len(sql)}
		time.Sleep(o.settle)
		if err := os.WriteFile(clearRefs, []byte("5"), 0); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("resetting the peak (%s): %w", clearRefs, err)
		}
		r.idle = rss(pid, "VmRSS:")
		results, err := conn.Exec(ctx, sql).ReadAll()
		r.peak = rss(pid, "VmHWM:")
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe):
			r.answer = "ERROR " + pe.Code
		case err != nil:
			r.answer = "FAILED " + err.Error()
		default:
			r.answer = fmt.Sprintf("%d row(s)", len(results[0].Rows))
		}
		conn.Close(ctx)
		sql = ""
		time.Sleep(o.settle)
		r.after = rss(pid, "VmRSS:")
		select {
		case <-p.Exited:
			return nil, p.Failed(fmt.Errorf("pgrollup died on %s", s.name))
		default:
		}
		benchkit.Done("%s: %.1f MB idle, peak %+.1f MB, %s later %+.1f MB: %s", s.name, mb(r.idle), mb(r.peak-r.idle), o.settle, mb(r.after-r.idle), r.answer)
		out = append(out, r)
	}
	return out, nil
}

// goMemory is what pgrollup's /metrics says of its Go memory.
type goMemory struct{ heap, stacks, goroutines, resident int64 }

// scrapeGo reads go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes
// and go_goroutines from a /metrics URL ("": none).
func scrapeGo(metricsURL string) goMemory {
	var m goMemory
	if metricsURL == "" {
		return m
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(metricsURL)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(v)
		case "go_memstats_stack_inuse_bytes":
			m.stacks = int64(v)
		case "go_goroutines":
			m.goroutines = int64(v)
		case "go_memstats_sys_bytes":
			m.resident += int64(v)
		case "go_memstats_heap_released_bytes":
			m.resident -= int64(v)
		}
	}
	return m
}

// rss reads a field of /proc/PID/status in bytes (0 when unreadable).
func rss(pid int, field string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func url(port int) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", benchUser, benchPassword, port, benchDB)
}

// setUp creates the bench role, database and orders table.
func setUp(ctx context.Context, cluster *pgcluster.Cluster) error {
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := benchkit.ExecAll(ctx, conn,
		`CREATE ROLE `+benchUser+` LOGIN PASSWORD '`+benchPassword+`'`,
		`CREATE DATABASE `+benchDB+` OWNER `+benchUser); err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, cluster.DSNFor(benchUser, benchPassword, benchDB))
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	_, err = db.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric(12,2) NOT NULL);
		INSERT INTO orders SELECT g, (ARRAY['completed','pending','cancelled'])[1 + g % 3], round((g * 7.31) % 500, 2)
		FROM generate_series(1, 10000) g;
		ANALYZE orders`)
	return err
}

// startPgrollup runs `pgrollup serve` with a rollup over orders and waits
// until it is active.
func startPgrollup(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster, port, adminPort int) (*proc.Process, error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	cfg := proc.Config{
		Writer: "pgrollup-bench-memory", Listen: fmt.Sprintf("127.0.0.1:%d", port), Admin: fmt.Sprintf("127.0.0.1:%d", adminPort),
		WarehouseDSN: cluster.DSN(benchDB), DataDir: dataDir,
	}.YAML(`worker:
  concurrency: 1
rollups:
  - name: orders_by_status
    table: public.orders
    dimensions: [status]
    measures: [count(*), sum(amount)]
`)
	p, err := proc.StartPgrollup(bin, dir, cfg)
	if err != nil {
		return nil, err
	}
	quiet := func(string, ...any) {}
	if err := proc.WaitRollups(ctx, fmt.Sprintf("http://127.0.0.1:%d", adminPort), p.Exited, 90*time.Second, quiet); err != nil {
		p.Stop(5 * time.Second)
		return nil, p.Failed(err)
	}
	benchkit.Done("pgrollup on 127.0.0.1:%d, rollup orders_by_status active", port)
	return p, nil
}
