package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Exact edges: ranges that cut through buckets take the whole buckets from
// a rollup and the edges from the warehouse, and equal Postgres's answers in
// several time zones and across DST changes.

const edgesDB = "edgesdb"

// edgesFixture has rows every 53 minutes and 7 seconds from February to May
// 2025 (New York changes to DST on 9 March, Berlin on 30 March), and rows
// over the last three days for relative ranges.
const edgesFixture = `
CREATE TABLE ev (id serial PRIMARY KEY, created_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2));
CREATE INDEX ON ev (created_at);
INSERT INTO ev (created_at, status, amount)
SELECT timestamptz '2025-02-01 00:00:00+00' + g * interval '53 minutes 7 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3],
       CASE WHEN g % 13 = 0 THEN NULL ELSE round((g * 2.71) % 300, 2) END
FROM generate_series(0, 3300) g;
INSERT INTO ev (created_at, status, amount)
SELECT now() - g * interval '13 minutes 11 seconds', (ARRAY['new','paid'])[1 + g % 2], g % 40
FROM generate_series(0, 330) g;
CREATE TABLE ev_noidx AS SELECT created_at, status, amount FROM ev;
CREATE TABLE ev_big AS SELECT timestamptz '2025-02-01 00:00:00+00' + g * interval '97 seconds' AS created_at, 'x'::text AS status, (g % 100)::numeric(12,2) AS amount
FROM generate_series(1, 120000) g;
ANALYZE ev_noidx;
ANALYZE ev_big;
`

func edgesRollups() []map[string]any {
	var out []map[string]any
	for _, table := range []string{"ev", "ev_noidx", "ev_big"} {
		out = append(out, map[string]any{
			"name": table + "_hourly", "table": "public." + table,
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)"},
		})
	}
	return out
}

func TestExactEdges(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	p := startSuiteProxy(t, ctx, "edges", edgesDB, edgesFixture, edgesRollups())
	direct := connect(t, ctx, directDSN(userScram, edgesDB))
	via := connect(t, ctx, p.DSN(userScram, edgesDB))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	cases := []struct {
		sql string
		// served lists the zones where the split answers; others pass through.
		served func(zone string) bool
	}{
		// Grafana's $__timeFilter.
		{"SELECT status, count(*), sum(amount), avg(amount), min(amount) FROM ev WHERE created_at BETWEEN '2025-02-03T10:17:00Z' AND '2025-05-09T22:41:13.5Z' GROUP BY status ORDER BY status",
			func(string) bool { return true }},
		{"SELECT date_trunc('hour', created_at) AS time, count(*) AS n FROM ev WHERE created_at BETWEEN '2025-03-08T20:17:00Z' AND '2025-03-10T09:41:13.5Z' GROUP BY 1 ORDER BY 1",
			func(z string) bool { return z != "Asia/Kolkata" }},
		// Cube's date range across a DST change, in the session's zone.
		{"SELECT date_trunc('day', created_at) AS d, count(*), max(amount) FROM ev WHERE created_at >= '2025-03-01T00:00:00.000' AND created_at <= '2025-03-31T23:59:59.999' GROUP BY 1 ORDER BY 1",
			func(z string) bool { return z != "Asia/Kolkata" }},
		// Bounds on the session's clock in the hours New York and Berlin
		// skip: read as Postgres reads them.
		{"SELECT status, count(*), sum(amount) FROM ev WHERE created_at >= '2025-03-09 02:40:00' AND created_at < '2025-03-30 02:20:00' GROUP BY status ORDER BY status",
			func(string) bool { return true }},
		// Relative ranges.
		{"SELECT status, count(*), sum(amount) FROM ev WHERE created_at >= localtimestamp - interval '36 hours' GROUP BY status ORDER BY status",
			func(string) bool { return true }},
		{"SELECT count(*), sum(amount) FROM ev WHERE created_at > now() - interval '2 days 5 minutes' AND created_at < now() - interval '90 minutes'",
			func(string) bool { return true }},
		// Inside one bucket: the warehouse answers.
		{"SELECT count(*) FROM ev WHERE created_at BETWEEN '2025-03-03T10:05:00Z' AND '2025-03-03T10:55:00Z'",
			func(string) bool { return false }},
	}
	for _, zone := range []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"} {
		for _, c := range []*pgx.Conn{direct, via} {
			if _, err := c.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			for _, mode := range modes {
				hitCheck(t, ctx, p, direct, via, mode, c.sql, "edges", c.served(zone))
			}
		}
	}
	t.Run("a midnight the session's clock skips", func(t *testing.T) {
		// Havana changes to daylight saving time at midnight: on 9 March
		// 2025 its day starts at 01:00 (05:00 UTC), which Postgres's
		// date_trunc gives; read as 23:00 the day before (04:00 UTC), the
		// range took an hour of rows more. Both bounds fall on hours: the
		// hourly rollup answers whole.
		const sql = "SELECT status, count(*), sum(amount) FROM ev WHERE created_at >= date_trunc('day', timestamptz '2025-03-09 12:00:00-04') AND created_at < date_trunc('day', timestamptz '2025-03-12 12:00:00-04') GROUP BY status ORDER BY status"
		for _, c := range []*pgx.Conn{direct, via} {
			if _, err := c.Exec(ctx, "SET TimeZone = 'America/Havana'"); err != nil {
				t.Fatal(err)
			}
		}
		for _, mode := range modes {
			hitCheck(t, ctx, p, direct, via, mode, sql, "duckdb", true)
		}
	})
	t.Run("explain", func(t *testing.T) {
		rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+cases[0].sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		out := renderRows(rows)
		const split = "rollup ev_hourly answers the whole hour buckets of created_at in [2025-02-03T11:00:00Z, 2025-05-09T22:00:00Z)"
		if !strings.Contains(out, split) {
			t.Errorf("EXPLAIN (ROLLUP) does not show the split:\n%s", out)
		}
		// pgrollup explain, without the proxy, shows the same split.
		for _, where := range []string{"--warehouse=" + env.pg.DSN(edgesDB), "--offline"} {
			e := cliExplain(t, "edges", where, cases[0].sql)
			if e.Route != "edges" || e.Split == nil || e.Split.Rollup != "ev_hourly" || !strings.Contains(e.Split.Explanation, split) {
				t.Errorf("pgrollup explain %s: %+v", where, e)
			}
		}
	})
	t.Run("without an index", func(t *testing.T) {
		const grafana = "SELECT status, count(*), sum(amount) FROM %s WHERE created_at BETWEEN '2025-02-03T10:17:00Z' AND '2025-03-09T22:41:13.5Z' GROUP BY status ORDER BY status"
		for _, c := range []struct {
			table, explain string
			served         bool
		}{
			{"ev_noidx", "the warehouse has no index on public.ev_noidx.created_at, but the table is small", true},
			{"ev_big", "a split at bucket edges does not pay: the warehouse has no index on public.ev_big.created_at and the table has about 120000 rows", false},
		} {
			sql := fmt.Sprintf(grafana, c.table)
			for _, mode := range modes {
				hitCheck(t, ctx, p, direct, via, mode, sql, "edges", c.served)
			}
			rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			if out := renderRows(rows); !strings.Contains(out, c.explain) {
				t.Errorf("EXPLAIN (ROLLUP) over %s does not say %q:\n%s", c.table, c.explain, out)
			}
			e := cliExplain(t, "edges", "--warehouse="+env.pg.DSN(edgesDB), sql)
			if got := e.Route == "edges"; got != c.served || (!c.served && !strings.Contains("a split at bucket edges does not pay: "+e.EdgesNote, c.explain)) {
				t.Errorf("pgrollup explain over %s: %+v, want served %v saying %q", c.table, e, c.served, c.explain)
			}
		}
	})
}
