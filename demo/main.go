// Command pgrollup-demo is what `make demo` runs: it shows pgrollup answering
// a BI dashboard from rollups, next to the warehouse answering it directly.
//
// It starts a throw-away PostgreSQL cluster, generates a shop dataset in the
// database "shop" (five million orders by default, in SQL with generate_series
// and a fixed random seed, so every run loads the same rows relative to
// today), creates the read-only role demo/demo, writes a pgrollup config with
// four rollups under data/demo, starts `pgrollup serve` in front of the
// cluster and follows the rollups' first builds through the admin API. Then
// it runs a scripted dashboard of a dozen statements directly and through
// pgrollup, prints a side-by-side table of routes, times and speed-ups, and
// keeps pgrollup running for psql and BI tools until Ctrl-C, when it stops
// pgrollup and the cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

type options struct {
	pgrollup     string
	dir          string
	listen       string
	admin        string
	cleartext    string
	selfSigned   bool
	customers    int
	products     int
	orders       int
	runs         int
	buildTimeout time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary to run")
	flag.StringVar(&o.dir, "dir", "data/demo", "where the demo writes its pgrollup config, data and log")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:7432", "pgrollup's client listener")
	flag.StringVar(&o.admin, "admin", "127.0.0.1:7480", "pgrollup's admin/metrics HTTP listener")
	flag.StringVar(&o.cleartext, "cleartext", "loopback", "auth.cleartext_without_tls: never, loopback or always")
	flag.BoolVar(&o.selfSigned, "self-signed", false, "tls.self_signed: pgrollup makes itself a certificate, so that a BI tool in a container logs in over TLS (SSL on, sslmode=require)")
	flag.IntVar(&o.customers, "customers", 100_000, "customers to generate")
	flag.IntVar(&o.products, "products", 2_000, "products to generate")
	flag.IntVar(&o.orders, "orders", 5_000_000, "orders to generate")
	flag.IntVar(&o.runs, "runs", 3, "times each dashboard statement runs each way (the median is shown)")
	flag.DurationVar(&o.buildTimeout, "build-timeout", 15*time.Minute, "how long to wait for the rollups' first builds")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if o.customers < 1 || o.products < 1 || o.orders < 1 || o.runs < 1 {
		fmt.Fprintln(os.Stderr, "demo: -customers, -products, -orders and -runs must be at least 1")
		os.Exit(2)
	}
	switch o.cleartext {
	case "never", "loopback", "always":
	default:
		fmt.Fprintf(os.Stderr, "demo: -cleartext %q: want never, loopback or always\n", o.cleartext)
		os.Exit(2)
	}

	benchkit.Main("demo", func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) (err error) {
	for _, l := range []struct{ what, addr, flag string }{
		{"the client listener", o.listen, "-listen"},
		{"the admin listener", o.admin, "-admin"},
	} {
		if err := portFree(l.addr); err != nil {
			return fmt.Errorf("%s %s is not available: %v\n"+
				"  Another pgrollup (or an earlier `make demo`) may be running; see who holds it with: ss -ltnp 'sport = :%s'\n"+
				"  Stop it, or choose another address: make demo DEMO_FLAGS='%s 127.0.0.1:<port>'",
				l.what, l.addr, err, portOf(l.addr), l.flag)
		}
	}
	bin, err := benchkit.PgrollupBinary(o.pgrollup, "demo")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	// pgrollup's own state from an earlier run belongs to a cluster that is gone.
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}

	t0 := time.Now()
	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		"max_connections": "100",
		// Enough memory for the warehouse to keep the data cached and
		// aggregate in memory: the direct timings are Postgres at its best.
		"shared_buffers": "1GB",
		"work_mem":       "64MB",
		// The zone sessions start in; the rollups are cut in UTC too.
		"timezone": "UTC",
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping PostgreSQL")
		if stopErr := cluster.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	benchkit.Done("PostgreSQL on %s:%d (%s)", cluster.Host, cluster.Port, benchkit.Since(t0))

	if err := createShop(ctx, cluster); err != nil {
		return err
	}
	if err := loadShop(ctx, cluster.DSN("shop"), o); err != nil {
		return err
	}

	cfgPath, logPath := filepath.Join(dir, "pgrollup.yaml"), filepath.Join(dir, "pgrollup.log")
	// The log is this run's alone (proc.Start appends).
	if err := os.Remove(logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	benchkit.Step("Starting pgrollup")
	t0 = time.Now()
	// A short drain: psql sessions left open must not hold up Ctrl-C for long.
	rollupProc, err := proc.StartPgrollup(bin, dir, demoConfig(o, cluster.DSN("shop"), filepath.Join(dir, "data")), "--shutdown-timeout", "5s")
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping pgrollup")
		rollupProc.Stop(15 * time.Second)
	}()
	if err := proc.WaitReady(ctx, rollupProc, "http://"+o.admin+"/readyz", 60*time.Second); err != nil {
		return err
	}
	benchkit.Done("pgrollup serving on %s, admin on %s (%s)", o.listen, o.admin, benchkit.Since(t0))

	benchkit.Step("Building the rollups (pgrollup starts the first builds itself; progress from GET /api/rollups)")
	if _, err := waitForBuilds(ctx, rollupProc, o.admin, o.buildTimeout); err != nil {
		return fmt.Errorf("%w\n%s", err, proc.Tail(logPath, 20))
	}

	demoURL := fmt.Sprintf("postgres://demo:demo@%s/shop?sslmode=disable", o.listen)
	directURL := cluster.DSNFor("demo", "demo", "shop")
	if err := waitServing(ctx, demoURL); err != nil {
		return fmt.Errorf("%w\n%s", err, proc.Tail(logPath, 20))
	}
	benchkit.Step("Running the dashboard directly and through pgrollup (%d runs each)", o.runs)
	out, err := runDashboard(ctx, directURL, demoURL, o.runs)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, proc.Tail(logPath, 20))
	}
	printTable(out, o.runs)
	if hits, passthrough, err := hitRate(ctx, o.admin); err == nil && hits+passthrough > 0 {
		fmt.Printf("\n  pgrollup's hit rate so far: %.0f%% (%.0f statements from rollups, %.0f passed through; see /metrics)\n",
			100*hits/(hits+passthrough), hits, passthrough)
	}
	printHowTo(o, cluster, strings.TrimSuffix(demoURL, "?sslmode=disable"), cfgPath, logPath)

	select {
	case <-ctx.Done():
		fmt.Println()
	case <-rollupProc.Exited:
		return fmt.Errorf("pgrollup exited unexpectedly (%s)\n%s", exitText(rollupProc.WaitErr), proc.Tail(logPath, 20))
	}
	return nil
}

// waitServing waits until pgrollup routes the first dashboard statement to
// a rollup: its router picks up a finished build a moment after the admin
// API reports it.
func waitServing(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting through pgrollup as demo: %w", err)
	}
	defer conn.Close(context.Background())
	for {
		route, _, reason, err := explain(ctx, conn, dashboard[0].sql)
		if err != nil {
			return fmt.Errorf("EXPLAIN (ROLLUP) through pgrollup: %w", err)
		}
		if route == "rollup" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rollups are built but pgrollup does not use them: %s", reason)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printHowTo(o options, cluster *pgcluster.Cluster, demoURL, cfgPath, logPath string) {
	host, port, _ := net.SplitHostPort(o.listen)
	fmt.Printf(`
pgrollup is running in front of the demo warehouse. Connect with psql (or any
Postgres client; user demo, password demo, database shop):

  psql "%s"

and try the statements above, or ask pgrollup how it would answer one:

  EXPLAIN (ROLLUP) SELECT status, count(*) FROM orders GROUP BY status;
  SHOW ROLLUPS;

Metabase: Add a database > PostgreSQL; Host %s, Port %s, Database name shop,
  Username demo, Password demo, SSL off.
Tableau:  Connect > PostgreSQL; Server %s, Port %s, Database shop,
  Authentication Username and Password, demo / demo, Require SSL unchecked.
  (A BI tool in a container cannot reach 127.0.0.1 here: restart the demo with
  DEMO_FLAGS='-listen 0.0.0.0:%s -self-signed', turn SSL on in the tool and use this
  machine's address: passwords then travel over TLS.)

The same database directly, for comparison:

  psql "%s"

Rollups:  bin/pgrollup status --admin http://%s
Refresh:  bin/pgrollup refresh --wait --admin http://%s orders_hourly
Metrics:  curl -s http://%s/metrics | grep '^pgrollup_'
Config:   %s
Log:      %s

Press Ctrl-C to stop pgrollup and PostgreSQL.
`, demoURL, host, port, host, port, port, cluster.DSNFor("demo", "demo", "shop"), o.admin, o.admin, o.admin, rel(cfgPath), rel(logPath))
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// progress prints "orders  120000/200000  60%" in place on a terminal, or a
// line per 25% otherwise.
type progress struct {
	what     string
	total    int
	tty      bool
	lastLine int
}

func newProgress(what string, total int) *progress {
	st, err := os.Stdout.Stat()
	return &progress{what: what, total: total, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) set(n int) {
	pct := n * 100 / p.total
	if p.tty {
		const width = 30
		fill := pct * width / 100
		fmt.Printf("\r    %-8s [%s%s] %d/%d %3d%%", p.what, strings.Repeat("#", fill), strings.Repeat(".", width-fill), n, p.total, pct)
		return
	}
	if q := pct / 25; q > p.lastLine || n == p.total {
		p.lastLine = q
		fmt.Printf("    %s %d/%d %d%%\n", p.what, n, p.total, pct)
	}
}

func (p *progress) finish() {
	if p.tty {
		fmt.Println()
	}
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Err != nil {
			return opErr.Err
		}
		return err
	}
	return l.Close()
}

func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return addr
}

// rel shortens a path under the working directory for printing.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
