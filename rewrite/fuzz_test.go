package rewrite

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// fuzzZones are the session zones the fuzz target decides in: the build zone,
// a whole-hour DST zone, a half-hour zone and a zone with negative offsets.
var fuzzZones = []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"}

// FuzzDecide: any statement, in any of a few session zones, either passes
// through with a reason, or yields a complete route whose SQL DuckDB accepts
// and runs over (empty) Parquet files in the rollup layout, returning the
// columns the decision describes with the DuckDB types it promises; never a
// panic. Without -fuzz, the seeds (every table case and the corpus under
// testdata) run as a test.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{
		"SELECT status, count(*) FROM orders GROUP BY status",
		"SELECT date_trunc('month', created_at), sum(amount) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01' GROUP BY 1 ORDER BY 1 LIMIT 10",
		`SELECT "source"."status" FROM (SELECT status, count(*) FROM orders GROUP BY 1) "source"`,
		"SELECT c.country, count(*) FILTER (WHERE status = 'paid') FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1 HAVING count(*) > 1",
		"SELECT CASE WHEN status IN ('a','b') THEN 1 ELSE 0 END, max(amount) FROM orders WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' GROUP BY 1",
	} {
		for z := range fuzzZones {
			f.Add(s, uint8(z))
		}
	}
	for _, cs := range allCases() {
		for _, c := range cs {
			if c.params == nil && c.cfg == nil && c.cat == nil {
				f.Add(c.sql, zoneIndex(c.zone))
			}
		}
	}
	db := duckDB{openDuck(f)}
	cat := testCatalog(f)
	writeEmptyRollups(f, db.DB, cat, f.TempDir())
	f.Fuzz(func(t *testing.T, sql string, zone uint8) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		sess := Session{TimeZone: fuzzZones[int(zone)%len(fuzzZones)], Now: testNow}
		d := DecideAnalysis(Analyze(tree), sess, cat)
		switch d.Outcome {
		case OutcomePassthrough:
			if d.Reason.Code == "" || d.Reason.Code == ReasonMatched || d.Reason.Message == "" {
				t.Fatalf("passthrough without a reason: %+v", d)
			}
		case OutcomeRollup:
			if d.SQL == "" || len(d.Files) == 0 || d.Rollup == "" || d.Version == "" {
				t.Fatalf("incomplete route: %+v", d)
			}
			duckAccepts(t, db.DB, d)
		default:
			t.Fatalf("no route: %+v", d)
		}
	})
}

func zoneIndex(z string) uint8 {
	for i, f := range fuzzZones {
		if f == z {
			return uint8(i)
		}
	}
	return 0
}
