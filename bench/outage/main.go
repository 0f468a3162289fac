// Command pgrollup-bench-outage measures what pgrollup serves while its
// warehouse is down: a throw-away Postgres with an orders table, pgrollup in
// front of it with a rollup, and N clients (8 by default) that each send a
// dashboard's aggregate statements (answered from the rollup) and a lookup
// the warehouse answers, one after the other, for a while before, during and
// after an outage (Postgres stopped with pg_ctl stop -m fast, then started
// again). A login loop opens a new session every half second throughout.
//
//	make bench-outage OUTAGE_FLAGS='-clients 8 -outage 30s'
//
// It prints, per phase, the statements answered and failed per second, the
// rollup answers' latency, the logins, and how long after Postgres accepted
// connections again the clients' own sessions relayed to it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/promtext"
)

const (
	benchUser     = "bench"
	benchPassword = "bench-pw"
	benchDB       = "shop"
)

// The dashboard: statements the rollup answers, and one it cannot.
var (
	rollupStatements = []string{
		"SELECT status, sum(amount), count(*) FROM orders GROUP BY status ORDER BY status",
		"SELECT date_trunc('month', created_at) AS m, sum(amount) FROM orders WHERE status <> 'cancelled' GROUP BY 1 ORDER BY 1",
		"SELECT count(*) FROM orders WHERE status IN ('paid', 'shipped')",
	}
	passthroughStatement = "SELECT id, amount::text FROM orders WHERE id = $1"
)

func main() {
	bin := flag.String("pgrollup", "bin/pgrollup", "the pgrollup binary")
	clients := flag.Int("clients", 8, "client sessions sending statements")
	rows := flag.Int("rows", 200000, "rows in the orders table")
	before := flag.Duration("before", 10*time.Second, "load before the outage")
	outage := flag.Duration("outage", 30*time.Second, "how long Postgres is down")
	after := flag.Duration("after", 10*time.Second, "load after Postgres is back")
	keep := flag.Bool("keep", false, "keep the working directory (pgrollup's config and log)")
	timeline := flag.Bool("timeline", false, "also print the answers and errors of every second")
	flag.Parse()
	keepDir, printTimeline = *keep, *timeline
	benchkit.Main("bench-outage", func(ctx context.Context) error {
		return run(ctx, *bin, *clients, *rows, *before, *outage, *after)
	})
}

// keepDir keeps the working directory (-keep); printTimeline prints the
// outcomes of every second (-timeline).
var keepDir, printTimeline bool

func run(ctx context.Context, bin string, clients, rows int, before, outage, after time.Duration) error {
	bin, err := benchkit.PgrollupBinary(bin, "bench-outage")
	if err != nil {
		return err
	}
	dir, removeDir, err := benchkit.TempDir("pgrollup-bench-outage-", keepDir)
	if err != nil {
		return err
	}
	defer removeDir()

	fmt.Printf("Starting Postgres, %d orders\n", rows)
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Config: map[string]string{"max_connections": "200"}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if pg.External {
		return errors.New("PGROLLUP_TEST_DSN names an external server, which this benchmark cannot stop")
	}
	if err := setup(ctx, pg, rows); err != nil {
		return err
	}
	p, err := startPgrollup(ctx, bin, dir, pg)
	if err != nil {
		return err
	}
	defer p.proc.Stop(10 * time.Second)
	fmt.Printf("pgrollup on 127.0.0.1:%d; log %s\n", p.port, p.proc.LogPath)

	expected := map[string]string{}
	conn, err := pgx.Connect(ctx, p.dsn())
	if err != nil {
		return err
	}
	for _, sql := range rollupStatements {
		if expected[sql], err = rowsText(ctx, conn, sql); err != nil {
			return err
		}
	}
	conn.Close(ctx)

	l := &load{phaseStart: map[string]time.Time{}}
	l.setPhase("before")
	var wg sync.WaitGroup
	// Closed to stop the load between statements: a canceled context would
	// make pgx close the connection whose statement it interrupts.
	stopLoad := make(chan struct{})
	conns := make([]*pgx.Conn, clients)
	for i := range clients {
		if conns[i], err = pgx.Connect(ctx, p.dsn()); err != nil {
			return err
		}
		wg.Add(1)
		go func(c *pgx.Conn, seed int) {
			defer wg.Done()
			l.client(ctx, stopLoad, c, seed, expected)
		}(conns[i], i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.logins(ctx, stopLoad, p.dsn())
	}()

	fmt.Printf("Load from %d clients: %s before the outage\n", clients, before)
	sleep(ctx, before)
	l.setPhase("stopping")
	if err := pg.Halt(ctx); err != nil {
		return err
	}
	l.setPhase("outage")
	fmt.Printf("Postgres stopped; %s without it\n", outage)
	sleep(ctx, outage)
	l.setPhase("starting")
	if err := pg.Resume(ctx); err != nil {
		return err
	}
	back := time.Now()
	l.setPhase("after")
	fmt.Printf("Postgres started again; %s after\n", after)
	sleep(ctx, after)
	close(stopLoad)
	wg.Wait()
	closed := 0
	for _, c := range conns {
		if c.IsClosed() {
			closed++
		}
		c.Close(context.Background())
	}
	up, _ := p.metric(context.Background(), "pgrollup_warehouse_up")
	return l.report(clients, back, closed, up)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// setup creates the role, the database and the orders.
func setup(ctx context.Context, pg *pgcluster.Cluster, rows int) error {
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := benchkit.ExecAll(ctx, conn,
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE "+benchUser+" LOGIN PASSWORD '"+benchPassword+"'",
		"CREATE DATABASE "+benchDB+" OWNER "+benchUser); err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, pg.DSNFor(benchUser, benchPassword, benchDB))
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	_, err = db.Exec(ctx, `CREATE TABLE orders (
	id bigint PRIMARY KEY,
	status text NOT NULL,
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO orders
SELECT g, (ARRAY['paid','shipped','cancelled','refunded'])[1 + g % 4], round((g * 7.31) % 500, 2),
	timestamptz '2024-01-01 00:00:00+00' + (g * interval '1 minute') * (525600.0 / `+strconv.Itoa(rows)+`)
FROM generate_series(1, `+strconv.Itoa(rows)+`) g;
ANALYZE orders;`)
	return err
}

// pgrollup is the running `pgrollup serve`.
type pgrollup struct {
	proc     *proc.Process
	port     int
	adminURL string
}

func startPgrollup(ctx context.Context, bin, dir string, pg *pgcluster.Cluster) (*pgrollup, error) {
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	port, adminPort := ports[0], ports[1]
	cfg := proc.Config{
		Writer: "bench/outage", Listen: fmt.Sprintf("127.0.0.1:%d", port), Admin: fmt.Sprintf("127.0.0.1:%d", adminPort),
		WarehouseDSN: pg.DSN(benchDB), DataDir: filepath.Join(dir, "data"),
	}.YAML(`build_timezone: UTC
tables:
  - name: public.orders
rollups:
  - name: orders_daily
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*)]
`)
	p := &pgrollup{port: port, adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	if p.proc, err = proc.StartPgrollup(bin, dir, cfg, "--shutdown-timeout", "5s"); err != nil {
		return nil, err
	}
	if err := p.waitServed(ctx); err != nil {
		p.proc.Stop(10 * time.Second)
		return nil, p.proc.Failed(err)
	}
	return p, nil
}

func (p *pgrollup) dsn() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(benchUser, benchPassword),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/" + benchDB,
		// The rollup's buckets are cut in UTC; so must the session's.
		RawQuery: "sslmode=disable&timezone=UTC"}
	return u.String()
}

// waitServed waits until the rollup answers the dashboard's first statement.
func (p *pgrollup) waitServed(ctx context.Context) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-p.proc.Exited:
			return errors.New("pgrollup exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the rollup does not answer after 3 minutes")
		}
		conn, err := pgx.Connect(ctx, p.dsn())
		if err != nil {
			continue
		}
		served := true
		for _, sql := range rollupStatements {
			text, err := rowsText(ctx, conn, "EXPLAIN (ROLLUP) "+sql)
			served = served && err == nil && strings.Contains(text, "chosen")
		}
		conn.Close(ctx)
		if served {
			return nil
		}
	}
}

// metric reads one series from /metrics.
func (p *pgrollup) metric(ctx context.Context, series string) (float64, error) {
	body, err := proc.Get(ctx, p.adminURL+"/metrics")
	if err != nil {
		return 0, err
	}
	m, err := promtext.Parse(body)
	if err != nil {
		return 0, err
	}
	return m[series], nil
}

func rowsText(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (string, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return "", err
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String(), rows.Err()
}

// load counts outcomes by the phase a statement started in.
type load struct {
	phase      atomic.Pointer[string]
	mu         sync.Mutex
	phaseStart map[string]time.Time
	phaseOrder []string
	stats      map[string]*phaseStats
	// firstRelay is when a client's passthrough statement first succeeded
	// after the outage, per client.
	firstRelay []time.Time
	// seconds counts rollup answers, passthrough answers and errors by the
	// second they ended in, from the first phase's start.
	seconds []([3]int)
}

// tick counts one outcome (0 rollup, 1 passthrough, 2 error) now.
func (l *load) tick(kind int) {
	sec := int(time.Since(l.phaseStart[l.phaseOrder[0]]).Seconds())
	for len(l.seconds) <= sec {
		l.seconds = append(l.seconds, [3]int{})
	}
	l.seconds[sec][kind]++
}

type phaseStats struct {
	rollupOK, passOK, wrong int
	errs                    map[string]int // by SQLSTATE ("net" for a broken connection)
	rollupLatency           []time.Duration
	loginsOK, loginsFailed  int
	loginLatency            []time.Duration
	loginErrs               map[string]int // by SQLSTATE
}

func (l *load) setPhase(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stats == nil {
		l.stats = map[string]*phaseStats{}
	}
	l.stats[name] = &phaseStats{errs: map[string]int{}, loginErrs: map[string]int{}}
	l.phaseStart[name] = time.Now()
	l.phaseOrder = append(l.phaseOrder, name)
	l.phase.Store(&name)
}

func (l *load) record(phase string, f func(*phaseStats)) {
	l.mu.Lock()
	f(l.stats[phase])
	l.mu.Unlock()
}

func errCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "net"
}

// client sends the dashboard's statements and a lookup, in turn.
func (l *load) client(ctx context.Context, stop <-chan struct{}, conn *pgx.Conn, seed int, expected map[string]string) {
	relayedAfter := false
	for n := seed; ctx.Err() == nil; n++ {
		select {
		case <-stop:
			return
		default:
		}
		phase := *l.phase.Load()
		start := time.Now()
		if n%4 != 3 {
			sql := rollupStatements[n%len(rollupStatements)]
			text, err := rowsText(ctx, conn, sql)
			took := time.Since(start)
			if ctx.Err() != nil {
				return
			}
			l.record(phase, func(s *phaseStats) {
				switch {
				case err != nil:
					s.errs[errCode(err)]++
					l.tick(2)
				case text != expected[sql]:
					s.wrong++
				default:
					s.rollupOK++
					s.rollupLatency = append(s.rollupLatency, took)
					l.tick(0)
				}
			})
			continue
		}
		var id int64
		var amount string
		err := conn.QueryRow(ctx, passthroughStatement, 1+n%1000).Scan(&id, &amount)
		if ctx.Err() != nil {
			return
		}
		l.record(phase, func(s *phaseStats) {
			if err != nil {
				s.errs[errCode(err)]++
				l.tick(2)
				return
			}
			s.passOK++
			l.tick(1)
			if phase == "after" && !relayedAfter {
				relayedAfter = true
				l.firstRelay = append(l.firstRelay, time.Now())
			}
		})
	}
}

// logins opens a new session every half second, runs one dashboard
// statement on it and closes it.
func (l *load) logins(ctx context.Context, stop <-chan struct{}, dsn string) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		phase := *l.phase.Load()
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		if err == nil {
			_, err = rowsText(cctx, conn, rollupStatements[0])
			conn.Close(context.Background())
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		took := time.Since(start)
		l.record(phase, func(s *phaseStats) {
			if err != nil {
				s.loginsFailed++
				s.loginErrs[errCode(err)]++
				return
			}
			s.loginsOK++
			s.loginLatency = append(s.loginLatency, took)
		})
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func (l *load) report(clients int, back time.Time, closed int, up float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Printf("\n%d clients, each: 3 rollup statements, then 1 lookup by primary key (passthrough); a new login every 0.5 s\n\n", clients)
	fmt.Println("| phase | seconds | rollup answers/s | rollup p50 | rollup p99 | passthrough answers/s | errors (SQLSTATE: count) | logins ok/failed | login p50 |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
	wrong := 0
	for i, name := range l.phaseOrder {
		end := time.Now()
		if i+1 < len(l.phaseOrder) {
			end = l.phaseStart[l.phaseOrder[i+1]]
		}
		secs := end.Sub(l.phaseStart[name]).Seconds()
		s := l.stats[name]
		wrong += s.wrong
		codes := make([]string, 0, len(s.errs))
		for code, n := range s.errs {
			codes = append(codes, fmt.Sprintf("%s: %d", code, n))
		}
		sort.Strings(codes)
		errs := strings.Join(codes, ", ")
		if errs == "" {
			errs = "none"
		}
		fmt.Printf("| %s | %.1f | %.0f | %s | %s | %.0f | %s | %d/%d | %s |\n", name, secs,
			float64(s.rollupOK)/secs, ms(percentile(s.rollupLatency, 0.5)), ms(percentile(s.rollupLatency, 0.99)),
			float64(s.passOK)/secs, errs, s.loginsOK, s.loginsFailed, ms(percentile(s.loginLatency, 0.5)))
	}
	fmt.Println()
	for _, name := range l.phaseOrder {
		if errs := l.stats[name].loginErrs; len(errs) > 0 {
			fmt.Printf("Failed logins %s: %v\n", name, errs)
		}
	}
	if printTimeline {
		fmt.Println("| second | rollup answers | passthrough answers | errors |")
		fmt.Println("| ---: | ---: | ---: | ---: |")
		for i, c := range l.seconds {
			fmt.Printf("| %d | %d | %d | %d |\n", i, c[0], c[1], c[2])
		}
		fmt.Println()
	}
	if len(l.firstRelay) > 0 {
		sort.Slice(l.firstRelay, func(i, j int) bool { return l.firstRelay[i].Before(l.firstRelay[j]) })
		fmt.Printf("Postgres accepted connections again at t0; the clients' sessions relayed to it again %s (first) to %s (last) after t0 (%d of %d).\n",
			ms(l.firstRelay[0].Sub(back)), ms(l.firstRelay[len(l.firstRelay)-1].Sub(back)), len(l.firstRelay), clients)
	} else {
		fmt.Println("No client session relayed to Postgres after the outage.")
	}
	fmt.Printf("Sessions closed: %d of %d; wrong rollup answers: %d; pgrollup_warehouse_up at the end: %v\n", closed, clients, wrong, up)
	if closed > 0 || wrong > 0 || len(l.firstRelay) < clients {
		return errors.New("sessions were lost, answers were wrong, or sessions did not relay again")
	}
	return nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
}
