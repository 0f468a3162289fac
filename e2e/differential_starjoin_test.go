package e2e

import (
	"testing"
	"time"
)

// diffStarJoinStmts are star-schema joins that name the fact table after
// its dimensions, in comma lists and explicit joins, with the conditions in
// ON or WHERE. rollup is the rollup that must answer, "" for statements
// that must pass through (their answers are compared all the same).
var diffStarJoinStmts = []struct {
	name, sql, rollup string
}{
	{"fact second, comma list", `SELECT s.region, count(*) FROM stores s, orders o WHERE o.store_id = s.id GROUP BY 1`, "orders_by_store"},
	{"fact second, unqualified", `SELECT region, count(*) FROM stores, orders WHERE stores.id = store_id GROUP BY region`, "orders_by_store"},
	{"fact second, inner join", `SELECT stores.region, count(*) FROM stores JOIN orders ON stores.id = orders.store_id GROUP BY 1 ORDER BY 1`, "orders_by_store"},
	{"fact second, filter in ON", `SELECT s.region, count(*) FROM stores s INNER JOIN orders o ON s.id = o.store_id AND s.region <> 'north' GROUP BY 1`, "orders_by_store"},
	{"fact second, then a left join", `SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1`, "orders_by_store"},
	{"comma before a left join", `SELECT s.region, count(*) FROM stores s, orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.store_id = s.id GROUP BY 1`, "orders_by_store"},
	{"tableau, fact second", `SELECT "s"."region" AS "region", COUNT(*) AS "cnt" FROM "public"."stores" "s" INNER JOIN "public"."orders" "o" ON ("s"."id" = "o"."store_id") GROUP BY 1`, "orders_by_store"},

	{"inner join declared left", `SELECT c.country, count(*) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY 1`, ""},
	{"inner join declared left, in WHERE", `SELECT c.country, sum(o.amount) FROM customers c, orders o WHERE c.id = o.customer_id GROUP BY 1`, ""},
	{"fact on the nullable side", `SELECT c.country, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY 1`, ""},
	{"cross join", `SELECT s.region, count(*) FROM stores s, orders o GROUP BY 1`, ""},
	{"other key", `SELECT s.region, count(*) FROM stores s, orders o WHERE o.customer_id = s.id GROUP BY 1`, ""},
	{"fact after an outer join", `SELECT s.region, count(*) FROM customers c LEFT JOIN stores s ON s.id = c.id JOIN orders o ON o.store_id = s.id GROUP BY 1`, ""},
	{"ON sees another FROM item", `SELECT s.region, count(*) FROM stores s, customers c JOIN orders o ON o.store_id = s.id GROUP BY 1`, ""},
}

// TestDifferentialStarJoin compares the answers to star joins in several
// FROM orders through pgrollup and from Postgres, and requires the ones a
// rollup answers to be answered from it.
func TestDifferentialStarJoin(t *testing.T) {
	ctx := testCtx(t, 10*time.Minute)
	fx := startDiffFixture(t)
	r := newDiffRunner(t, fx)
	for _, c := range diffStarJoinStmts {
		st := &diffStmt{Kind: "starjoin", Name: c.name, Zone: "UTC", SQL: c.sql}
		if c.rollup != "" {
			st.MustHit, st.Why = true, "a star join rollup "+c.rollup+" answers"
		}
		if ok, why := diffPrepare(st); !ok {
			t.Fatalf("%s: %s", c.name, why)
		}
		out := r.run(t, ctx, st, []diffMode{diffModeSimpleText, diffModeExtBinary})
		if c.rollup != "" && out.explain != c.rollup {
			t.Errorf("%s: EXPLAIN (ROLLUP) chose %q (%s), want %s", c.name, out.explain, out.reason, c.rollup)
		}
		if c.rollup == "" && out.explain != "" {
			t.Errorf("%s: answered from rollup %s, want it passed through", c.name, out.explain)
		}
	}
	if r.failures > 0 {
		t.Errorf("%d star joins answered differently", r.failures)
	}
}
