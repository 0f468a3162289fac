package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// finishDB is the finish suite's own database: its default collation is
// ICU's en-US, under which text orders unlike its bytes.
const finishDB = "e2e_finish"

// finishFixtureSQL is a fact table whose text dimension mixes case,
// accents and punctuation, so that ICU order and byte order differ, with
// a distinct total per region.
const finishFixtureSQL = `
CREATE TABLE sales (
	id int PRIMARY KEY,
	region text,
	qty int NOT NULL,
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO sales
SELECT x,
	CASE WHEN x % 23 = 0 THEN NULL ELSE (ARRAY['apple','Apple','Äpfel','banana','_under','Zebra','éclair','eclair','a-b','ab','Ab','zoo'])[1 + x % 12] END,
	x % 5,
	round((x * 7.31) % 500, 2) + (x % 12) * 0.01,
	timestamptz '2024-01-01 00:00:00+00' + (x * interval '97 minutes')
FROM generate_series(1, 3000) x;
ANALYZE sales;
`

func finishRollups() []map[string]any {
	return []map[string]any{{
		"name": "sales_daily", "table": "public.sales",
		"dimensions":     []string{"region", "qty"},
		"time_dimension": "created_at", "granularity": "day",
		"measures": []string{"count(*)", "sum(amount)"},
	}}
}

type finishCase struct {
	name     string
	sql      string
	finished bool // the core from the rollup, the rest by the warehouse
	duckdb   bool // answered whole from the rollup
}

func finishCases() []finishCase {
	return []finishCase{
		{"order by text under ICU", `SELECT region, count(*) FROM sales GROUP BY 1 ORDER BY 1`, true, false},
		{"order by text desc nulls first", `SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region DESC NULLS FIRST, 2`, true, false},
		{"metabase nested source", `SELECT "source"."region" AS "region", "source"."sum" AS "sum" FROM (SELECT "public"."sales"."region" AS "region", SUM("public"."sales"."amount") AS "sum" FROM "public"."sales" GROUP BY "public"."sales"."region" ORDER BY "public"."sales"."region" ASC) AS "source" LIMIT 1048575`, true, false},
		{"malloy cte row_to_json", `WITH __stage0 AS (SELECT base."region" as "region", COALESCE(SUM(base."amount"),0) as "total", COUNT(1) as "n" FROM sales as base GROUP BY 1 ORDER BY 2 desc NULLS LAST) SELECT row_to_json(finalStage) as row FROM __stage0 AS finalStage`, true, false},
		{"window over aggregate", `SELECT region, sum(amount) AS total, rank() OVER (ORDER BY sum(amount) DESC) AS r, sum(sum(amount)) OVER () AS grand FROM sales GROUP BY region ORDER BY r`, true, false},
		{"having and to_char", `SELECT qty, to_char(sum(amount), 'FM999G999G990D00') AS s FROM sales GROUP BY qty HAVING count(*) > 100 ORDER BY qty DESC`, true, false},
		{"text functions", `SELECT upper(region) AS r, length(region) AS l, count(*) FROM sales GROUP BY region ORDER BY 1, 2, 3`, true, false},
		{"superset virtual dataset", `SELECT region AS region, sum(total) AS "SUM(total)" FROM (SELECT region, sum(amount) AS total FROM sales GROUP BY region) AS virtual_table GROUP BY region ORDER BY "SUM(total)" DESC LIMIT 100`, true, false},
		{"to_char month", `SELECT to_char(date_trunc('month', created_at), 'YYYY-MM') AS m, count(*) FROM sales GROUP BY date_trunc('month', created_at) ORDER BY 1`, true, false},
		{"empty core", `SELECT row_to_json(s) AS j, s.n + 1 AS m FROM (SELECT region, count(*) AS n, sum(amount) FROM sales WHERE region = 'nowhere' GROUP BY region) s`, true, false},
		// What DuckDB answers whole stays with DuckDB.
		{"all duckdb", `SELECT qty, count(*), sum(amount) FROM sales GROUP BY qty ORDER BY qty`, false, true},
		// Near misses: the warehouse answers them whole.
		{"volatile function in the core", `SELECT s.* FROM (SELECT region, count(*) FROM sales WHERE random() >= 0 GROUP BY region) s ORDER BY 1`, false, false},
		{"wrapper reads a column the core has not", `SELECT region, count(*), rank() OVER (ORDER BY id) FROM sales GROUP BY region, id ORDER BY 1, 3 LIMIT 5`, false, false},
		// Tableau's top-N: s.region is a column of sales, which Postgres
		// names as its origin, and the finished statement could not.
		{"tableau top-n", `SELECT s.region, count(*) AS n FROM sales s INNER JOIN (SELECT region AS "$__alias__0", sum(amount) AS "$__alias__1" FROM sales GROUP BY 1 ORDER BY 2 DESC LIMIT 5) t0 ON s.region = t0."$__alias__0" GROUP BY 1 ORDER BY 1`, false, false},
		{"measure no rollup has", `SELECT s.* FROM (SELECT region, max(id) FROM sales GROUP BY region) s ORDER BY 1`, false, false},
	}
}

// startFinishProxy creates the suite's ICU database and starts a pgrollup
// over it with rest added to its config, its rollup built.
func startFinishProxy(t *testing.T, ctx context.Context, name string, rest map[string]any) *proxyProc {
	t.Helper()
	cfg := map[string]any{
		"worker":  map[string]any{"concurrency": 2, "duckdb_memory_limit": "512MB"},
		"rollups": finishRollups(),
	}
	for k, v := range rest {
		cfg[k] = v
	}
	p, _ := startTestProxy(t, ctx, name, filepath.Join(env.tmp, "proxy-"+name), env.pg.DSN(finishDB), cfg, "info")
	states, err := waitRollupsActive(ctx, p, len(finishRollups()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(states, "(0 rows)") {
		t.Fatalf("a rollup is empty: %s", states)
	}
	return p
}

// createFinishDB creates the ICU database afresh.
func createFinishDB(t *testing.T, ctx context.Context) {
	t.Helper()
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + finishDB + " WITH (FORCE)",
		"CREATE DATABASE " + finishDB + " OWNER " + userScram + " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'",
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, finishDB))
	if _, err := owner.Exec(ctx, finishFixtureSQL); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	// The fixture must order differently under ICU than by bytes, or the
	// ordering cases prove nothing.
	var icu, bytewise string
	if err := owner.QueryRow(ctx, `SELECT string_agg(region, ',' ORDER BY region), string_agg(region, ',' ORDER BY region COLLATE "C") FROM (SELECT DISTINCT region FROM sales) r`).Scan(&icu, &bytewise); err != nil {
		t.Fatal(err)
	}
	if icu == bytewise {
		t.Fatalf("ICU and byte order agree: %s", icu)
	}
}

// finishDelta is what the proxy counted for one statement.
type finishDelta struct{ finished, duckdb, fallbacks float64 }

func finishCounted(before, after diffMetrics) finishDelta {
	var d finishDelta
	for k, v := range after {
		if !strings.HasPrefix(k, "pgrollup_rollup_hits_total{") {
			continue
		}
		mode, _ := diffMetricLabel(k, "mode")
		switch mode {
		case "finished_by_warehouse", "edges", "lambda":
			// The warehouse finishes the statement around the rows.
			d.finished += v - before[k]
		case "duckdb":
			d.duckdb += v - before[k]
		}
	}
	d.fallbacks = after.sum("pgrollup_rollup_fallbacks_total") - before.sum("pgrollup_rollup_fallbacks_total")
	return d
}

// TestFinishedByWarehouse sends statements around an aggregate core a
// rollup answers through pgx in every query mode, and compares each answer
// with Postgres's. The core must come from the rollup and the rest from
// the warehouse (mode="finished_by_warehouse"): in the simple protocol, as
// the unnamed statement is prepared, and at each Bind of a named one
// (cache_statement). What DuckDB answers whole must stay with it, and near
// misses must pass through.
func TestFinishedByWarehouse(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	createFinishDB(t, ctx)
	p := startFinishProxy(t, ctx, "finish", nil)
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			direct := connect(t, ctx, directDSN(userScram, finishDB))
			via := connect(t, ctx, p.DSN(userScram, finishDB))
			for _, c := range finishCases() {
				before, err := diffScrape(p)
				if err != nil {
					t.Fatal(err)
				}
				want, werr := finishRender(ctx, direct, mode, c.sql)
				got, gerr := finishRender(ctx, via, mode, c.sql)
				if werr != nil || gerr != nil {
					t.Fatalf("%s: Postgres %v, pgrollup %v", c.name, werr, gerr)
				}
				requireSame(t, c.name, want, got)
				after, err := diffScrape(p)
				if err != nil {
					t.Fatal(err)
				}
				// cache_describe prepares the unnamed statement twice the
				// first time (once to describe it), and each Parse is finished.
				d := finishCounted(before, after)
				if (d.finished >= 1) != c.finished || d.finished > 2 || (d.duckdb == 1) != c.duckdb || d.fallbacks != 0 {
					t.Errorf("%s: counted %+v; want finished %v, duckdb %v, no fallback\n%s", c.name, d, c.finished, c.duckdb, tail(p.log.Bytes(), 10))
				}
			}
		})
	}
	t.Run("explain", func(t *testing.T) {
		via := connect(t, ctx, p.DSN(userScram, finishDB))
		got, err := finishRender(ctx, via, pgx.QueryExecModeSimpleProtocol, "EXPLAIN (ROLLUP) "+finishCases()[0].sql)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"finished_by_warehouse", "collation", "rollup sales_daily answers", "GROUP BY region", "chosen"} {
			if !strings.Contains(got, w) {
				t.Errorf("EXPLAIN (ROLLUP) lacks %q:\n%s", w, got)
			}
		}
	})
	t.Run("in a transaction", func(t *testing.T) {
		via := connect(t, ctx, p.DSN(userScram, finishDB))
		direct := connect(t, ctx, directDSN(userScram, finishDB))
		for _, conn := range []*pgx.Conn{via, direct} {
			if _, err := conn.Exec(ctx, "BEGIN", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range finishCases()[:3] {
			want, werr := finishRender(ctx, direct, pgx.QueryExecModeSimpleProtocol, c.sql)
			got, gerr := finishRender(ctx, via, pgx.QueryExecModeSimpleProtocol, c.sql)
			if werr != nil || gerr != nil {
				t.Fatalf("%s: Postgres %v, pgrollup %v", c.name, werr, gerr)
			}
			requireSame(t, c.name+" in a transaction", want, got)
		}
		// An error outside the core is the warehouse's, and fails the
		// transaction as it would.
		bad := `SELECT to_char(sum(amount), 'FM9') AS s, 1 / (count(*) - count(*)) FROM sales GROUP BY region ORDER BY region`
		_, werr := finishRender(ctx, direct, pgx.QueryExecModeSimpleProtocol, bad)
		_, gerr := finishRender(ctx, via, pgx.QueryExecModeSimpleProtocol, bad)
		if werr == nil || gerr == nil || errorText(werr) != errorText(gerr) {
			t.Errorf("division by zero outside the core: Postgres %v, pgrollup %v", werr, gerr)
		}
		for _, conn := range []*pgx.Conn{via, direct} {
			if _, err := conn.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// boundFinishCase is a statement with parameters whose core a rollup
// answers once its values are written in, run with two sets of values.
type boundFinishCase struct {
	name string
	sql  string
	args [2][]any
	// untypedOK: finished even with values Parse left untyped, as its
	// only parameters are a LIMIT and an OFFSET, which Postgres makes
	// bigints.
	untypedOK bool
}

func boundFinishCases() []boundFinishCase {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	return []boundFinishCase{
		// Metabase: bound filter values, ordered by its breakout.
		{"metabase range, ordered by text", `SELECT "public"."sales"."region" AS "region", SUM("public"."sales"."amount") AS "sum", COUNT(*) AS "count" FROM "public"."sales" WHERE ("public"."sales"."created_at" >= $1) AND ("public"."sales"."created_at" < $2) GROUP BY "public"."sales"."region" ORDER BY "public"."sales"."region" ASC`,
			[2][]any{{day(3), day(20)}, {day(1), day(31)}}, false},
		{"metabase text filter", `SELECT "public"."sales"."region" AS "region", COUNT(*) AS "count" FROM "public"."sales" WHERE "public"."sales"."region" <> $1 GROUP BY "public"."sales"."region" ORDER BY "public"."sales"."region" DESC`,
			[2][]any{{"apple"}, {"Zebra"}}, false},
		// Knex's pages: the values are outside the core.
		{"knex page", `select "region", count(*) as "n" from "sales" group by "region" order by "region" asc limit $1 offset $2`,
			[2][]any{{int64(4), int64(0)}, {int64(4), int64(4)}}, true},
		// Metabase's nested question, its filter inside the source.
		{"nested source with a bound filter", `SELECT "source"."region" AS "region", "source"."sum" AS "sum" FROM (SELECT "public"."sales"."region" AS "region", SUM("public"."sales"."amount") AS "sum" FROM "public"."sales" WHERE "public"."sales"."qty" >= $1 GROUP BY "public"."sales"."region" ORDER BY "public"."sales"."region" ASC) AS "source" LIMIT 1048575`,
			[2][]any{{int32(2)}, {int32(0)}}, false},
		// Grafana's $__timeFilter bound: the range cuts through days, so
		// the whole days come from the rollup and the edges from the
		// warehouse.
		{"bound time filter cutting through days", `SELECT region, count(*) AS n, sum(amount) AS total FROM sales WHERE created_at BETWEEN $1 AND $2 GROUP BY region ORDER BY region`,
			[2][]any{{time.Date(2024, 1, 3, 10, 17, 0, 0, time.UTC), time.Date(2024, 1, 20, 22, 41, 13, 500_000_000, time.UTC)}, {time.Date(2024, 1, 1, 6, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)}}, false},
		{"bound value in the select list", `SELECT region, count(*) * $1::int AS n FROM sales WHERE qty = $2 GROUP BY region ORDER BY region`,
			[2][]any{{int32(10), int32(1)}, {int32(-1), int32(3)}}, false},
	}
}

// TestFinishBound runs statements with bound values through pgx in every
// query mode, twice each with other values: each execution is finished by
// the warehouse with its own values, and equals Postgres's answer.
func TestFinishBound(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	createFinishDB(t, ctx)
	p := startFinishProxy(t, ctx, "finish-bound-params", nil)
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			direct := connect(t, ctx, directDSN(userScram, finishDB))
			via := connect(t, ctx, p.DSN(userScram, finishDB))
			for _, c := range boundFinishCases() {
				for round, args := range c.args {
					what := fmt.Sprintf("%s (values %d)", c.name, round)
					before, err := diffScrape(p)
					if err != nil {
						t.Fatal(err)
					}
					want, werr := finishRenderArgs(ctx, direct, mode, c.sql, args...)
					got, gerr := finishRenderArgs(ctx, via, mode, c.sql, args...)
					if werr != nil || gerr != nil {
						t.Fatalf("%s: Postgres %v, pgrollup %v", what, werr, gerr)
					}
					requireSame(t, what, want, got)
					after, err := diffScrape(p)
					if err != nil {
						t.Fatal(err)
					}
					d := finishCounted(before, after)
					if mode == pgx.QueryExecModeExec && !c.untypedOK {
						// pgx's exec mode leaves every value's type to the
						// warehouse: a value of unknown type is not written
						// into a statement, which passes through.
						if d.finished != 0 || d.duckdb != 0 || d.fallbacks != 0 {
							t.Errorf("%s: counted %+v; want a passthrough", what, d)
						}
						continue
					}
					if d.finished < 1 || d.finished > 2 || d.duckdb != 0 || d.fallbacks != 0 {
						t.Errorf("%s: counted %+v; want finished, no fallback\n%s", what, d, tail(p.log.Bytes(), 10))
					}
				}
			}
		})
	}
}

// TestFinishSizeBound checks that a core above routing.finish_max_rows
// passes the statement through unchanged, and one within it is finished.
func TestFinishSizeBound(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	createFinishDB(t, ctx)
	p := startFinishProxy(t, ctx, "finish-bound", map[string]any{"routing": map[string]any{"finish_max_rows": 5}})
	direct := connect(t, ctx, directDSN(userScram, finishDB))
	via := connect(t, ctx, p.DSN(userScram, finishDB))
	for _, c := range []struct {
		sql      string
		finished bool
	}{
		{`SELECT region, count(*) FROM sales GROUP BY 1 ORDER BY 1`, false},                        // 13 groups
		{`SELECT qty, to_char(sum(amount), 'FM999990D00') FROM sales GROUP BY 1 ORDER BY 2`, true}, // 5 groups
	} {
		before, err := diffScrape(p)
		if err != nil {
			t.Fatal(err)
		}
		want, werr := finishRender(ctx, direct, pgx.QueryExecModeSimpleProtocol, c.sql)
		got, gerr := finishRender(ctx, via, pgx.QueryExecModeSimpleProtocol, c.sql)
		if werr != nil || gerr != nil {
			t.Fatalf("%s: Postgres %v, pgrollup %v", c.sql, werr, gerr)
		}
		requireSame(t, c.sql, want, got)
		after, err := diffScrape(p)
		if err != nil {
			t.Fatal(err)
		}
		d := finishCounted(before, after)
		tooLarge := after.sum(`pgrollup_rollup_fallbacks_total{reason="finish_too_large"}`) - before.sum(`pgrollup_rollup_fallbacks_total{reason="finish_too_large"}`)
		if (d.finished == 1) != c.finished || (tooLarge == 1) == c.finished {
			t.Errorf("%s: counted %+v, finish_too_large %v; want finished %v", c.sql, d, tooLarge, c.finished)
		}
	}
}

// withLabel keeps the series with label=value.
func (s diffMetrics) withLabel(label, value string) diffMetrics {
	out := diffMetrics{}
	for k, v := range s {
		if lv, ok := diffMetricLabel(k, label); ok && lv == value {
			out[k] = v
		}
	}
	return out
}

func finishRender(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) (string, error) {
	return finishRenderArgs(ctx, conn, mode, sql)
}

func finishRenderArgs(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string, args ...any) (string, error) {
	rows, err := conn.Query(ctx, sql, append([]any{mode}, args...)...)
	if err != nil {
		return "", err
	}
	out := renderRows(rows)
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("%s", errorText(err))
	}
	return out, nil
}

// finishJDBC sends a Metabase nested question as Metabase does through
// pgjdbc: with a Statement (the unnamed statement every time), then with a
// PreparedStatement, which pgjdbc prepares on the server by name from its
// fifth execution on.
const finishJDBC = `
import java.sql.*;

public class Finish {
	public static void main(String[] a) throws Exception {
		String q = "SELECT \"source\".\"region\" AS \"region\", \"source\".\"sum\" AS \"sum\" FROM (SELECT \"public\".\"sales\".\"region\" AS \"region\", SUM(\"public\".\"sales\".\"amount\") AS \"sum\" FROM \"public\".\"sales\" GROUP BY \"public\".\"sales\".\"region\" ORDER BY \"public\".\"sales\".\"region\" ASC) AS \"source\" LIMIT 1048575";
		try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
			try (Statement s = c.createStatement()) {
				for (int i = 0; i < 3; i++) {
					print(s.executeQuery(q));
				}
			}
			try (PreparedStatement ps = c.prepareStatement(q)) {
				for (int i = 0; i < 7; i++) {
					print(ps.executeQuery());
				}
			}
			// Bound values, read 4 rows at a time from a cursor in a
			// transaction: portals suspended and resumed.
			c.setAutoCommit(false);
			String b = "SELECT \"public\".\"sales\".\"region\" AS \"region\", SUM(\"public\".\"sales\".\"amount\") AS \"sum\", COUNT(*) AS \"count\" FROM \"public\".\"sales\" WHERE (\"public\".\"sales\".\"created_at\" >= ?) AND (\"public\".\"sales\".\"created_at\" < ?) GROUP BY \"public\".\"sales\".\"region\" ORDER BY \"public\".\"sales\".\"region\" ASC";
			try (PreparedStatement ps = c.prepareStatement(b)) {
				ps.setFetchSize(4);
				for (int i = 0; i < 7; i++) {
					ps.setTimestamp(1, Timestamp.valueOf("2024-01-0" + (1 + i % 3) + " 00:00:00"));
					ps.setTimestamp(2, Timestamp.valueOf("2024-01-2" + i + " 00:00:00"));
					print(ps.executeQuery());
				}
			}
			c.commit();
		}
		System.out.println("done");
	}

	static void print(ResultSet rs) throws SQLException {
		try (rs) {
			StringBuilder b = new StringBuilder();
			ResultSetMetaData md = rs.getMetaData();
			int n = md.getColumnCount();
			for (int i = 1; i <= n; i++) b.append(md.getColumnLabel(i)).append(':').append(md.getColumnTypeName(i)).append(i < n ? "," : "|");
			while (rs.next()) {
				for (int i = 1; i <= n; i++) b.append(rs.getString(i)).append(i < n ? "," : ";");
			}
			System.out.println(b);
		}
	}
}
`

// jdbcProgram compiles the Java class of source against pgjdbc and
// returns a function that runs it against a target's database, with the
// URL, user and password as its arguments, and returns its output.
func jdbcProgram(t *testing.T, ctx context.Context, class, source, database string) func(tg target) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, class+".java"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "javac", "-nowarn", "-cp", jdbcJar, "-d", src, filepath.Join(src, class+".java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return func(tg target) string {
		url := fmt.Sprintf("jdbc:postgresql://%s/%s", tg.addr(), database)
		cmd := exec.CommandContext(ctx, "java", "-Duser.timezone=UTC", "-Xshare:auto", "-XX:TieredStopAtLevel=1",
			"-cp", jdbcJar+string(os.PathListSeparator)+src, class, url, userScram, passwords[userScram])
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tg.name, err, out)
		}
		return string(out)
	}
}

// TestFinishJDBC runs finishJDBC against Postgres and pgrollup: equal
// output, and the executions finished by the warehouse, unnamed or named,
// with literal values or bound values of known types, no fallback.
func TestFinishJDBC(t *testing.T) {
	requireTool(t, "javac", "java", jdbcJar)
	ctx := testCtx(t, 3*time.Minute)
	createFinishDB(t, ctx)
	p := startFinishProxy(t, ctx, "finish-jdbc", nil)
	_, before, after := clientCompare(t, p, jdbcProgram(t, ctx, "Finish", finishJDBC, finishDB))
	d := finishCounted(before, after)
	// pgjdbc sends setTimestamp values with their type unspecified; from
	// the fifth execution it prepares the statement by name, described,
	// and the values have the types the warehouse gave: only those are
	// written into the statement the warehouse finishes.
	if d.finished != 3+7+3 || d.fallbacks != 0 {
		t.Errorf("counted %+v; want the 3 Statement, the 7 literal and the last 3 bound PreparedStatement executions finished, no fallback", d)
	}
}
