package advise

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

var testPG pgcluster.Shared

func TestMain(m *testing.M) { code := m.Run(); testPG.Exit(code) }

// TestEstimatorRows: estimates from pg_stats after ANALYZE, and from counts
// on a table never analysed, against the rollup's true row count.
func TestEstimatorRows(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testPG.Get(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS est_orders, est_customers;
		CREATE TABLE est_customers AS SELECT i AS id, 'c' || (i % 12) AS country FROM generate_series(1, 300) i;
		CREATE TABLE est_orders AS SELECT i AS id, i % 300 + 1 AS customer_id, (ARRAY['paid','new','cancelled','refunded'])[i % 4 + 1] AS status,
			timestamptz '2024-01-01' + (i % 365) * interval '1 day' + (i % 24) * interval '1 hour' AS created_at
		FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Tables: []config.Table{{Name: "public.est_orders", Joins: []config.Join{{Table: "public.est_customers", On: "est_orders.customer_id = est_customers.id"}}}}}
	cases := []struct {
		r     config.Rollup
		exact string // the rollup's true rows
	}{
		{config.Rollup{Table: "public.est_orders", Dimensions: []string{"status"}},
			"SELECT count(DISTINCT status) FROM est_orders"},
		{config.Rollup{Table: "public.est_orders", Dimensions: []string{"status"}, TimeDimension: "created_at", Granularity: config.Month},
			"SELECT count(*) FROM (SELECT DISTINCT status, date_trunc('month', created_at) FROM est_orders) s"},
		{config.Rollup{Table: "public.est_orders", Dimensions: []string{"est_customers.country"}, TimeDimension: "created_at", Granularity: config.Day},
			"SELECT count(*) FROM (SELECT DISTINCT c.country, date_trunc('day', created_at) FROM est_orders o LEFT JOIN est_customers c ON o.customer_id = c.id) s"},
		{config.Rollup{Table: "public.est_orders", Dimensions: []string{"id"}, TimeDimension: "created_at", Granularity: config.Hour},
			"SELECT count(*) FROM est_orders"},
	}
	for _, analysed := range []bool{false, true} {
		if analysed {
			if _, err := conn.Exec(ctx, "ANALYZE est_orders; ANALYZE est_customers"); err != nil {
				t.Fatal(err)
			}
		}
		e := &Estimator{DB: conn, Config: cfg}
		for _, c := range cases {
			var exact int64
			if err := conn.QueryRow(ctx, c.exact).Scan(&exact); err != nil {
				t.Fatal(err)
			}
			got, err := e.Rows(ctx, c.r)
			if err != nil {
				t.Fatal(err)
			}
			// An estimate assumes independent columns: it may exceed the
			// truth, never by more than the fact table, and should not fall
			// far below it.
			if got < exact*8/10 || got > 20000 {
				t.Errorf("analysed %v: %s %v: estimated %d rows, %d exactly", analysed, c.r.Table, c.r.Dimensions, got, exact)
			}
		}
	}
}
