package routing

import (
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

// TestOfflineExplain: pgrollup explain keeps lambda rollups out of the
// catalog the other paths decide with, and shows lambda answers and splits
// at bucket edges as EXPLAIN (ROLLUP) does.
func TestOfflineExplain(t *testing.T) {
	cfg, err := config.ParseWithEnv([]byte(`
warehouse: {dsn: "postgres://x@127.0.0.1:1/db"}
data_dir: /tmp/pgrollup-explain-offline
storage: {url: "file:///tmp/pgrollup-explain-offline/r"}
rollups:
  - {name: ev_lambda, table: public.events, dimensions: [status], time_dimension: created_at, granularity: hour,
     measures: [sum(amount), count(*)], lambda: {column: created_at, late_window: 1h}}
  - {name: ev_ids, table: public.orders, dimensions: [status], measures: [count(*)], lambda: {column: id}}
  - {name: ev_hourly, table: public.ev, dimensions: [status], time_dimension: created_at, granularity: hour, measures: [count(*)]}
`), "pgrollup.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cat, err := rewrite.NewOfflineCatalog(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOfflineExplain(cat, false)
	if len(o.Main.Rollups) != 1 || o.Main.Rollups[0].Def.Name != "ev_hourly" {
		t.Fatalf("main catalog: %v", o.Main.Rollups)
	}
	sess := rewrite.Session{TimeZone: "UTC", Now: time.Now()}
	cases := []struct {
		sql, mode, rollup, says string
	}{
		{"SELECT status, sum(amount) FROM events GROUP BY status", modeLambda, "ev_lambda", "(lambda) answers the partial aggregates of the rows below its cutoff"},
		{"SELECT status, count(*) FROM orders GROUP BY status", modeLambda, "ev_ids", "(lambda) answers"},
		{"SELECT status, count(*) FROM ev WHERE created_at BETWEEN '2025-02-03T10:17:00Z' AND '2025-05-09T22:41:13.5Z' GROUP BY status", modeEdges, "ev_hourly",
			"answers the whole hour buckets of created_at in [2025-02-03T11:00:00Z, 2025-05-09T22:00:00Z), the warehouse reads the rows of the partial buckets at the edges of the range (whether the warehouse has an index on created_at is unknown offline)"},
		{"SELECT status, count(*) FROM ev GROUP BY status", "", "", ""},
		// A range through a lambda rollup's buckets: its whole buckets
		// below the cutoff, the rest from the warehouse.
		{"SELECT status, count(*) FROM events WHERE created_at BETWEEN '2025-02-03T10:17:00Z' AND '2025-05-09T22:41:13.5Z' GROUP BY status", modeLambda, "ev_lambda",
			"rollup ev_lambda (lambda) answers the partial aggregates of the rows below its cutoff (the one its build records) in the whole hour buckets of created_at in [2025-02-03T11:00:00Z, 2025-05-09T22:00:00Z), the warehouse reads the rows of the partial buckets at the edges of the range and those of the whole buckets at or above the cutoff"},
	}
	for _, c := range cases {
		tree, err := pg_query.Parse(c.sql)
		if err != nil {
			t.Fatal(err)
		}
		whole := rewrite.DecideAnalysis(rewrite.Analyze(tree), sess, o.Main)
		s, _ := o.Split(tree, sess, whole.Reason)
		switch {
		case c.mode == "":
			if s != nil {
				t.Errorf("%s: split %+v", c.sql, s)
			}
		case s == nil:
			t.Errorf("%s: no split (%s)", c.sql, whole.Reason)
		case s.Mode != c.mode || s.Decision.Rollup != c.rollup || !strings.Contains(s.Reason, c.says) || s.SQL == "":
			t.Errorf("%s: split %+v, want %s by %s saying %q", c.sql, s, c.mode, c.rollup, c.says)
		}
	}
}
