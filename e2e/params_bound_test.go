package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// boundDB is the bound-parameter suite's own database in the shared cluster.
const boundDB = "e2e_boundparams"

// boundFixtureSQL is a fact table with a status the rollups filter on and
// do not group by, a number dimension and a timestamptz time column.
const boundFixtureSQL = `
CREATE TABLE sales (
	id int PRIMARY KEY,
	status text,
	qty int NOT NULL,
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL,
	active boolean NOT NULL
);
INSERT INTO sales
SELECT x,
	CASE WHEN x % 17 = 0 THEN NULL ELSE (ARRAY['completed','pending','refunded'])[1 + x % 3] END,
	x % 9,
	round((x * 7.31) % 500, 2),
	timestamptz '2024-01-01 00:00:00+00' + (x * interval '37 minutes'),
	x % 4 <> 0
FROM generate_series(1, 4000) x;
ANALYZE sales;
`

// boundRollups: completed sales by qty, completed sales by day, and all sales
// by active and day.
func boundRollups() []map[string]any {
	return []map[string]any{
		{
			"name": "completed_by_qty", "table": "public.sales",
			"dimensions": []string{"qty"},
			"measures":   []string{"count(*)", "sum(amount)"},
			"filters":    []string{"status = 'completed'"},
		},
		{
			"name": "completed_daily", "table": "public.sales",
			"dimensions":     []string{"qty"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
			"filters":  []string{"status = 'completed'"},
		},
		{
			"name": "active_daily", "table": "public.sales",
			"dimensions":     []string{"active"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
		},
	}
}

type boundCase struct {
	sql    string
	args   []any
	served bool // answered from a rollup
	// untypedPasses: finished by the warehouse, so served only where the
	// values' types are known; pgx's exec mode leaves strings and times
	// untyped in Parse, and such values are not written into a statement.
	untypedPasses bool
}

func boundCases() []boundCase {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	return []boundCase{
		{"SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", []any{"completed"}, true, false},
		{"SELECT count(*), sum(amount) FROM sales WHERE $1 = status AND qty >= $2", []any{"completed", 3}, true, false},
		{"SELECT qty, count(*) FROM sales WHERE status IN ($1) AND qty = $2 GROUP BY qty", []any{"completed", int32(4)}, true, false},
		// Binary time values whose type only the warehouse's description
		// of the statement gives (pgx prepares without types).
		{"SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3", []any{"completed", day(3), day(10)}, true, false},
		{"SELECT qty, count(*) FROM sales WHERE created_at >= $1 AND created_at < $2 AND status = 'completed' GROUP BY qty ORDER BY qty", []any{day(5), day(6)}, true, false},
		// Time and date bounds as text (a string) or binary (time.Time, and a
		// date when the statement casts $n to date), and bool values.
		{"SELECT active, count(*), sum(amount) FROM sales WHERE created_at >= $1 AND created_at < $2 GROUP BY active ORDER BY active", []any{"2024-01-03", "2024-01-10 00:00:00+00"}, true, false},
		{"SELECT active, count(*), sum(amount) FROM sales WHERE created_at >= $1::date AND created_at < $2::date GROUP BY active ORDER BY active", []any{day(3), day(10)}, true, false},
		{"SELECT active, count(*), sum(amount) FROM sales WHERE created_at >= $1::date AND created_at < $2::date GROUP BY active ORDER BY active", []any{"2024-01-03", "2024-01-10"}, true, false},
		{"SELECT count(*), sum(amount) FROM sales WHERE active = $1", []any{true}, true, false},
		{"SELECT count(*), sum(amount) FROM sales WHERE active = $1 AND created_at >= $2", []any{false, day(20)}, true, false},
		{"SELECT count(*), sum(amount) FROM sales WHERE active = $1::boolean AND created_at < $2::timestamptz", []any{"true", "2024-01-20T00:00:00Z"}, true, false},
		// A bound value in HAVING, decided per Bind as in WHERE.
		{"SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty HAVING count(*) > $2 ORDER BY qty", []any{"completed", 140}, true, false},
		{"SELECT active, count(*) FROM sales WHERE created_at >= $1 GROUP BY active HAVING count(*) >= $2 ORDER BY active", []any{day(2), int64(2000)}, true, false},
		// Near misses: outside the filter, NULL, a bound off the grain.
		// A bound off the grain: the whole days from the rollup, the
		// hours at the edge from the warehouse (exact edges).
		{"SELECT active, count(*) FROM sales WHERE created_at >= $1 GROUP BY active ORDER BY active", []any{"2024-01-03 01:00:00+00"}, true, true},
		{"SELECT count(*) FROM sales WHERE created_at >= $1::date AND qty = $2", []any{day(3), 4}, false, false},
		{"SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", []any{"pending"}, false, false},
		{"SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", []any{"Completed"}, false, false},
		{"SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", []any{nil}, false, false},
		{"SELECT count(*) FROM sales WHERE status IN ($1, $2)", []any{"completed", "refunded"}, false, false},
		{"SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3", []any{"completed", day(3).Add(time.Hour), day(10)}, true, true},
	}
}

// TestBoundParamsPgx runs statements with bound filter values through pgx
// in every query mode, twice each (cached modes take another path the
// second time), and compares each answer with Postgres's. Those whose
// values a rollup's filter admits must be answered from it, with no
// fallback; the others must pass through.
func TestBoundParamsPgx(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	p := startBoundProxy(t, ctx)
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			direct := connect(t, ctx, directDSN(userScram, boundDB))
			via := connect(t, ctx, p.DSN(userScram, boundDB))
			for _, c := range boundCases() {
				for round := 0; round < 2; round++ {
					checkServed(t, ctx, p, direct, via, mode, c, fmt.Sprintf("round %d", round))
				}
			}
		})
	}
}

// checkServed runs c on Postgres (direct) and through pgrollup (via) in mode,
// requires equal answers, and that pgrollup answered it from exactly one
// rollup, with no fallback, if and only if c.served.
func checkServed(t *testing.T, ctx context.Context, p *proxyProc, direct, via *pgx.Conn, mode pgx.QueryExecMode, c boundCase, label string) {
	t.Helper()
	before, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := boundRender(ctx, direct, mode, c)
	got, gerr := boundRender(ctx, via, mode, c)
	if werr != nil || gerr != nil {
		t.Fatalf("%s %v: Postgres %v, pgrollup %v", c.sql, c.args, werr, gerr)
	}
	requireSame(t, fmt.Sprintf("%s %v", c.sql, c.args), want, got)
	after, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	hits := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "rollup")
	if fb := after.sum("pgrollup_rollup_fallbacks_total") - before.sum("pgrollup_rollup_fallbacks_total"); fb != 0 {
		t.Errorf("%s %v: fell back to the warehouse after the decision:\n%s", c.sql, c.args, tail(p.log.Bytes(), 20))
	}
	total := 0.0
	for _, n := range hits {
		total += n
	}
	wantServed := c.served && !(c.untypedPasses && mode == pgx.QueryExecModeExec)
	if served := total == 1; served != wantServed || total > 1 {
		t.Errorf("%s %v (%s): answered from rollups %v, want served %v", c.sql, c.args, label, hits, wantServed)
	}
}

func boundRender(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, c boundCase) (string, error) {
	rows, err := conn.Query(ctx, c.sql, append([]any{mode}, c.args...)...)
	if err != nil {
		return "", err
	}
	return renderRows(rows), nil
}

// startBoundProxy creates the suite's database and starts a pgrollup over
// it with its rollups built.
func startBoundProxy(t *testing.T, ctx context.Context) *proxyProc {
	t.Helper()
	return startSuiteProxy(t, ctx, "boundparams", boundDB, boundFixtureSQL, boundRollups())
}

// startSuiteProxy creates database db owned by the SCRAM user, fills it with
// fixture, and starts a pgrollup called name over it with rollups built
// (none empty).
func startSuiteProxy(t *testing.T, ctx context.Context, name, db, fixture string, rollups []map[string]any) *proxyProc {
	t.Helper()
	createSuiteDB(t, ctx, db, fixture)
	return startProxyOver(t, ctx, name, db, rollups, nil)
}

// startProxyOver starts a pgrollup called name over the existing database
// db with rollups built (none empty); extra adds or replaces top-level
// config keys (build_timezone, ...).
func startProxyOver(t *testing.T, ctx context.Context, name, db string, rollups []map[string]any, extra map[string]any) *proxyProc {
	t.Helper()
	cfg := map[string]any{
		"worker":  map[string]any{"concurrency": 2, "duckdb_memory_limit": "512MB"},
		"rollups": rollups,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	p, _ := startTestProxy(t, ctx, name, filepath.Join(env.tmp, "proxy-"+name), env.pg.DSN(db), cfg, "info")
	states, err := waitRollupsActive(ctx, p, len(rollups))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollups: %s", states)
	if strings.Contains(states, "(0 rows)") {
		t.Fatalf("a rollup is empty: %s", states)
	}
	return p
}

// createSuiteDB creates database db owned by the SCRAM user and fills it
// with fixture.
func createSuiteDB(t *testing.T, ctx context.Context, db, fixture string) {
	t.Helper()
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)",
		"CREATE DATABASE " + db + " OWNER " + userScram,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, db))
	if _, err := owner.Exec(ctx, fixture); err != nil {
		t.Fatalf("fixture: %v", err)
	}
}

// boundClientCheck runs a client program against Postgres and pgrollup
// and requires equal output, and that pgrollup answered want statements
// from rollups with no fallback.
func boundClientCheck(t *testing.T, p *proxyProc, run func(tg target) string, want float64) {
	t.Helper()
	via, before, after := clientCompare(t, p, run)
	hits := after.sum("pgrollup_rollup_hits_total") - before.sum("pgrollup_rollup_hits_total")
	if fb := after.sum("pgrollup_rollup_fallbacks_total") - before.sum("pgrollup_rollup_fallbacks_total"); fb != 0 {
		t.Errorf("%v fallback(s) after the decision:\n%s", fb, tail(p.log.Bytes(), 20))
	}
	if hits != want {
		t.Errorf("%v statements answered from rollups, want %v:\n%s", hits, want, via)
	}
}

// clientCompare runs a client program against Postgres and pgrollup,
// requires equal output that says "done", and returns pgrollup's output
// and its metrics before and after.
func clientCompare(t *testing.T, p *proxyProc, run func(tg target) string) (via string, before, after diffMetrics) {
	t.Helper()
	direct := run(target{name: "direct", host: env.pg.Host, port: env.pg.Port})
	before, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	via = run(target{name: "proxy", host: p.host, port: p.port})
	if after, err = diffScrape(p); err != nil {
		t.Fatal(err)
	}
	requireSame(t, "output", direct, via)
	if !strings.Contains(direct, "done") {
		t.Fatalf("the program did not finish:\n%s", direct)
	}
	return via, before, after
}

// boundPsycopg2 binds values as psycopg2 does: written into the text by the
// client, so the proxy sees literals.
const boundPsycopg2 = `
import sys, datetime, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
utc = datetime.timezone.utc
cases = [
    ("SELECT qty, count(*), sum(amount) FROM sales WHERE status = %s GROUP BY qty ORDER BY qty", ("completed",)),
    ("SELECT count(*), sum(amount) FROM sales WHERE status = %s AND created_at >= %s AND created_at < %s",
     ("completed", datetime.datetime(2024, 1, 3, tzinfo=utc), datetime.datetime(2024, 1, 10, tzinfo=utc))),
    ("SELECT qty, count(*) FROM sales WHERE status IN %s AND qty = %s GROUP BY qty", (("completed",), 4)),
    ("SELECT qty, count(*), sum(amount) FROM sales WHERE status = %s GROUP BY qty ORDER BY qty", ("pending",)),
]
for sql, args in cases:
    cur.execute(sql, args)
    print(sql, args, cur.fetchall())
conn.close()
print("done")
`

// TestBoundParamsPsycopg2: 3 of the 4 statements are answered from rollups.
func TestBoundParamsPsycopg2(t *testing.T) {
	requireTool(t, debianPython)
	ctx := testCtx(t, 2*time.Minute)
	p := startBoundProxy(t, ctx)
	boundClientCheck(t, p, func(tg target) string {
		cmd := exec.CommandContext(ctx, debianPython, "-c", boundPsycopg2, tg.DSN(userScram, boundDB))
		cmd.Env = cleanEnv("PYTHONDONTWRITEBYTECODE=1", "PGTZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tg.name, err, out)
		}
		return string(out)
	}, 3)
}

// boundJDBC binds values as pgjdbc does: strings as varchar, timestamps
// with their type unspecified, and from the fifth execution on a named
// server-side statement, with binary values where pgjdbc uses them.
const boundJDBC = `
import java.sql.*;
import java.time.*;

public class Bound {
	public static void main(String[] a) throws Exception {
		try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
			String byQty = "SELECT qty, count(*), sum(amount) FROM sales WHERE status = ? GROUP BY qty ORDER BY qty";
			String byTime = "SELECT count(*), sum(amount) FROM sales WHERE status = ? AND created_at >= ? AND created_at < ? AND qty = ?";
			try (PreparedStatement ps = c.prepareStatement(byQty); PreparedStatement pt = c.prepareStatement(byTime)) {
				for (int i = 0; i < 7; i++) {
					ps.setString(1, i == 6 ? "pending" : "completed");
					print(ps);
					pt.setString(1, "completed");
					pt.setObject(2, OffsetDateTime.of(2024, 1, 2 + i, 0, 0, 0, 0, ZoneOffset.UTC));
					pt.setTimestamp(3, Timestamp.from(Instant.parse("2024-01-20T00:00:00Z")));
					pt.setInt(4, i);
					print(pt);
				}
			}
		}
		System.out.println("done");
	}

	static void print(PreparedStatement ps) throws SQLException {
		try (ResultSet rs = ps.executeQuery()) {
			StringBuilder b = new StringBuilder();
			int n = rs.getMetaData().getColumnCount();
			while (rs.next()) {
				for (int i = 1; i <= n; i++) b.append(rs.getString(i)).append(i < n ? "," : ";");
			}
			System.out.println(b);
		}
	}
}
`

// TestBoundParamsJDBC: all 14 executions but the one with "pending" are
// answered from rollups.
func TestBoundParamsJDBC(t *testing.T) {
	requireTool(t, "javac", "java", jdbcJar)
	ctx := testCtx(t, 3*time.Minute)
	p := startBoundProxy(t, ctx)
	run := jdbcProgram(t, ctx, "Bound", boundJDBC, boundDB)
	boundClientCheck(t, p, run, 13)
}
