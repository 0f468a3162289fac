package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// createShop creates the database and the read-only login role.
func createShop(ctx context.Context, cluster *pgcluster.Cluster) error {
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`CREATE DATABASE shop`,
		`CREATE ROLE demo LOGIN PASSWORD 'demo'`,
		`GRANT CONNECT ON DATABASE shop TO demo`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// ordersPerBatch is the size of one INSERT ... SELECT generate_series: large
// enough to run at Postgres's full speed, small enough for a lively progress bar.
const ordersPerBatch = 250_000

// loadShop creates and fills the shop tables, showing progress.
func loadShop(ctx context.Context, dsn string, o options) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	execSQL := func(sql string, args ...any) error {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", benchkit.FirstLine(sql), err)
		}
		return nil
	}

	benchkit.Step("Generating the shop dataset")
	t0 := time.Now()
	if err := execSQL(schemaSQL); err != nil {
		return err
	}
	// A fixed seed: the same rows on every run, on this one session.
	if err := execSQL(`SELECT setseed(0.4242)`); err != nil {
		return err
	}
	var start time.Time
	if err := conn.QueryRow(ctx, `SELECT date_trunc('day', now()) - interval '730 days'`).Scan(&start); err != nil {
		return err
	}
	if err := execSQL(customersSQL, o.customers, start); err != nil {
		return err
	}
	if err := execSQL(productsSQL, o.products); err != nil {
		return err
	}
	bar := newProgress("orders", o.orders)
	for lo := 1; lo <= o.orders; lo += ordersPerBatch {
		hi := min(lo+ordersPerBatch-1, o.orders)
		if err := execSQL(ordersSQL, lo, hi, o.customers, o.products, start); err != nil {
			return err
		}
		bar.set(hi)
	}
	bar.finish()
	benchkit.Done("%d customers, %d products, %d orders from %s to today (%s)",
		o.customers, o.products, o.orders, start.Format("2006-01-02"), benchkit.Since(t0))

	benchkit.Step("Indexing and vacuuming, as a warehouse would be")
	t0 = time.Now()
	for _, sql := range indexSQL {
		if err := execSQL(sql); err != nil {
			return err
		}
	}
	benchkit.Done("ready (%s)", benchkit.Since(t0))
	return nil
}

const schemaSQL = `
CREATE TABLE customers (
    id           integer PRIMARY KEY,
    name         text NOT NULL,
    country      text,                -- a few are NULL
    signed_up_at timestamptz NOT NULL
);
CREATE TABLE products (
    id       integer PRIMARY KEY,
    name     text NOT NULL,
    category text,                    -- a few are NULL
    price    numeric(12,2) NOT NULL
);
-- No foreign keys: a few orders point at a customer that does not exist.
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer,              -- a few are NULL, a few are orphans
    product_id  integer,
    status      text,                 -- a few are NULL
    amount      numeric(12,2),        -- a few are NULL
    created_at  timestamptz NOT NULL
);
GRANT USAGE ON SCHEMA public TO demo;
GRANT SELECT ON customers, products, orders TO demo;
`

// $1 customers, $2 start of the order history.
const customersSQL = `
INSERT INTO customers (id, name, country, signed_up_at)
SELECT g,
       'Customer ' || g,
       CASE WHEN g % 97 = 0 THEN NULL
            ELSE (ARRAY['US','US','US','US','DE','DE','GB','GB','FR','NL','SE','ES','IT','JP','BR','IN','CA','AU'])[1 + floor(random() * 18)::int]
       END,
       $2::timestamptz - interval '1 year' + random() * interval '3 years'
FROM generate_series(1, $1::int) AS g`

// $1 products.
const productsSQL = `
INSERT INTO products (id, name, category, price)
SELECT g,
       'Product ' || g,
       CASE WHEN g % 53 = 0 THEN NULL
            ELSE (ARRAY['Books','Electronics','Garden','Toys','Grocery','Clothing','Sports','Home'])[1 + floor(random() * 8)::int]
       END,
       round((2 + random() * 298)::numeric, 2)
FROM generate_series(1, $1::int) AS g`

// $1..$2 order ids, $3 customers, $4 products, $5 start of the history.
// sqrt(random()) makes later days busier: a shop that grows.
const ordersSQL = `
INSERT INTO orders (id, customer_id, product_id, status, amount, created_at)
SELECT g,
       CASE WHEN g % 10000 = 9 THEN NULL
            WHEN g % 5000 = 17 THEN $3::int + 1000000   -- an orphan: no such customer
            ELSE 1 + floor(random() * $3::int)::int
       END,
       1 + floor(random() * $4::int)::int,
       CASE WHEN g % 1000 = 3 THEN NULL
            ELSE (ARRAY['completed','completed','completed','completed','completed','completed',
                        'shipped','shipped','pending','cancelled','refunded'])[1 + floor(random() * 11)::int]
       END,
       CASE WHEN g % 1000 = 7 THEN NULL
            ELSE round((1 + random() * random() * 499)::numeric, 2)
       END,
       $5::timestamptz + sqrt(random()) * interval '730 days'
FROM generate_series($1::bigint, $2::bigint) AS g`

// VACUUM sets the hint bits and the visibility map, so that the direct
// timings measure Postgres at its best, not its first read of fresh rows.
var indexSQL = []string{
	`CREATE INDEX orders_created_at ON orders (created_at)`,
	`CREATE INDEX orders_customer_id ON orders (customer_id)`,
	`VACUUM (ANALYZE) customers, products, orders`,
}
