// Command pgrollup-demo is what `make demo` runs: it starts a throw-away
// PostgreSQL cluster, loads a small generated shop dataset into the database
// "shop" (customers, products and two years of orders), creates the read-only
// role demo/demo, writes a pgrollup config for it under data/demo, starts
// `pgrollup serve` in front of the cluster and prints how to connect. It keeps
// running until Ctrl-C, then stops pgrollup and the cluster.
//
// The data is generated in SQL with generate_series and a fixed random seed, so
// every run loads the same rows (timestamps are relative to today).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

type options struct {
	pgrollup  string
	dir       string
	listen    string
	admin     string
	customers int
	products  int
	orders    int
}

func main() {
	var o options
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary to run")
	flag.StringVar(&o.dir, "dir", "data/demo", "where the demo writes its pgrollup config, data and log")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:7432", "pgrollup's client listener")
	flag.StringVar(&o.admin, "admin", "127.0.0.1:7480", "pgrollup's admin/metrics HTTP listener")
	flag.IntVar(&o.customers, "customers", 5000, "customers to generate")
	flag.IntVar(&o.products, "products", 200, "products to generate")
	flag.IntVar(&o.orders, "orders", 200000, "orders to generate")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if o.customers < 1 || o.products < 1 || o.orders < 1 {
		fmt.Fprintln(os.Stderr, "demo: -customers, -products and -orders must be at least 1")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "demo: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		}
		os.Exit(1)
	}
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
	bin, err := filepath.Abs(o.pgrollup)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("pgrollup binary: %w (run `make build` first, or use `make demo`)", err)
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

	step("Starting a throw-away PostgreSQL cluster")
	t0 := time.Now()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		Config: map[string]string{"max_connections": "100", "shared_buffers": "128MB"},
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
	done("PostgreSQL on %s:%d (%s)", cluster.Host, cluster.Port, since(t0))

	if err := createShop(ctx, cluster); err != nil {
		return err
	}
	if err := loadShop(ctx, cluster.DSN("shop"), o); err != nil {
		return err
	}

	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig(o, cluster.DSN("shop"), filepath.Join(dir, "data"))), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "pgrollup.log")
	step("Starting pgrollup")
	t0 = time.Now()
	proc, err := startPgrollup(bin, cfgPath, logPath)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping pgrollup")
		if stopErr := proc.stop(15 * time.Second); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if err := waitReady(ctx, proc, "http://"+o.admin+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logPath, 20))
	}
	done("pgrollup serving on %s, admin on %s (%s)", o.listen, o.admin, since(t0))

	demoURL := fmt.Sprintf("postgres://demo:demo@%s/shop", o.listen)
	n, err := countOrders(ctx, demoURL+"?sslmode=disable")
	if err != nil {
		return fmt.Errorf("checking a query through pgrollup as demo: %w\n%s", err, tail(logPath, 20))
	}
	printHowTo(o, cluster, demoURL, cfgPath, logPath, n)

	select {
	case <-ctx.Done():
		fmt.Println()
	case <-proc.exited:
		return fmt.Errorf("pgrollup exited unexpectedly (%s)\n%s", exitText(proc.waitErr), tail(logPath, 20))
	}
	return nil
}

// createShop creates the database and the read-only login role.
func createShop(ctx context.Context, cluster *pgcluster.Cluster) error {
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`CREATE DATABASE shop`,
		`CREATE ROLE demo LOGIN PASSWORD 'demo'`,
		`GRANT CONNECT ON DATABASE shop TO demo`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// loadShop creates and fills the shop tables, showing progress.
func loadShop(ctx context.Context, dsn string, o options) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	execSQL := func(sql string, args ...any) error {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", firstLine(sql), err)
		}
		return nil
	}

	step("Generating the shop dataset")
	t0 := time.Now()
	if err := execSQL(schemaSQL); err != nil {
		return err
	}
	// A fixed seed: the same rows on every run, on this one session.
	if err := execSQL(`SELECT setseed(0.4242)`); err != nil {
		return err
	}
	var start time.Time
	if err := conn.QueryRow(ctx, `SELECT date_trunc('day', now()) - interval '730 days'`).Scan(&start); err != nil {
		return err
	}
	if err := execSQL(customersSQL, o.customers, start); err != nil {
		return err
	}
	if err := execSQL(productsSQL, o.products); err != nil {
		return err
	}
	bar := newProgress("orders", o.orders)
	const batch = 20000
	for lo := 1; lo <= o.orders; lo += batch {
		hi := min(lo+batch-1, o.orders)
		if err := execSQL(ordersSQL, lo, hi, o.customers, o.products, start); err != nil {
			return err
		}
		bar.set(hi)
	}
	bar.finish()
	for _, sql := range indexSQL {
		if err := execSQL(sql); err != nil {
			return err
		}
	}
	done("%d customers, %d products, %d orders from %s to today (%s)",
		o.customers, o.products, o.orders, start.Format("2006-01-02"), since(t0))
	return nil
}

const schemaSQL = `
CREATE TABLE customers (
    id           integer PRIMARY KEY,
    name         text NOT NULL,
    country      text,                -- a few are NULL
    signed_up_at timestamptz NOT NULL
);
CREATE TABLE products (
    id       integer PRIMARY KEY,
    name     text NOT NULL,
    category text,                    -- a few are NULL
    price    numeric(12,2) NOT NULL
);
-- No foreign keys: a few orders point at a customer that does not exist.
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer,              -- a few are NULL, a few are orphans
    product_id  integer,
    status      text,                 -- a few are NULL
    amount      numeric(12,2),        -- a few are NULL
    created_at  timestamptz NOT NULL
);
GRANT USAGE ON SCHEMA public TO demo;
GRANT SELECT ON customers, products, orders TO demo;
`

// $1 customers, $2 start of the order history.
const customersSQL = `
INSERT INTO customers (id, name, country, signed_up_at)
SELECT g,
       'Customer ' || g,
       CASE WHEN g % 97 = 0 THEN NULL
            ELSE (ARRAY['US','US','US','US','DE','DE','GB','GB','FR','NL','SE','ES','IT','JP','BR','IN','CA','AU'])[1 + floor(random() * 18)::int]
       END,
       $2::timestamptz - interval '1 year' + random() * interval '3 years'
FROM generate_series(1, $1::int) AS g`

// $1 products.
const productsSQL = `
INSERT INTO products (id, name, category, price)
SELECT g,
       'Product ' || g,
       CASE WHEN g % 53 = 0 THEN NULL
            ELSE (ARRAY['Books','Electronics','Garden','Toys','Grocery','Clothing','Sports','Home'])[1 + floor(random() * 8)::int]
       END,
       round((2 + random() * 298)::numeric, 2)
FROM generate_series(1, $1::int) AS g`

// $1..$2 order ids, $3 customers, $4 products, $5 start of the history.
// sqrt(random()) makes later days busier: a shop that grows.
const ordersSQL = `
INSERT INTO orders (id, customer_id, product_id, status, amount, created_at)
SELECT g,
       CASE WHEN g % 10000 = 9 THEN NULL
            WHEN g % 5000 = 17 THEN $3::int + 1000000   -- an orphan: no such customer
            ELSE 1 + floor(random() * $3::int)::int
       END,
       1 + floor(random() * $4::int)::int,
       CASE WHEN g % 1000 = 3 THEN NULL
            ELSE (ARRAY['completed','completed','completed','completed','completed','completed',
                        'shipped','shipped','pending','cancelled','refunded'])[1 + floor(random() * 11)::int]
       END,
       CASE WHEN g % 1000 = 7 THEN NULL
            ELSE round((1 + random() * random() * 499)::numeric, 2)
       END,
       $5::timestamptz + sqrt(random()) * interval '730 days'
FROM generate_series($1::bigint, $2::bigint) AS g`

var indexSQL = []string{
	`CREATE INDEX orders_created_at ON orders (created_at)`,
	`CREATE INDEX orders_customer_id ON orders (customer_id)`,
	`ANALYZE`,
}

// demoConfig is the pgrollup config for the demo (DESIGN.md §2). The rollups
// are declared for the work that comes next; today every statement passes through.
func demoConfig(o options, warehouseDSN, dataDir string) string {
	q := strconv.Quote
	return `# Written by make demo (demo/main.go) on every run; edits are lost.
listen: ` + q(o.listen) + `
warehouse:
  dsn: ` + q(warehouseDSN) + `   # the throw-away cluster's superuser
data_dir: ` + q(dataDir) + `
storage:
  url: ` + q("file://"+filepath.Join(dataDir, "rollups")) + `
worker:
  cache_dir: ` + q(filepath.Join(dataDir, "cache")) + `
admin:
  listen: ` + q(o.admin) + `
auth:
  cleartext_without_tls: loopback
build_timezone: UTC
tables:
  - name: public.orders
    joins:
      - table: public.customers
        on: orders.customer_id = customers.id
        type: left
        relationship: many_to_one
rollups:
  - name: orders_daily_by_status
    table: public.orders
    dimensions: [status, customers.country]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), avg(amount), min(amount), max(amount)]
    refresh:
      every: 1h
  - name: orders_monthly_by_country
    table: public.orders
    dimensions: [customers.country]
    time_dimension: created_at
    granularity: month
    measures: [sum(amount), count(*), count(distinct customer_id)]
    filters: ["status <> 'cancelled'"]
    refresh:
      every: 1h
`
}

// process is a running pgrollup.
type process struct {
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	waitErr error
}

func startPgrollup(bin, cfgPath, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// A short drain: psql sessions left open must not hold up Ctrl-C for long.
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--shutdown-timeout", "5s")
	cmd.Env = cleanEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group: Ctrl-C reaches the demo, which then stops pgrollup in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// cleanEnv is the environment without PGROLLUP_* variables, which would
// override the generated config (PGROLLUP_LISTEN, PGROLLUP_WAREHOUSE_DSN, ...).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGROLLUP_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop sends SIGTERM (graceful shutdown), then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("pgrollup did not stop within %s of SIGTERM; killed it", grace)
	}
}

func waitReady(ctx context.Context, p *process, url string, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("pgrollup exited before it was ready (%s)", exitText(p.waitErr))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgrollup not ready after %s (GET %s: %s)", limit, url, last)
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// countOrders runs one query through pgrollup as the demo user: proof that it works.
func countOrders(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n)
	return n, err
}

func printHowTo(o options, cluster *pgcluster.Cluster, demoURL, cfgPath, logPath string, orders int64) {
	direct := cluster.DSNFor("demo", "demo", "shop")
	fmt.Printf(`
pgrollup is running in front of the demo warehouse (%d orders answered through it just now).

Connect with psql (or any Postgres client or BI tool; user demo, password demo, database shop):

  psql "%s"

Try, for example:

  -- revenue and orders per month and country
  SELECT date_trunc('month', o.created_at) AS month, c.country, sum(o.amount) AS revenue, count(*) AS orders
  FROM orders o LEFT JOIN customers c ON o.customer_id = c.id
  GROUP BY 1, 2 ORDER BY 1, 2;

  -- orders by status over the last 30 days
  SELECT status, count(*), avg(amount) FROM orders
  WHERE created_at >= now() - interval '30 days'
  GROUP BY status ORDER BY count(*) DESC;

Today every statement is passed through to PostgreSQL unchanged; answering from
rollups comes next. The same database directly, for comparison:

  psql "%s"

Metrics:  curl -s http://%s/metrics | grep '^pgrollup_'
Config:   %s
Log:      %s

Press Ctrl-C to stop pgrollup and PostgreSQL.
`, orders, demoURL, direct, o.admin, rel(cfgPath), rel(logPath))
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

func step(msg string) { fmt.Printf("==> %s\n", msg) }

func done(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
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

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "(" + path + " is empty)"
	}
	return "last lines of " + path + ":\n    " + strings.Join(lines, "\n    ")
}
