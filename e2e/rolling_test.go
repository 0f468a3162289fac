package e2e

import (
	"fmt"
	"path/filepath"
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
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + rollingDB + " WITH (FORCE)",
		"CREATE DATABASE " + rollingDB + " OWNER " + userScram,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, rollingDB))
	if _, err := owner.Exec(ctx, rollingFixtureSQL); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	p, _ := startTestProxy(t, ctx, "rolling", filepath.Join(env.tmp, "proxy-rolling"), env.pg.DSN(rollingDB), map[string]any{
		"worker":  map[string]any{"concurrency": 2, "duckdb_memory_limit": "512MB"},
		"rollups": rollingRollups(),
	}, "info")
	states, err := waitRollupsActive(ctx, p, len(rollingRollups()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollups: %s", states)

	today := time.Now().UTC().Truncate(24 * time.Hour)
	weeksAgo := func(n int) time.Time { return today.AddDate(0, 0, -7*n) }
	lit := func(t time.Time) string { return "'" + t.Format("2006-01-02") + "'" }
	const sel = "SELECT kind, count(*), sum(amount) FROM ev WHERE "
	const tail = " GROUP BY kind ORDER BY kind"
	cases := []boundCase{
		{sel + "created_at >= date_trunc('day', now()) - interval '12 weeks'" + tail, nil, true},
		{sel + "created_at >= date_trunc('day', now()) - interval '52 weeks'" + tail, nil, true},
		{sel + "created_at >= current_date - 364" + tail, nil, true},
		{sel + "created_at >= current_date - 7 AND created_at < current_date" + tail, nil, true},
		{sel + "created_at >= current_date - 30 AND created_at < current_date" + tail, nil, true},
		{sel + "created_at >= " + lit(weeksAgo(20)) + " AND created_at < " + lit(weeksAgo(10)) + tail, nil, true},
		{sel + "created_at >= $1 AND created_at < $2" + tail, []any{weeksAgo(51), weeksAgo(1)}, true},
		// Near misses: wider than the window, a day before it, unbounded,
		// a bound off the day grain.
		{sel + "created_at >= date_trunc('day', now()) - interval '60 weeks'" + tail, nil, false},
		{sel + "created_at >= current_date - 365" + tail, nil, false},
		{sel + "created_at >= " + lit(weeksAgo(53)) + " AND created_at < " + lit(weeksAgo(10)) + tail, nil, false},
		{sel + "created_at >= $1" + tail, []any{weeksAgo(52).AddDate(0, 0, -1)}, false},
		{"SELECT kind, count(*), sum(amount) FROM ev" + tail, nil, false},
		{sel + "created_at > now() - interval '30 days'" + tail, nil, false},
	}
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			direct := connect(t, ctx, directDSN(userScram, rollingDB)+"&timezone=UTC")
			via := connect(t, ctx, p.DSN(userScram, rollingDB)+"&timezone=UTC")
			for _, c := range cases {
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
					t.Errorf("%s %v: fell back to the warehouse after the decision", c.sql, c.args)
				}
				total := 0.0
				for _, n := range hits {
					total += n
				}
				if served := total == 1; served != c.served || total > 1 {
					t.Errorf("%s %v: answered from rollups %v, want served %v", c.sql, c.args, hits, c.served)
				}
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
