package rewrite

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestFindTopNJoin(t *testing.T) {
	// Tableau's top-N filter and Superset's series limit, as the corpus
	// has them (e2e/testdata/corpus), then near misses.
	tests := []struct {
		name  string
		sql   string
		inner string // "" when not a top-N join
		outer string
	}{
		{"tableau", `SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" INNER JOIN (SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "$__alias__0" FROM "public"."orders" "orders" GROUP BY 1 ORDER BY 2 DESC LIMIT 3) "t0" ON ("orders"."status" = "t0"."status") GROUP BY 1`,
			`SELECT orders.status AS status, sum(orders.amount) AS "$__alias__0" FROM public.orders orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3`,
			`SELECT orders.status AS status, sum(orders.amount) AS "sum:amount:ok" FROM public.orders orders WHERE orders.status IN ('a'::pg_catalog.text, 'b''c'::pg_catalog.text) GROUP BY 1`},
		{"superset", `SELECT DATE_TRUNC('day', public.orders.created_at) AS __timestamp, public.orders.status AS status, SUM(amount) AS "SUM(amount)" FROM public.orders JOIN (SELECT status AS status__, SUM(amount) AS mme_inner__ FROM public.orders WHERE created_at >= '2024-01-01' GROUP BY status ORDER BY mme_inner__ DESC LIMIT 5) AS series_limit ON public.orders.status = series_limit.status__ WHERE created_at >= '2024-01-01' GROUP BY DATE_TRUNC('day', public.orders.created_at), public.orders.status ORDER BY "SUM(amount)" DESC LIMIT 10000`,
			`SELECT status AS status__, sum(amount) AS mme_inner__ FROM public.orders WHERE created_at >= '2024-01-01' GROUP BY status ORDER BY mme_inner__ DESC LIMIT 5`,
			`SELECT date_trunc('day', public.orders.created_at) AS __timestamp, public.orders.status AS status, sum(amount) AS "SUM(amount)" FROM public.orders WHERE created_at >= '2024-01-01' AND public.orders.status IN ('a'::pg_catalog.text, 'b''c'::pg_catalog.text) GROUP BY date_trunc('day', public.orders.created_at), public.orders.status ORDER BY "SUM(amount)" DESC LIMIT 10000`},
		{"subquery column in the select list", `SELECT o.status, t0.n FROM orders o JOIN (SELECT status, sum(amount) AS n FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0 ON o.status = t0.status`, "", ""},
		{"unqualified name the subquery has", `SELECT status, sum(amount) FROM orders o JOIN (SELECT status AS s, sum(amount) AS n FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0 ON o.status = t0.s WHERE n > 0 GROUP BY 1`, "", ""},
		{"grouped by more than the key", `SELECT o.status, sum(o.amount) FROM orders o JOIN (SELECT status, region, sum(amount) FROM orders GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3) t0 ON o.status = t0.status GROUP BY 1`, "", ""},
		{"left join", `SELECT o.status, sum(o.amount) FROM orders o LEFT JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0 ON o.status = t0.status GROUP BY 1`, "", ""},
		{"no limit", `SELECT o.status, sum(o.amount) FROM orders o JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1) t0 ON o.status = t0.status GROUP BY 1`, "", ""},
		{"limit too large", `SELECT o.status, sum(o.amount) FROM orders o JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 LIMIT 5000) t0 ON o.status = t0.status GROUP BY 1`, "", ""},
		{"not an equality", `SELECT o.status, sum(o.amount) FROM orders o JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0 ON o.status < t0.status GROUP BY 1`, "", ""},
		{"star", `SELECT * FROM orders o JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0 ON o.status = t0.status`, "", ""},
	}
	a, bc := "a", "b'c"
	cols := []ResultColumn{{Name: "status", Type: Type{OID: pgtype.TextOID, Typmod: -1}}, {Name: "n", Type: Type{OID: pgtype.NumericOID, Typmod: -1}}}
	for _, tt := range tests {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		j := FindTopNJoin(tree)
		if (j != nil) != (tt.inner != "") {
			t.Errorf("%s: found %v", tt.name, j != nil)
			continue
		}
		if j == nil {
			continue
		}
		if j.InnerSQL != tt.inner {
			t.Errorf("%s: inner\n%s\nwant\n%s", tt.name, j.InnerSQL, tt.inner)
		}
		sql, _, empty, err := j.Filtered(cols, [][]*string{{&a, nil}, {nil, nil}, {&bc, &a}})
		if err != nil || empty || sql != tt.outer {
			t.Errorf("%s: filtered %v %v\n%s\nwant\n%s", tt.name, err, empty, sql, tt.outer)
		}
		if _, _, empty, err := j.Filtered(cols, [][]*string{{nil, &a}}); !empty || err != nil {
			t.Errorf("%s: no key: empty %v, %v", tt.name, empty, err)
		}
	}
}
