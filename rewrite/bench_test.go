package rewrite

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

var benchSQL = `SELECT "source"."created_at" AS "created_at", "source"."count" AS "count" FROM (SELECT DATE_TRUNC('month', "public"."orders"."created_at") AS "created_at", COUNT(*) AS "count", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" WHERE ("public"."orders"."created_at" >= $1) AND ("public"."orders"."created_at" < $2) AND "public"."orders"."status" = 'paid' GROUP BY DATE_TRUNC('month', "public"."orders"."created_at") ORDER BY DATE_TRUNC('month', "public"."orders"."created_at") ASC) AS "source" LIMIT 1048575`

var benchParams = []Param{{Type: OIDTimestamptz, Value: "2024-01-01 00:00:00+00"}, {Type: OIDTimestamptz, Value: "2024-04-01 00:00:00+00"}}

// BenchmarkDecideCached: the analysis is cached by text, as on every
// execution after the first; the parse is cached by the proxy.
func BenchmarkDecideCached(b *testing.B) {
	cat := testCatalog(b)
	tree, err := pg_query.Parse(benchSQL)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(0)
	sess := Session{TimeZone: "UTC", Now: testNow, Params: benchParams}
	if d := e.Decide(benchSQL, tree, sess, cat); d.Route != RouteRollup {
		b.Fatalf("benchmark statement must match: %v", d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(benchSQL, tree, sess, cat)
	}
}

// BenchmarkDecideUncached includes the parse and the analysis.
func BenchmarkDecideUncached(b *testing.B) {
	cat := testCatalog(b)
	sess := Session{TimeZone: "UTC", Now: testNow, Params: benchParams}
	b.ReportAllocs()
	for b.Loop() {
		tree, err := pg_query.Parse(benchSQL)
		if err != nil {
			b.Fatal(err)
		}
		if d := DecideAnalysis(Analyze(tree), sess, cat); d.Route != RouteRollup {
			b.Fatal(d.Reason)
		}
	}
}
