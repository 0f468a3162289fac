package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// diffRollups is the configuration under test. The first six mirror the
// rollups of rewrite's own tests (rewrite/helpers_test.go testConfig), same
// names, dimensions, grains, joins and filters, so that a statement those
// tests expect to match must hit here too; some carry extra measures, which
// can only add matches. The others are the ones the differential suite adds.
func diffRollups() []map[string]any {
	return []map[string]any{
		{
			"name": "orders_daily", "table": "public.orders",
			"dimensions":     []string{"status", "customers.country", "quantity"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"sum(amount)", "count(*)", "min(amount)", "max(amount)", "count(distinct customer_id)", "sum(price)", "count(price)", "sum(quantity)"},
		},
		{
			// Partitioned by month, built without build_range: the builder learns
			// the partitions from the rows.
			"name": "orders_hourly", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour", "partition_granularity": "month",
			"measures": []string{"sum(amount)", "count(*)", "min(amount)", "max(amount)", "avg(price)", "sum(price)", "count(price)", "sum(quantity)", "sum(big)", "min(price)", "max(price)"},
		},
		{
			"name": "orders_weekly_paid", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "week",
			"measures": []string{"sum(amount)", "count(*)"},
			"filters":  []string{"status <> 'cancelled'"},
		},
		{
			"name": "orders_by_store", "table": "public.orders",
			"dimensions": []string{"stores.region"},
			"measures":   []string{"count(*)"},
		},
		{
			"name": "orders_by_day", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "order_date", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)", "sum(quantity)", "min(amount)", "max(amount)"},
		},
		{
			"name": "orders_local_month", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "local_ts", "granularity": "month",
			"measures": []string{"count(*)", "sum(amount)"},
		},
		{
			// The brief's daily rollup: status only, so it is the smallest for
			// day-grain statements in UTC and rule 10 picks it.
			"name": "daily_status", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"sum(amount)", "count(*)", "min(amount)", "max(amount)", "avg(price)", "sum(price)", "count(price)", "count(distinct customer_id)", "sum(quantity)", "sum(big)", "min(price)", "max(price)"},
		},
		{
			"name": "local_daily", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "local_ts", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)", "avg(amount)", "max(price)", "sum(big)"},
		},
		{
			"name": "country_monthly", "table": "public.orders",
			"dimensions":     []string{"customers.country", "customers.segment", "status"},
			"time_dimension": "created_at", "granularity": "month",
			"measures": []string{"count(*)", "sum(amount)", "sum(quantity)"},
		},
		{
			// The joined table has a status column too: the build must read the fact table's.
			"name": "tickets_by_tier", "table": "public.tickets",
			"dimensions":     []string{"status", "accounts.tier"},
			"time_dimension": "opened_at", "granularity": "day",
			"measures": []string{"count(*)"},
		},
	}
}

// diffFixture is the running set-up of the differential suite: its own
// database in the shared cluster and its own pgrollup in front of it.
type diffFixture struct {
	proxy   *proxyProc
	cfgFile string
	rollups int // how many rollups its configuration declares
	direct  target
	via     target
	crashes []string // the panics of pgrollup processes that died
}

// diffOrders is the size of the fact table: big enough that every day and
// every hour around the DST changes has rows (a fifth of them sit within a
// day and a half of one), small enough that thousands of statements on
// Postgres fit the suite's time budget on a shared two-core machine.
const diffOrders = 12000

func startDiffFixture(t *testing.T) *diffFixture {
	t.Helper()
	return startDiffFixtureWith(t, "differential", diffRollups(), "")
}

// startDiffFixtureWith is startDiffFixture with other rollups over the same
// dataset and tables; name tells its pgrollup's directory and log apart.
// A locale other than "" creates the database with it (the cluster's is C).
func startDiffFixtureWith(t *testing.T, name string, rollups []map[string]any, locale string) *diffFixture {
	t.Helper()
	create := "CREATE DATABASE " + diffDB + " OWNER " + userScram
	if locale != "" {
		create += " TEMPLATE template0 LOCALE '" + strings.ReplaceAll(locale, "'", "''") + "'"
	}
	ctx := testCtx(t, 3*time.Minute)
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + diffDB + " WITH (FORCE)",
		create,
		// Sorts for DISTINCT aggregates stay in memory: the suite's time is
		// mostly Postgres's. Answers do not depend on it.
		"ALTER DATABASE " + diffDB + " SET work_mem = '64MB'",
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, diffDB))
	start := time.Now()
	if err := loadDiffData(ctx, owner, diffOrders); err != nil {
		t.Fatalf("loading the dataset: %v", err)
	}
	t.Logf("dataset: %d orders loaded in %s", diffOrders, time.Since(start).Round(time.Millisecond))
	owner.Close(ctx)

	fx := &diffFixture{direct: target{name: "direct", host: env.pg.Host, port: env.pg.Port}, rollups: len(rollups)}
	var err error
	if fx.cfgFile, err = writeDiffConfig(name, rollups); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p := fx.proxy
		if p == nil {
			return
		}
		err := p.stop(10 * time.Second)
		if err != nil {
			t.Errorf("%s pgrollup did not shut down cleanly on SIGTERM: %v", name, err)
		}
		if t.Failed() || err != nil {
			t.Logf("===== pgrollup log (%s) =====\n%s", name, tail(p.log.Bytes(), 200))
		}
	})
	if err := fx.start(ctx, t); err != nil {
		t.Fatal(err) // the cleanup prints the proxy's log
	}
	return fx
}

// start starts pgrollup with the configuration and waits for its rollups.
func (fx *diffFixture) start(ctx context.Context, t *testing.T) error {
	p, err := launchDiffProxy(ctx, fx.cfgFile)
	if err != nil {
		return err
	}
	fx.proxy = p
	fx.via = target{name: "proxy", host: p.host, port: p.port}
	start := time.Now()
	states, err := waitRollupsActive(ctx, p, fx.rollups)
	if err != nil {
		return err
	}
	t.Logf("rollups settled %s after start: %s", time.Since(start).Round(time.Millisecond), states)
	return nil
}

// crashed reports whether pgrollup died, and if so keeps its last words and
// starts a new one over the same data directory, so that the rest of the
// suite still runs and reports. It fails t if pgrollup does not come back.
func (fx *diffFixture) crashed(ctx context.Context, t *testing.T) (string, bool) {
	last, died, err := fx.restartIfDead(ctx, t)
	if err != nil {
		t.Fatalf("restarting pgrollup after it died: %v", err)
	}
	return last, died
}

// restartIfDead is crashed for another goroutine than the test's.
func (fx *diffFixture) restartIfDead(ctx context.Context, t *testing.T) (string, bool, error) {
	select {
	case <-fx.proxy.exited:
	default:
		return "", false, nil
	}
	last := fmt.Sprintf("pgrollup exited (%v); the end of its log:\n%s", fx.proxy.err, diffPanicOf(fx.proxy.log.Bytes()))
	fx.crashes = append(fx.crashes, last)
	return last, true, fx.start(ctx, t)
}

// diffPanicOf cuts a Go panic and its first frames out of a log.
func diffPanicOf(log []byte) string {
	s := string(log)
	i := strings.Index(s, "panic: ")
	if i < 0 {
		return string(tail(log, 20))
	}
	lines := strings.SplitN(s[i:], "\n", 14)
	return strings.Join(lines[:min(len(lines), 13)], "\n")
}

// writeDiffConfig writes the differential configuration with the given
// rollups into a directory of its own for name, and returns its path. Its
// ports stay the same over restarts.
func writeDiffConfig(name string, rollups []map[string]any) (string, error) {
	dir := filepath.Join(env.tmp, "proxy-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	adminPort, err := freePort()
	if err != nil {
		return "", err
	}
	cfg := map[string]any{
		"listen":         net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"warehouse":      map[string]any{"dsn": env.pg.DSN(diffDB)},
		"data_dir":       filepath.Join(dir, "data"),
		"storage":        map[string]any{"url": "file://" + filepath.Join(dir, "data", "rollups")},
		"worker":         map[string]any{"concurrency": 2, "duckdb_memory_limit": "1GB"},
		"build_timezone": "UTC",
		"admin": map[string]any{
			"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
			"token":  adminTok,
		},
		"tables": []map[string]any{{
			"name": "public.orders",
			"joins": []map[string]any{
				{"table": "public.customers", "on": "orders.customer_id = customers.id", "type": "left", "relationship": "many_to_one"},
				{"table": "public.stores", "on": "orders.store_id = stores.id", "type": "inner", "relationship": "many_to_one"},
			},
		}, {
			"name": "public.tickets",
			"joins": []map[string]any{
				{"table": "public.accounts", "on": "tickets.account_id = accounts.id", "type": "left", "relationship": "many_to_one"},
			},
		}},
		"rollups": rollups,
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	cfgFile := filepath.Join(dir, "pgrollup.yaml")
	return cfgFile, os.WriteFile(cfgFile, text, 0o600)
}

// launchDiffProxy starts a pgrollup with the differential configuration
// (startProxy's has no rollups) and waits for /readyz.
func launchDiffProxy(ctx context.Context, cfgFile string) (*proxyProc, error) {
	text, err := os.ReadFile(cfgFile)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Listen string `yaml:"listen"`
		Admin  struct {
			Listen string `yaml:"listen"`
		} `yaml:"admin"`
	}
	if err := yaml.Unmarshal(text, &cfg); err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, err
	}
	p := &proxyProc{
		name:   "differential",
		host:   host,
		port:   port,
		admin:  cfg.Admin.Listen,
		log:    &syncBuffer{},
		exited: make(chan struct{}),
	}
	// Info, not debug: a debug line per statement would be most of the run's output.
	return p.start(ctx, cfgFile, text, "info")
}

// waitRollupsActive polls GET /api/rollups until all n rollups are active;
// a failed build ends the wait at once with its error.
func waitRollupsActive(ctx context.Context, p *proxyProc, n int) (string, error) {
	var last string
	for {
		code, body, err := p.adminGet("/api/rollups")
		if err == nil && code == http.StatusOK {
			var list []struct {
				Name      string `json:"name"`
				Status    string `json:"status"`
				LastError string `json:"last_error"`
				Rows      int64  `json:"rows"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				return "", fmt.Errorf("GET /api/rollups: %v\n%s", err, body)
			}
			active := 0
			var states []string
			for _, r := range list {
				if r.Status == "failed" {
					return "", fmt.Errorf("rollup %s failed to build: %s", r.Name, r.LastError)
				}
				if r.Status == "active" {
					active++
				}
				states = append(states, fmt.Sprintf("%s=%s(%d rows)", r.Name, r.Status, r.Rows))
			}
			sort.Strings(states)
			last = strings.Join(states, " ")
			if len(list) == n && active == n {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("rollups not all active: %s: %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// diffConnect opens a pgx connection for the suite's role to a target, with
// the given session settings sent in the startup message (as drivers do).
func diffConnect(ctx context.Context, tg target, settings map[string]string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(tg.DSN(userScram, diffDB))
	if err != nil {
		return nil, err
	}
	for k, v := range settings {
		cfg.RuntimeParams[k] = v
	}
	return pgx.ConnectConfig(ctx, cfg)
}
