package rewrite

import (
	"fmt"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestNeeds(t *testing.T) {
	cat := testCatalog(t)
	cases := []struct {
		sql  string
		want string // Need as fmt prints it, or the reason code
	}{
		{"SELECT status, sum(amount) FROM orders GROUP BY status",
			"public.orders [status] : [sum(amount)] []"},
		{"SELECT date_trunc('month', created_at) AS m, count(*) FROM orders WHERE created_at >= '2024-01-01' AND status = 'paid' GROUP BY 1 ORDER BY 1",
			"public.orders [status] created_at:day [count(*)] []"},
		{"SELECT date_trunc('week', o.created_at), c.country, avg(o.price) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2",
			"public.orders [customers.country] created_at:week [avg(price)] [public.customers]"},
		{"SELECT count(DISTINCT customer_id) FILTER (WHERE status <> 'cancelled') FROM orders WHERE created_at BETWEEN '2024-01-01 10:00:00' AND '2024-01-02'",
			"public.orders [] created_at:hour [count(DISTINCT customer_id) FILTER (WHERE (status <> 'cancelled'))] []"},
		{"SELECT order_date::date, sum(CASE WHEN status = 'paid' THEN amount ELSE 0 END) FROM orders GROUP BY 1",
			"public.orders [] order_date:day [sum(CASE WHEN (status = 'paid') THEN amount ELSE 0 END)] []"},
		{"SELECT floor(extract(epoch from created_at)/3600)*3600 AS \"time\", sum(price) FROM orders GROUP BY 1 ORDER BY 1",
			"public.orders [] created_at:hour [sum(price)] []"},
		{"SELECT (DATE_TRUNC('week', (created_at + INTERVAL '1 day')) + INTERVAL '-1 day') AS w, count(*) FROM orders GROUP BY 1",
			"public.orders [] created_at:week [count(*)] []"},
		{"SELECT CAST(extract(month from created_at) AS integer) AS m, sum(quantity) FROM orders GROUP BY 1",
			"public.orders [] created_at:month [sum(quantity)] []"},
		{"SELECT count(*) FROM orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') AND created_at < date_trunc('month', now())",
			"public.orders [] created_at:day [count(*)] []"},
		{"SELECT sum(amount) FROM orders WHERE order_date BETWEEN '2024-01-01T00:00:00Z' AND '2024-06-30T23:59:59Z'",
			"public.orders [] order_date:day [sum(amount)] []"},
		{"SELECT * FROM orders", string(ReasonNoAggregate)},
		{"SELECT count(*) FROM nowhere", string(ReasonNoRollup)},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			n, r := Needs(tree, cat)
			got := ""
			if r != nil {
				got = string(r.Code)
			} else {
				got = fmt.Sprintf("%s %v %s:%s %v %v", n.Table, n.Dimensions, n.TimeColumn, n.Grain, n.Measures, n.Joins)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
