package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollingDB is the rolling-window suite's own database in the shared cluster.
const rollingDB = "e2e_rolling"

// rollingFixtureSQL spreads rows over 70 weeks before now and a day after it,
// a few an hour, so that every window edge has rows on both sides.
const rollingFixtureSQL = `
CREATE TABLE ev (
	id int PRIMARY KEY,
	kind text NOT NULL,
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO ev
SELECT x, (ARRAY['a','b','c'])[1 + x % 3], round((x * 3.17) % 400, 2),
	now() + interval '1 day' - x * interval '97 minutes 13 seconds'
FROM generate_series(0, 7300) x;
ANALYZE ev;
`

// rollingRollups: the last 52 weeks, and the 30 whole days before today.
func rollingRollups() []map[string]any {
	return []map[string]any{
		{
			"name": "ev_52w", "table": "public.ev",
			"dimensions":     []string{"kind"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
			"filters":  []string{"created_at >= date_trunc('day', now()) - interval '52 weeks'"},
		},
		{
			"name": "ev_30d", "table": "public.ev",
			"dimensions":     []string{"kind"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
			"filters":  []string{"created_at >= current_date - 30", "created_at < current_date"},
		},
	}
}

// TestRollingWindow builds rollups filtered relative to now() on a real
// Postgres and sends statements over windows inside and outside them through
// pgx in every query mode: each answer must equal Postgres's, and exactly the
// statements whose window lies inside a built window are answered from a
// rollup. EXPLAIN (ROLLUP) and SHOW ROLLUPS name the built window.
func TestRollingWindow(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	p := startSuiteProxy(t, ctx, "rolling", rollingDB, rollingFixtureSQL, rollingRollups())

	today := time.Now().UTC().Truncate(24 * time.Hour)
	weeksAgo := func(n int) time.Time { return today.AddDate(0, 0, -7*n) }
	lit := func(t time.Time) string { return "'" + t.Format("2006-01-02") + "'" }
	const sel = "SELECT kind, count(*), sum(amount) FROM ev WHERE "
	const tail = " GROUP BY kind ORDER BY kind"
	cases := []boundCase{
		{sel + "created_at >= date_trunc('day', now()) - interval '12 weeks'" + tail, nil, true, false},
		{sel + "created_at >= date_trunc('day', now()) - interval '52 weeks'" + tail, nil, true, false},
		{sel + "created_at >= current_date - 364" + tail, nil, true, false},
		{sel + "created_at >= current_date - 7 AND created_at < current_date" + tail, nil, true, false},
		{sel + "created_at >= current_date - 30 AND created_at < current_date" + tail, nil, true, false},
		{sel + "created_at >= " + lit(weeksAgo(20)) + " AND created_at < " + lit(weeksAgo(10)) + tail, nil, true, false},
		{sel + "created_at >= $1 AND created_at < $2" + tail, []any{weeksAgo(51), weeksAgo(1)}, true, false},
		// Near misses: wider than the window, a day before it, unbounded.
		{sel + "created_at >= date_trunc('day', now()) - interval '60 weeks'" + tail, nil, false, false},
		{sel + "created_at >= current_date - 365" + tail, nil, false, false},
		{sel + "created_at >= " + lit(weeksAgo(53)) + " AND created_at < " + lit(weeksAgo(10)) + tail, nil, false, false},
		{sel + "created_at >= $1" + tail, []any{weeksAgo(52).AddDate(0, 0, -1)}, false, false},
		{"SELECT kind, count(*), sum(amount) FROM ev" + tail, nil, false, false},
		// A bound off the day grain inside the window: the whole days from
		// the rollup, the partial one at the edge from the warehouse
		// (docs/matching.md, "Exact edges").
		{sel + "created_at > now() - interval '30 days'" + tail, nil, true, false},
	}
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			direct := connect(t, ctx, directDSN(userScram, rollingDB)+"&timezone=UTC")
			via := connect(t, ctx, p.DSN(userScram, rollingDB)+"&timezone=UTC")
			for i, c := range cases {
				if i == len(cases)-1 && mode != pgx.QueryExecModeSimpleProtocol && mode != pgx.QueryExecModeExec {
					// Finished by the warehouse, it counts a hit per
					// Parse or Bind: the statement caches describe it
					// first, which counts one more.
					continue
				}
				checkServed(t, ctx, p, direct, via, mode, c, "rolling")
			}
		})
	}

	via := connect(t, ctx, p.DSN(userScram, rollingDB)+"&timezone=UTC")
	rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+cases[7].sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	explain := renderRows(rows)
	built := "public.ev.created_at >= '" + weeksAgo(52).Format("2006-01-02") + " 00:00:00+00'::timestamptz"
	if !strings.Contains(explain, "not_covered: rollup ev_52w holds only the rows with "+built) {
		t.Errorf("EXPLAIN (ROLLUP) does not name the built window %s:\n%s", built, explain)
	}
	rows, err = via.Query(ctx, "EXPLAIN (ROLLUP) "+cases[0].sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if explain := renderRows(rows); !strings.Contains(explain, "inside the window rollup ev_52w was built with: "+built) {
		t.Errorf("EXPLAIN (ROLLUP) of a hit does not name the window:\n%s", explain)
	}
	rows, err = via.Query(ctx, "SHOW ROLLUPS", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	if show := renderRows(rows); !strings.Contains(show, built) || !strings.Contains(show, "public.ev.created_at < '"+today.Format("2006-01-02")+"'::date") {
		t.Errorf("SHOW ROLLUPS does not show the built windows:\n%s", show)
	}
}
