package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pathoDB is the pathological suite's own database in the shared cluster.
const pathoDB = "e2e_patho"

const pathoFixtureSQL = `
CREATE TABLE orders (
	id int PRIMARY KEY,
	status text NOT NULL,
	amount numeric(12,2) NOT NULL
);
INSERT INTO orders
SELECT g, (ARRAY['completed','pending','cancelled'])[1 + g % 3], round((g * 7.31) % 500, 2)
FROM generate_series(1, 3000) g;
ANALYZE orders;
`

// pathoRollup answers the suite's aggregates over orders: every statement
// mentions orders, so each one is a statement pgrollup would parse.
const pathoRollup = "orders_by_status"

// pathoMemoryCap is what one statement may add to pgrollup's resident
// memory at its peak (README, "Memory").
const pathoMemoryCap = 256 << 20

// pathoCase is one statement no client should be able to crash pgrollup or
// blow its memory with. Its text is made when it runs: some are tens of MB.
type pathoCase struct {
	name     string
	sql      func() string
	extended bool // Parse/Bind/Execute rather than a simple Query
}

func pathoRepeat(head, part string, n int, tail string) func() string {
	return func() string { return head + strings.Repeat(part, n) + tail }
}

func pathoNest(head, open string, n int, middle, close, tail string) func() string {
	return func() string { return head + strings.Repeat(open, n) + middle + strings.Repeat(close, n) + tail }
}

var pathoCases = []pathoCase{
	// The statement that used to kill pgrollup: libpg_query's stack.
	{name: "30,000-term operator chain", sql: pathoRepeat("SELECT count(*) FROM orders WHERE status = 'completed' AND 1", "+1", 30000, " > 0")},
	{name: "30,000-term operator chain, extended protocol", sql: pathoRepeat("SELECT count(*) FROM orders WHERE status = 'completed' AND 1", "+1", 30000, " > 0"), extended: true},
	{name: "30,000 concatenations", sql: pathoRepeat("SELECT count(*) FROM orders WHERE status = 'x'", " || 'x'", 30000, "")},
	{name: "30,000 casts", sql: pathoRepeat("SELECT count(*)", "::int8", 30000, " FROM orders")},
	{name: "20,000 NOTs", sql: pathoRepeat("SELECT count(*) FROM orders WHERE ", "NOT ", 20000, "true")},
	{name: "30,000 UNION ALL", sql: pathoRepeat("SELECT count(*) FROM orders", " UNION ALL SELECT count(*) FROM orders", 30000, "")},
	{name: "30,000 terms after a comment ended by a carriage return", sql: pathoRepeat("SELECT count(*) FROM orders WHERE 1 -- a comment\r", "+1", 30000, " > 0")},
	{name: "a SET before 30,000 terms", sql: pathoRepeat("SET extra_float_digits = 1; SELECT count(*) FROM orders WHERE 1", "+1", 30000, " > 0")},
	// Nesting.
	{name: "20,000 parentheses", sql: pathoNest("SELECT count(*) FROM orders WHERE ", "(", 20000, "status = 'completed'", ")", "")},
	{name: "5,000 nested subqueries", sql: pathoNest("SELECT ", "(SELECT ", 5000, "count(*) FROM orders", ")", "")},
	{name: "1,000 nested subqueries, extended protocol", sql: pathoNest("SELECT ", "(SELECT ", 1000, "count(*) FROM orders", ")", ""), extended: true},
	{name: "5,000 nested CASE", sql: pathoNest("SELECT ", "CASE WHEN status <> '' THEN ", 5000, "count(*)", " END", " FROM orders GROUP BY status ORDER BY 1")},
	{name: "5,000 nested function calls", sql: pathoNest("SELECT ", "abs(", 5000, "count(*)", ")", " FROM orders")},
	{name: "5,000 nested ARRAY constructors", sql: pathoNest("SELECT count(*), ", "ARRAY[", 5000, "1", "]", " IS NULL FROM orders")},
	{name: "100,000-deep JSON literal", sql: pathoNest("SELECT count(*) FROM orders WHERE '", "[", 100000, "", "]", "'::jsonb IS NOT NULL")},
	{name: "10,000-deep array literal", sql: pathoNest("SELECT count(*) FROM orders WHERE '", "{", 10000, "1", "}", "'::int[] IS NOT NULL")},
	// Spaced out: a run of /* and */ alone costs Postgres's own lexer
	// quadratic time.
	{name: "100,000 nested comments", sql: pathoNest("SELECT count(*) FROM orders /* ", "/* ", 100000, "", "*/ ", "*/")},
	// Size.
	{name: "a 50 MB string literal", sql: func() string {
		return "SELECT count(*) FROM orders WHERE status = '" + strings.Repeat("x", 50<<20) + "'"
	}},
	{name: "a 1,000,000-value IN list", sql: pathoRepeat("SELECT count(*) FROM orders WHERE id IN (1", ",1", 1000000, ")")},
	{name: "a 60,000-value IN list, beyond the token limit", sql: pathoRepeat("SELECT status, count(*) FROM orders WHERE status IN ('completed'", ",'completed'", 60000, ") GROUP BY status")},
	// Within the limits: parsed, and answered from the rollup.
	{name: "a 30,000-value IN list, within the limits", sql: pathoRepeat("SELECT status, count(*) FROM orders WHERE status IN ('completed'", ",'pending'", 30000, ") GROUP BY status ORDER BY status")},
	{name: "450 nested subqueries, within the limits", sql: pathoNest("SELECT ", "(SELECT ", 450, "count(*) FROM orders", ")", "")},
	{name: "a 400-term chain, within the limits", sql: pathoRepeat("SELECT status, count(*) FROM orders WHERE 1", "+1", 400, " > 0 GROUP BY status ORDER BY status")},
}

// TestPathologicalStatements sends each pathological statement through
// pgrollup and straight to Postgres: pgrollup must stay up, each must get
// Postgres's own answer or SQLSTATE, no statement may raise pgrollup's
// resident memory by more than pathoMemoryCap, and afterwards ordinary
// statements, a rollup hit among them, must still answer as Postgres does.
func TestPathologicalStatements(t *testing.T) {
	ctx := testCtx(t, 10*time.Minute)
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + pathoDB + " WITH (FORCE)",
		"CREATE DATABASE " + pathoDB + " OWNER " + userScram,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, pathoDB))
	if _, err := owner.Exec(ctx, pathoFixtureSQL); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	p := startPathoProxy(t, ctx)
	if _, err := waitRollupsActive(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	direct := target{name: "direct", host: env.pg.Host, port: env.pg.Port}
	via := target{name: "proxy", host: p.host, port: p.port}
	open := func(tg target) *pgconn.PgConn {
		return connect(t, ctx, tg.DSN(userScram, pathoDB)).PgConn()
	}
	// A session open throughout, which no other session's statement may
	// disturb.
	keeper := open(via)
	mem := newRSSWatch(p)

	for _, c := range pathoCases {
		t.Run(c.name, func(t *testing.T) {
			sql := c.sql()
			want := pathoRun(ctx, open(direct), sql, c.extended)
			idle := mem.reset()
			got := pathoRun(ctx, open(via), sql, c.extended)
			peak := mem.peak()
			select {
			case <-p.exited:
				t.Fatalf("pgrollup died (%v):\n%s", p.err, tail(p.log.Bytes(), 40))
			default:
			}
			t.Logf("%d bytes: Postgres says %s", len(sql), clip(want))
			if got != want {
				t.Errorf("pgrollup answers\n  %s\nPostgres answers\n  %s", clip(got), clip(want))
			}
			if idle > 0 && peak-idle > pathoMemoryCap {
				t.Errorf("pgrollup's resident memory rose by %d MB (from %d MB), over the %d MB cap", (peak-idle)>>20, idle>>20, pathoMemoryCap>>20)
			}
			if idle > 0 {
				t.Logf("pgrollup's resident memory: %d MB idle, %+d MB at the peak", idle>>20, (peak-idle)>>20)
			}
		})
	}

	// Ordinary statements afterwards, on the session kept open and on a
	// new one: a rollup hit and a passthrough, equal to Postgres's.
	before, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	ordinary := []string{
		"SELECT status, count(*), sum(amount) FROM orders GROUP BY status ORDER BY status",
		"SELECT count(*) FROM orders WHERE amount > 100",
	}
	d := open(direct)
	for _, conn := range []*pgconn.PgConn{keeper, open(via)} {
		for _, sql := range ordinary {
			if got, want := pathoRun(ctx, conn, sql, false), pathoRun(ctx, d, sql, false); got != want {
				t.Errorf("%s: pgrollup answers %s, Postgres %s", sql, got, want)
			}
			if got, want := pathoRun(ctx, conn, sql, true), pathoRun(ctx, d, sql, true); got != want {
				t.Errorf("%s, extended protocol: pgrollup answers %s, Postgres %s", sql, got, want)
			}
		}
	}
	after, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	if hits := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "rollup"); hits[pathoRollup] != 4 {
		t.Errorf("rollup hits afterwards: %v, want 4 of %s", hits, pathoRollup)
	}
	if misses := after.sum(`pgrollup_rollup_misses_total{reason="parse_limit"}`); misses == 0 {
		t.Errorf("no statement was counted as a miss beyond the parse limits")
	}
}

// pathoRun runs sql and renders what came back: the rows, or the SQLSTATE.
func pathoRun(ctx context.Context, conn *pgconn.PgConn, sql string, extended bool) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var results []*pgconn.Result
	var err error
	if extended {
		r := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		results, err = []*pgconn.Result{r}, r.Err
	} else {
		results, err = conn.Exec(ctx, sql).ReadAll()
	}
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		return "ERROR " + pe.Code
	case err != nil:
		return "FAILED " + err.Error()
	}
	var b strings.Builder
	for _, r := range results {
		for _, row := range r.Rows {
			for i, v := range row {
				if i > 0 {
					b.WriteByte('|')
				}
				b.Write(v)
			}
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " (%s) ", r.CommandTag)
	}
	return b.String()
}

// rssWatch reads a process's resident memory from /proc: its peak since the
// last reset, which writing 5 to clear_refs starts again. Where that cannot
// be done it reports 0.
type rssWatch struct{ pid int }

func newRSSWatch(p *proxyProc) *rssWatch { return &rssWatch{pid: p.cmd.Process.Pid} }

// reset starts a new peak and returns the resident memory now.
func (w *rssWatch) reset() int64 {
	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(w.pid), "clear_refs"), []byte("5"), 0); err != nil {
		return 0
	}
	return w.field("VmRSS:")
}

// peak returns the highest resident memory since the last reset.
func (w *rssWatch) peak() int64 { return w.field("VmHWM:") }

func (w *rssWatch) field(name string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// startPathoProxy starts a pgrollup over the suite's database with one
// rollup over orders and the default limits.
func startPathoProxy(t *testing.T, ctx context.Context) *proxyProc {
	t.Helper()
	p, _ := startTestProxy(t, ctx, "patho", filepath.Join(env.tmp, "proxy-patho"), env.pg.DSN(pathoDB), map[string]any{
		"rollups": []map[string]any{{
			"name": pathoRollup, "table": "public.orders",
			"dimensions": []string{"status"}, "measures": []string{"count(*)", "sum(amount)"},
		}},
	}, "info")
	return p
}
