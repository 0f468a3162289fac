package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Exact edges on a date column: ranges of dates that cut through a monthly
// rollup's buckets take the whole months from the rollup and the edge days
// from the warehouse, in any session zone; a date column compared with a
// time passes through.

const edgesDateDB = "edgesdatedb"

// edgesDateFixture has rows on every day from November 2024 to June 2025,
// and rows on the last hundred days for relative ranges; odl is a copy
// for a lambda rollup, odw one for a weekly rollup.
const edgesDateFixture = `
CREATE TABLE od (id serial PRIMARY KEY, order_date date NOT NULL, status text NOT NULL, amount numeric(12,2));
CREATE INDEX ON od (order_date);
INSERT INTO od (order_date, status, amount)
SELECT date '2024-11-01' + (g * 7) % 240, (ARRAY['new','paid','shipped'])[1 + g % 3],
       CASE WHEN g % 13 = 0 THEN NULL ELSE round((g * 2.71) % 300, 2) END
FROM generate_series(0, 2999) g;
INSERT INTO od (order_date, status, amount)
SELECT current_date - (g * 3) % 100, (ARRAY['new','paid'])[1 + g % 2], g % 40
FROM generate_series(0, 499) g;
CREATE TABLE odl (LIKE od INCLUDING ALL);
INSERT INTO odl SELECT * FROM od;
CREATE TABLE odw (LIKE od INCLUDING ALL);
INSERT INTO odw SELECT * FROM od;
`

func TestExactEdgesDate(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	p := startSuiteProxy(t, ctx, "edgesdate", edgesDateDB, edgesDateFixture, []map[string]any{{
		"name": "od_monthly", "table": "public.od",
		"dimensions":     []string{"status"},
		"time_dimension": "order_date", "granularity": "month",
		"measures": []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)"},
	}, {
		"name": "odl_monthly_lambda", "table": "public.odl",
		"dimensions":     []string{"status"},
		"time_dimension": "order_date", "granularity": "month",
		"measures": []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)"},
		"lambda":   map[string]any{"column": "order_date"},
	}, {
		"name": "odw_weekly", "table": "public.odw",
		"dimensions":     []string{"status"},
		"time_dimension": "order_date", "granularity": "week",
		"measures": []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)"},
	}})
	direct := connect(t, ctx, directDSN(userScram, edgesDateDB))
	via := connect(t, ctx, p.DSN(userScram, edgesDateDB))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	always := func(time.Time) bool { return true }
	never := func(time.Time) bool { return false }
	cases := []struct {
		sql string
		// served says, from the session's date today, whether the split
		// answers: a relative range on whole months does not split.
		served func(today time.Time) bool
	}{
		// BETWEEN two dates cutting months.
		{"SELECT status, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM od WHERE order_date BETWEEN '2025-01-15' AND '2025-04-10' GROUP BY status ORDER BY status", always},
		// Months as the session's midnights (date_trunc of a date is a timestamptz).
		{"SELECT date_trunc('month', order_date) AS m, count(*), max(amount) FROM od WHERE order_date >= DATE '2024-12-20' AND order_date < '2025-03-05'::date GROUP BY 1 ORDER BY 1", always},
		// > and <= on dates: the upper bound is a month's last day.
		{"SELECT count(*), sum(amount) FROM od WHERE order_date > '2025-01-14' AND order_date <= '2025-03-31'", always},
		// Relative ranges: Metabase's "previous 70 days", open and closed.
		{"SELECT count(*), sum(amount) FROM od WHERE order_date >= CAST((CAST(now() AS timestamp) + INTERVAL '-70 day') AS date) AND order_date < CAST(now() AS date)",
			func(today time.Time) bool { return today.AddDate(0, 0, -70).Day() != 1 || today.Day() != 1 }},
		{"SELECT status, count(*), avg(amount) FROM od WHERE order_date >= current_date - 70 GROUP BY status ORDER BY status",
			func(today time.Time) bool { return today.AddDate(0, 0, -70).Day() != 1 }},
		// Pass through: a time compared with a date column, a range inside one month.
		{"SELECT count(*) FROM od WHERE order_date >= now() - interval '70 days'", never},
		{"SELECT count(*) FROM od WHERE order_date >= current_date - interval '70 days' AND order_date < current_date", never},
		{"SELECT count(*) FROM od WHERE order_date BETWEEN '2025-02-03' AND '2025-02-20'", never},
	}
	for _, zone := range []string{"UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*pgx.Conn{direct, via} {
			if _, err := c.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			for _, mode := range modes {
				hitCheck(t, ctx, p, direct, via, mode, c.sql, "edges", c.served(time.Now().In(loc)))
			}
		}
		// ISO weeks of dates, cut as date_trunc('week') cuts them.
		for _, c := range []struct {
			sql    string
			served bool
		}{
			{strings.Replace(cases[0].sql, "FROM od ", "FROM odw ", 1), true},
			{strings.Replace(cases[2].sql, "FROM od ", "FROM odw ", 1), true},
			{"SELECT status, count(*), sum(amount) FROM odw WHERE order_date >= current_date - 20 GROUP BY status ORDER BY status",
				time.Now().In(loc).AddDate(0, 0, -20).Weekday() != time.Monday},
		} {
			for _, mode := range modes {
				hitCheck(t, ctx, p, direct, via, mode, c.sql, "edges", c.served)
			}
		}
	}
	// A lambda rollup on a date column: the whole months below its cutoff
	// (the current month's first day) from the rollup, the edges and the
	// rows from the cutoff on from the warehouse, also right after inserts.
	t.Run("lambda", func(t *testing.T) {
		run := func() {
			for _, zone := range []string{"UTC", "Pacific/Kiritimati"} {
				for _, c := range []*pgx.Conn{direct, via} {
					if _, err := c.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
						t.Fatal(err)
					}
				}
				for i, c := range cases {
					sql := strings.Replace(c.sql, "FROM od ", "FROM odl ", 1)
					for _, mode := range modes {
						// Ranges on whole months are the lambda answer itself.
						hitCheck(t, ctx, p, direct, via, mode, sql, "lambda", i < 5)
					}
				}
			}
		}
		run()
		// At or above the cutoff (build_timezone is UTC): rows below it
		// that change after the build are not seen until the next one.
		if _, err := direct.Exec(ctx, `INSERT INTO odl (order_date, status, amount)
			SELECT CAST(now() AT TIME ZONE 'UTC' AS date) + g % 3, (ARRAY['new','paid','late'])[1 + g % 3], g FROM generate_series(1, 30) g`); err != nil {
			t.Fatal(err)
		}
		run()
	})
	rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+cases[0].sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	const split = "rollup od_monthly answers the whole month buckets of order_date in [2025-02-01T00:00:00Z, 2025-04-01T00:00:00Z)"
	if out := renderRows(rows); !strings.Contains(out, split) {
		t.Errorf("EXPLAIN (ROLLUP) does not show the split:\n%s", out)
	}
	// pgrollup explain, without the proxy, shows the same split (offline
	// it knows no column types and reads order_date as a timestamptz).
	e := cliExplain(t, "edgesdate", "--warehouse="+env.pg.DSN(edgesDateDB), cases[0].sql)
	if e.Route != "edges" || e.Split == nil || e.Split.Rollup != "od_monthly" || !strings.Contains(e.Split.Explanation, split) ||
		!strings.Contains(e.Split.Core, "od.order_date >= '2025-02-01'::date AND od.order_date < '2025-04-01'::date") {
		t.Errorf("pgrollup explain: %+v", e)
	}
}
