package rewrite

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// benchStatements are typical BI statements (BI-CLIENTS.md), each answered
// from a rollup of the test catalog.
var benchStatements = []struct {
	name, sql string
	params    []Param
}{
	{"metabase", `SELECT "source"."created_at" AS "created_at", "source"."count" AS "count" FROM (SELECT DATE_TRUNC('month', "public"."orders"."created_at") AS "created_at", COUNT(*) AS "count", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" WHERE ("public"."orders"."created_at" >= $1) AND ("public"."orders"."created_at" < $2) AND "public"."orders"."status" = 'paid' GROUP BY DATE_TRUNC('month', "public"."orders"."created_at") ORDER BY DATE_TRUNC('month', "public"."orders"."created_at") ASC) AS "source" LIMIT 1048575`,
		[]Param{{Type: pgtype.TimestamptzOID, Value: "2024-01-01 00:00:00+00"}, {Type: pgtype.TimestamptzOID, Value: "2024-04-01 00:00:00+00"}}},
	{"tableau", `SELECT CAST("orders"."status" AS TEXT) AS "status", DATE_TRUNC( 'MONTH', CAST("orders"."created_at" AS TIMESTAMP) ) AS "tmn:created_at:ok", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" WHERE (("orders"."created_at" >= (TIMESTAMP '2024-01-01 00:00:00.000')) AND ("orders"."created_at" < (TIMESTAMP '2024-04-01 00:00:00.000'))) GROUP BY 1, 2`, nil},
	{"superset", `SELECT DATE_TRUNC('day', created_at) AS __timestamp, status AS status, SUM(amount) AS "SUM(amount)" FROM public.orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') AND created_at < TO_TIMESTAMP('2024-02-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') GROUP BY status, DATE_TRUNC('day', created_at) ORDER BY "SUM(amount)" DESC LIMIT 10000`, nil},
	{"looker", `SELECT orders.status AS "orders.status", COALESCE(SUM(orders.quantity), 0) AS "orders.total_quantity" FROM public.orders AS orders WHERE orders.created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + INTERVAL '-30 day') AT TIME ZONE 'UTC') GROUP BY 1 ORDER BY 2 DESC FETCH NEXT 500 ROWS ONLY`, nil},
	{"powerbi", `SELECT "_"."status", "_"."a0" FROM (SELECT "rows"."status", "rows"."a0" FROM (SELECT "_"."status", count(*) AS "a0" FROM "public"."orders" "_" WHERE "_"."order_date" < date '2024-02-01' and "_"."order_date" >= date '2024-01-01' GROUP BY "_"."status") "rows") "_" LIMIT 1000001`, nil},
}

func benchSession(params []Param) Session {
	return Session{TimeZone: "UTC", Now: testNow, Params: params}
}

// loop runs f b.N times and also reports the process CPU time per call
// (cpu-ns/op), which other processes on a shared machine do not inflate.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := processCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if used := processCPU() - start; used > 0 && n > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

// BenchmarkDecideCached: the statement was decided before, as on every
// execution after the first; the parse is cached by the proxy.
func BenchmarkDecideCached(b *testing.B) {
	cat := testCatalog(b)
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			tree, err := pg_query.Parse(s.sql)
			if err != nil {
				b.Fatal(err)
			}
			e := NewEngine(0)
			sess := benchSession(s.params)
			if d := e.Decide(s.sql, tree, sess, cat); d.Outcome != OutcomeRollup {
				b.Fatalf("benchmark statement must match: %v", d.Reason)
			}
			loop(b, func() { e.Decide(s.sql, tree, sess, cat) })
		})
	}
}

// BenchmarkDecideUncached: a statement never seen before, including its parse.
func BenchmarkDecideUncached(b *testing.B) {
	cat := testCatalog(b)
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			sess := benchSession(s.params)
			loop(b, func() {
				tree, err := pg_query.Parse(s.sql)
				if err != nil {
					b.Fatal(err)
				}
				if d := DecideAnalysis(Analyze(tree), sess, cat); d.Outcome != OutcomeRollup {
					b.Fatal(d.Reason)
				}
			})
		})
	}
}

// BenchmarkDecideUncachedParsed: a statement never decided before whose
// parse the proxy already holds (its parse cache is keyed by text too).
func BenchmarkDecideUncachedParsed(b *testing.B) {
	cat := testCatalog(b)
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			tree, err := pg_query.Parse(s.sql)
			if err != nil {
				b.Fatal(err)
			}
			sess := benchSession(s.params)
			loop(b, func() {
				if d := DecideAnalysis(Analyze(tree), sess, cat); d.Outcome != OutcomeRollup {
					b.Fatal(d.Reason)
				}
			})
		})
	}
}

// BenchmarkDecideCachedInContext: as BenchmarkDecideCached, with the
// session's context as the proxy has it once read: its table names resolved
// and its privileges checked.
func BenchmarkDecideCachedInContext(b *testing.B) {
	cat := testCatalog(b)
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			tree, err := pg_query.Parse(s.sql)
			if err != nil {
				b.Fatal(err)
			}
			e := NewEngine(0)
			sess := benchSession(s.params)
			sess.Tables = map[string]string{}
			for name := range cat.Tables {
				sess.Tables[name] = name
				sess.Tables[name[strings.IndexByte(name, '.')+1:]] = name
			}
			sess.ContextKey = "public.orders=true\x00public.customers=true\x00customers->public.customers\x00orders->public.orders"
			sess.CanRead = func(string) bool { return true }
			if d := e.Decide(s.sql, tree, sess, cat); d.Outcome != OutcomeRollup {
				b.Fatalf("benchmark statement must match: %v", d.Reason)
			}
			loop(b, func() { e.Decide(s.sql, tree, sess, cat) })
		})
	}
}
