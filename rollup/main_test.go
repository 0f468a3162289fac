package rollup

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// testPG is the Postgres the tests build from, started by the first test that needs it.
var testPG = pgcluster.Shared{Options: pgcluster.Options{
	// Parallel aggregation sums floats in a different order on every run; the
	// comparisons below need the same order twice.
	Config: map[string]string{"max_parallel_workers_per_gather": "0"},
}}

// warehouse returns the Postgres, starting it on first use; without one the
// test is skipped, or failed under make test and CI.
func warehouse(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return testPG.Get(t)
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testPG.Exit))
}

// newDatabase creates a fresh database filled by the given statements and returns its DSN.
func newDatabase(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	dsn, err := warehouse(t).NewDatabase(context.Background(), name, stmts...)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// shopSchema is a small shop: orders over six months across a DST change, customers
// with NULL countries, orders of unknown customers, NULL amounts and cancelled orders.
var shopSchema = []string{
	`CREATE TABLE customers (id int PRIMARY KEY, country text, segment varchar(10))`,
	`INSERT INTO customers SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE (ARRAY['DE','FR','US','JP'])[1 + i % 4] END,
		(ARRAY['retail','pro'])[1 + i % 2] FROM generate_series(1, 200) i`,
	`CREATE TABLE orders (
		id bigint PRIMARY KEY,
		customer_id int,
		status text NOT NULL,
		amount numeric(12,2),
		qty int,
		weight real,
		price double precision,
		big bigint,
		created_at timestamptz NOT NULL,
		ship_date date,
		local_ts timestamp
	)`,
	`INSERT INTO orders SELECT i,
		CASE WHEN i % 11 = 0 THEN 9999 ELSE 1 + (i * 37) % 200 END,
		(ARRAY['new','paid','shipped','cancelled'])[1 + (i * 13) % 4],
		CASE WHEN i % 17 = 0 THEN NULL ELSE ((i * 7919) % 100000) / 100.0 END,
		1 + i % 5,
		(i % 13) / 4.0,
		((i * 31) % 1000) / 3.0,
		(i::bigint * 1000003) % 9223372036854,
		timestamptz '2023-10-01 00:00:00+00' + (i * interval '17 minutes 13 seconds'),
		date '2023-10-01' + (i / 97),
		timestamp '2023-10-01 00:00:00' + (i * interval '23 minutes')
		FROM generate_series(1, 20000) i`,
	// accounts shares the column names status and amount with orders: a build that
	// joins it must still read orders' columns where the config names them bare.
	`CREATE TABLE accounts (id int PRIMARY KEY, status text, amount numeric(12,2))`,
	`INSERT INTO accounts SELECT i, (ARRAY['open','closed'])[1 + i % 2], i FROM generate_series(1, 150) i`,
	`ANALYZE`,
}
