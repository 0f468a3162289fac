package rewrite

import (
	"fmt"
	"testing"

	"github.com/pgrollup/pgrollup/config"
)

// starConfig declares the join to customers inner, as a star schema whose
// every fact row has its dimension rows does, and adds a rollup built with
// both joins.
func starConfig(c *config.Config) {
	c.Tables[0].Joins[0].Type = config.JoinInner
	c.Rollups = append(c.Rollups, config.Rollup{
		Name: "orders_star", Table: "public.orders",
		Dimensions: []string{"customers.country", "stores.region", "status"}, TimeDimension: "created_at", Granularity: config.Month,
		Measures: []string{"sum(amount)", "count(*)"},
	})
}

// starJoinCases are joins that name the rollups' table after its
// dimensions, in comma lists and explicit joins, with the join conditions in
// ON or in WHERE, and the near misses where that changes the answer.
func starJoinCases() []decideCase {
	return []decideCase{
		{name: "fact second, comma list", sql: "SELECT s.region, count(*) FROM stores s, orders o WHERE o.store_id = s.id GROUP BY 1", rollup: "orders_by_store"},
		{name: "fact second, comma list, condition reversed", sql: "SELECT stores.region, count(*) FROM stores, orders WHERE stores.id = orders.store_id GROUP BY stores.region", rollup: "orders_by_store"},
		{name: "fact second, inner join", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id GROUP BY 1", rollup: "orders_by_store"},
		{name: "fact second, tableau inner join", sql: `SELECT "s"."region" AS "region", COUNT(*) AS "cnt" FROM "public"."stores" "s" INNER JOIN "public"."orders" "o" ON ("s"."id" = "o"."store_id") GROUP BY 1`, rollup: "orders_by_store"},
		{name: "fact second, then a declared left join", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1", rollup: "orders_by_store"},
		{name: "fact second, dimension filter in ON", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id AND s.region = 'north' GROUP BY 1", rollup: "orders_by_store"},
		{name: "fact second, condition in WHERE of an inner join", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON s.region = 'north' WHERE o.store_id = s.id GROUP BY 1", rollup: "orders_by_store"},

		{name: "fact second, cross join", sql: "SELECT s.region, count(*) FROM stores s, orders o GROUP BY 1", reason: ReasonJoin},
		{name: "fact second, other key", sql: "SELECT s.region, count(*) FROM stores s, orders o WHERE o.customer_id = s.id GROUP BY 1", reason: ReasonJoin},
		{name: "fact second, inner join declared left", sql: "SELECT c.country, count(*) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "fact second, inner join declared left, in WHERE", sql: "SELECT c.country, count(*) FROM customers c, orders o WHERE c.id = o.customer_id GROUP BY 1", reason: ReasonJoin},
		{name: "fact on the nullable side", sql: "SELECT c.country, count(o.amount) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "fact right joined", sql: "SELECT c.country, count(*) FROM customers c RIGHT JOIN orders o ON o.customer_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "fact after an outer join", sql: "SELECT s.region, count(*) FROM customers c LEFT JOIN stores s ON s.id = c.id JOIN orders o ON o.store_id = s.id GROUP BY 1", reason: ReasonJoin},
		{name: "fact second, inner join the rollup lacks", sql: "SELECT c.country, count(*) FROM stores s JOIN orders o ON o.store_id = s.id LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1", reason: ReasonNotDimension, cands: map[string]ReasonCode{"orders_daily": ReasonJoin}},
		{name: "fact second, undeclared table first", sql: "SELECT count(*) FROM products p, orders o WHERE o.id = p.id", reason: ReasonJoin},
		{name: "ON sees another FROM item", sql: "SELECT s.region, count(*) FROM stores s, customers c JOIN orders o ON o.store_id = s.id GROUP BY 1", reason: ReasonUnknownColumn},
		{name: "only dimensions", sql: "SELECT s.region, count(*) FROM stores s, customers c WHERE s.id = c.id GROUP BY 1", reason: ReasonNoRollup},

		{name: "fact second, row-level security on the dimension", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id GROUP BY 1", rollup: "orders_by_store", want: []string{"'north'"}, sess: withRowFilter("public.stores", "region = 'north'")},
		{name: "fact second, row-level security through a left join", sql: "SELECT s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1", reason: ReasonContext, sess: withRowFilter("public.customers", "country = 'DE'")},

		{name: "star, fact in the middle", cfg: starConfig, sql: "SELECT c.country, s.region, sum(o.amount) FROM customers c, orders o, stores s WHERE o.customer_id = c.id AND s.id = o.store_id GROUP BY 1, 2", rollup: "orders_star"},
		{name: "star, fact last, unqualified", cfg: starConfig, sql: "SELECT country, region, sum(amount) FROM customers, stores, orders WHERE customer_id = customers.id AND store_id = stores.id AND orders.status = 'paid' GROUP BY country, region", rollup: "orders_star"},
		{name: "star, explicit joins, fact first joined", cfg: starConfig, sql: "SELECT c.country, s.region, count(*) FROM customers c INNER JOIN orders o ON o.customer_id = c.id INNER JOIN stores s ON s.id = o.store_id GROUP BY 1, 2", rollup: "orders_star"},
		{name: "star, comma and join", cfg: starConfig, sql: "SELECT c.country, s.region, count(*) FROM stores s, customers c JOIN orders o ON c.id = o.customer_id WHERE o.store_id = s.id GROUP BY 1, 2", rollup: "orders_star"},
		{name: "star, one dimension", cfg: starConfig, sql: "SELECT c.country, count(*) FROM customers c, orders o WHERE o.customer_id = c.id GROUP BY 1", rollup: "orders_daily"},
		{name: "star, dimension not joined", cfg: starConfig, sql: "SELECT c.country, count(*) FROM customers c, orders o, stores s WHERE o.customer_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "star, dimension joined to a dimension", cfg: starConfig, sql: "SELECT c.country, s.region, count(*) FROM customers c, orders o, stores s WHERE o.customer_id = c.id AND s.id = c.id GROUP BY 1, 2", reason: ReasonJoin},
		{name: "star, ambiguous column", cfg: starConfig, sql: "SELECT country, region, count(*) FROM customers, stores, orders WHERE customer_id = customers.id AND store_id = stores.id AND status = 'paid' GROUP BY 1, 2", reason: ReasonAmbiguousColumn},
		{name: "star, left join declared inner", cfg: starConfig, sql: "SELECT c.country, s.region, count(*) FROM stores s JOIN orders o ON o.store_id = s.id LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1, 2", reason: ReasonJoin},
	}
}

// withRowFilter resolves the test's tables by their bare names and applies a
// row-level security predicate to one.
func withRowFilter(table, filter string) func(*Session) {
	return func(s *Session) {
		s.Tables = map[string]string{"orders": "public.orders", "stores": "public.stores", "customers": "public.customers"}
		s.RowFilters = map[string]string{table: filter}
		s.ContextKey = table + ":" + filter
	}
}

func TestStarJoins(t *testing.T) { runCases(t, starJoinCases()) }

// ssbConfig adds the Star Schema Benchmark's lineorder with three of its
// dimensions, every join inner, and a rollup built with all three.
func ssbConfig(c *config.Config) {
	c.Tables = append(c.Tables, config.Table{
		Name: "public.lineorder",
		Joins: []config.Join{
			{Table: "public.customer", On: "lineorder.lo_custkey = customer.c_custkey", Type: config.JoinInner, Relationship: config.RelationshipManyToOne},
			{Table: "public.supplier", On: "lineorder.lo_suppkey = supplier.s_suppkey", Type: config.JoinInner, Relationship: config.RelationshipManyToOne},
			{Table: "public.dwdate", On: "lineorder.lo_orderdate = dwdate.d_datekey", Type: config.JoinInner, Relationship: config.RelationshipManyToOne},
		},
	})
	c.Rollups = append(c.Rollups, config.Rollup{
		Name: "lineorder_regions_years", Table: "public.lineorder",
		Dimensions: []string{"customer.c_region", "supplier.s_region", "dwdate.d_year"},
		Measures:   []string{"sum(lo_revenue)", "count(*)"},
	})
}

var ssbTypes = map[string]string{
	"public.lineorder.lo_custkey":   "integer",
	"public.lineorder.lo_suppkey":   "integer",
	"public.lineorder.lo_orderdate": "integer",
	"public.lineorder.lo_revenue":   "bigint",
	"public.customer.c_custkey":     "integer",
	"public.customer.c_region":      "text",
	"public.supplier.s_suppkey":     "integer",
	"public.supplier.s_region":      "text",
	"public.dwdate.d_datekey":       "integer",
	"public.dwdate.d_year":          "integer",
}

// ssbCases are Star Schema Benchmark queries as written, the fact table
// among its dimensions.
func ssbCases() []decideCase {
	q31 := "SELECT c_region, s_region, d_year, sum(lo_revenue) AS revenue FROM %s WHERE %s GROUP BY c_region, s_region, d_year ORDER BY d_year ASC, revenue DESC"
	all := "lo_custkey = c_custkey AND lo_suppkey = s_suppkey AND lo_orderdate = d_datekey AND c_region = 'ASIA' AND s_region = 'ASIA' AND d_year >= 1992"
	return []decideCase{
		{name: "ssb q3.1, fact second", sql: fmt.Sprintf(q31, "customer, lineorder, supplier, dwdate", all), rollup: "lineorder_regions_years"},
		{name: "ssb q3.1, fact last", sql: fmt.Sprintf(q31, "customer, supplier, dwdate, lineorder", all), rollup: "lineorder_regions_years"},
		{name: "ssb q3.1, fact first", sql: fmt.Sprintf(q31, "lineorder, customer, supplier, dwdate", all), rollup: "lineorder_regions_years"},
		{name: "ssb q3.1, keys reversed", sql: fmt.Sprintf(q31, "customer, lineorder, supplier, dwdate", "c_custkey = lo_custkey AND s_suppkey = lo_suppkey AND d_datekey = lo_orderdate AND c_region = 'ASIA'"), rollup: "lineorder_regions_years"},
		{name: "ssb q3.1, explicit joins", sql: fmt.Sprintf(q31, "customer JOIN lineorder ON lo_custkey = c_custkey JOIN supplier ON lo_suppkey = s_suppkey JOIN dwdate ON lo_orderdate = d_datekey", "c_region = 'ASIA'"), rollup: "lineorder_regions_years"},
		{name: "ssb q3.1, dwdate not joined", sql: fmt.Sprintf(q31, "customer, lineorder, supplier, dwdate", "lo_custkey = c_custkey AND lo_suppkey = s_suppkey AND c_region = 'ASIA'"), reason: ReasonJoin},
		{name: "ssb q3.1, dwdate missing", sql: "SELECT c_region, s_region, sum(lo_revenue) FROM customer, lineorder, supplier WHERE lo_custkey = c_custkey AND lo_suppkey = s_suppkey GROUP BY 1, 2", reason: ReasonJoin},
		{name: "ssb q3.1, supplier on the wrong key", sql: fmt.Sprintf(q31, "customer, lineorder, supplier, dwdate", "lo_custkey = c_custkey AND lo_custkey = s_suppkey AND lo_orderdate = d_datekey"), reason: ReasonJoin},
		{name: "ssb q3.1, customer left joined", sql: fmt.Sprintf(q31, "supplier, dwdate, lineorder LEFT JOIN customer ON lo_custkey = c_custkey", "lo_suppkey = s_suppkey AND lo_orderdate = d_datekey"), reason: ReasonJoin},
	}
}

func TestStarJoinsSSB(t *testing.T) {
	cases := ssbCases()
	for i := range cases {
		cases[i].cfg, cases[i].types = ssbConfig, ssbTypes
	}
	runCases(t, cases)
}
