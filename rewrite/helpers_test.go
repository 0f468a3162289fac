package rewrite

import (
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
)

// testConfig is the shop of DESIGN.md §2 with a few rollups of different
// grains, filters and joins.
func testConfig() *config.Config {
	return &config.Config{
		BuildTimezone: "UTC",
		Tables: []config.Table{{
			Name: "public.orders",
			Joins: []config.Join{
				{Table: "public.customers", On: "orders.customer_id = customers.id", Type: "left", Relationship: "many_to_one"},
				{Table: "public.stores", On: "orders.store_id = stores.id", Type: "inner", Relationship: "many_to_one"},
			},
		}},
		Rollups: []config.Rollup{
			{
				Name: "orders_daily", Table: "public.orders",
				Dimensions:    []string{"status", "customers.country", "quantity"},
				TimeDimension: "created_at", Granularity: config.Day,
				Measures: []string{"sum(amount)", "count(*)", "min(amount)", "max(amount)", "count(distinct customer_id)", "sum(price)", "count(price)", "sum(quantity)"},
			},
			{
				Name: "orders_hourly", Table: "public.orders",
				Dimensions:    []string{"status"},
				TimeDimension: "created_at", Granularity: config.Hour,
				Measures: []string{"sum(amount)", "count(*)"},
			},
			{
				Name: "orders_weekly_paid", Table: "public.orders",
				Dimensions:    []string{"status"},
				TimeDimension: "created_at", Granularity: config.Week,
				Measures: []string{"sum(amount)", "count(*)"},
				Filters:  []string{"status <> 'cancelled'"},
			},
			{
				Name: "orders_by_store", Table: "public.orders",
				Dimensions: []string{"stores.region"},
				Measures:   []string{"count(*)"},
			},
			{
				Name: "orders_by_day", Table: "public.orders",
				Dimensions:    []string{"status"},
				TimeDimension: "order_date", Granularity: config.Day,
				Measures: []string{"count(*)", "sum(amount)"},
			},
			{
				Name: "orders_local_month", Table: "public.orders",
				Dimensions:    []string{"status"},
				TimeDimension: "local_ts", Granularity: config.Month,
				Measures: []string{"count(*)"},
			},
		},
	}
}

var testTypes = map[string]string{
	"public.orders.status":      "text",
	"public.orders.amount":      "numeric(12,2)",
	"public.orders.price":       "double precision",
	"public.orders.quantity":    "integer",
	"public.orders.customer_id": "integer",
	"public.orders.store_id":    "integer",
	"public.orders.created_at":  "timestamptz",
	"public.orders.order_date":  "date",
	"public.orders.local_ts":    "timestamp",
	"public.customers.id":       "integer",
	"public.customers.country":  "text",
	"public.stores.id":          "integer",
	"public.stores.region":      "text",
}

// testCatalog is a full (not partial) catalog of testConfig: rollups built
// and covering all time.
func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	return catalogOf(t, testConfig(), nil)
}

var testNow = time.Date(2024, 3, 15, 10, 30, 0, 0, time.UTC)

func decide(t testing.TB, cat *Catalog, sess Session, sql string) Decision {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	if sess.Now.IsZero() {
		sess.Now = testNow
	}
	return DecideAnalysis(Analyze(tree), sess, cat)
}
