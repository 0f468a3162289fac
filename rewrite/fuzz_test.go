package rewrite

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// FuzzDecide: any statement either passes through with a reason or yields a
// route with SQL and described columns; never a panic.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{
		"SELECT status, count(*) FROM orders GROUP BY status",
		"SELECT date_trunc('month', created_at), sum(amount) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01' GROUP BY 1 ORDER BY 1 LIMIT 10",
		`SELECT "source"."status" FROM (SELECT status, count(*) FROM orders GROUP BY 1) "source"`,
		"SELECT c.country, count(*) FILTER (WHERE status = 'paid') FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1 HAVING count(*) > 1",
		"SELECT CASE WHEN status IN ('a','b') THEN 1 ELSE 0 END, max(amount) FROM orders WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' GROUP BY 1",
	} {
		f.Add(s)
	}
	cat := testCatalog(f)
	f.Fuzz(func(t *testing.T, sql string) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		d := DecideAnalysis(Analyze(tree), Session{TimeZone: "Europe/Berlin", Now: testNow}, cat)
		switch d.Route {
		case RoutePassthrough:
			if d.Reason.Code == "" || d.Reason.Code == ReasonMatched {
				t.Fatalf("passthrough without a reason: %+v", d)
			}
		case RouteRollup:
			if d.SQL == "" || len(d.Files) == 0 || d.Rollup == "" {
				t.Fatalf("incomplete route: %+v", d)
			}
		default:
			t.Fatalf("no route: %+v", d)
		}
	})
}
