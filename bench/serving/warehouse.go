package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// The role and database the benchmark's clients use. The role is not a
// superuser: pgrollup checks a client's privileges before a rollup hit, and a
// BI tool's login is an ordinary role too.
const (
	benchUser     = "pgrollup_serving"
	benchPassword = "bench"
	benchDB       = "pgrollup_serving"
)

// warehouse is the Postgres the benchmark fills and pgrollup sits in front of.
type warehouse struct {
	cluster *pgcluster.Cluster
	// The orders span [start, end): from the first of the month 24 months
	// before the current one to today's midnight, UTC. Relative to today so
	// that Metabase's now()-based filters find data; whole days so that
	// nothing arrives after the builds.
	start, end time.Time
}

func startWarehouse(ctx context.Context, o options) (*warehouse, error) {
	t0 := time.Now()
	maxClients := slices.Max(o.clients)
	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		// pgbench's clients directly and through pgrollup (one upstream session
		// each) at once, pgrollup's own pool and the builds, plus slack.
		"max_connections": fmt.Sprint(2*maxClients + 50),
		// The table (about 800 MB at 10M rows) stays in memory: Postgres gets
		// its best case, as a warmed-up warehouse would.
		"shared_buffers":       "1GB",
		"work_mem":             "64MB",
		"maintenance_work_mem": "512MB",
		"max_wal_size":         "4GB",
		"timezone":             "UTC",
	})
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	w := &warehouse{
		cluster: cluster,
		start:   time.Date(now.Year(), now.Month()-24, 1, 0, 0, 0, 0, time.UTC),
		end:     end,
	}
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		w.stop()
		return nil, err
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, `SELECT 'PostgreSQL ' || current_setting('server_version')`).Scan(&version); err != nil {
		w.stop()
		return nil, err
	}
	if err := benchkit.ExecAll(ctx, conn,
		`CREATE ROLE `+benchUser+` LOGIN PASSWORD '`+benchPassword+`'`,
		`CREATE DATABASE `+benchDB,
		`GRANT CONNECT ON DATABASE `+benchDB+` TO `+benchUser,
		// Every session cuts days in UTC, the rollups' build_timezone; an
		// external server's default zone may be anything.
		`ALTER DATABASE `+benchDB+` SET timezone TO 'UTC'`,
	); err != nil {
		w.stop()
		return nil, err
	}
	benchkit.Done("%s on %s:%d (%s)", version, cluster.Host, cluster.Port, benchkit.Since(t0))
	return w, nil
}

// stop drops what the benchmark created on an external server, or stops the
// throw-away cluster.
func (w *warehouse) stop() error {
	if !w.cluster.External {
		return w.cluster.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, w.cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return benchkit.ExecAll(ctx, conn,
		`DROP DATABASE IF EXISTS `+benchDB+` WITH (FORCE)`,
		`DROP ROLE IF EXISTS `+benchUser)
}

// serviceDSN is pgrollup's warehouse DSN, used for builds: the superuser.
func (w *warehouse) serviceDSN() string { return w.cluster.DSN(benchDB) }

// clientDSN is what a BI tool would use to connect to Postgres directly.
func (w *warehouse) clientDSN() string { return w.cluster.DSNFor(benchUser, benchPassword, benchDB) }

// load creates and fills customers and orders, then indexes and analyses them.
func (w *warehouse) load(ctx context.Context, o options) error {
	benchkit.Step("Generating %d orders from %s to %s (UTC)", o.rows, w.start.Format("2006-01-02"), w.end.Format("2006-01-02"))
	t0 := time.Now()
	exec := func(conn *pgx.Conn, sql string, args ...any) error {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", benchkit.FirstLine(sql), err)
		}
		return nil
	}
	conn, err := pgx.Connect(ctx, w.serviceDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	fmt.Printf("%s\n", benchkit.Indent(schemaSQL))
	if err := exec(conn, schemaSQL); err != nil {
		return err
	}
	fmt.Printf("%s\n    -- with $1 = %d, $2 = '%s'\n", benchkit.Indent(customersSQL), o.customers, w.start.Format(time.RFC3339))
	if err := exec(conn, `SELECT setseed(0.5)`); err != nil {
		return err
	}
	if err := exec(conn, customersSQL, o.customers, w.start); err != nil {
		return err
	}

	// Two sessions insert batches in parallel (the machine has two cores);
	// each batch seeds random() itself, so the data is the same on every run
	// whatever the interleaving. Rows come in created_at order, as an
	// append-only orders table's would, so the table is physically ordered
	// by time, which the created_at index and Postgres's range scans enjoy.
	batch := max(100_000, (o.rows+9)/10)
	secsPerRow := w.end.Sub(w.start).Seconds() / float64(o.rows)
	fmt.Printf("%s\n    -- in batches of %d with $1..$2 = the batch's ids, $3 = %d, $4 = %d (epoch of %s), $5 = %g (seconds per order)\n",
		benchkit.Indent(ordersSQL), batch, o.customers, w.start.Unix(), w.start.Format("2006-01-02"), secsPerRow)
	type job struct{ lo, hi int }
	jobs := make(chan job)
	results := make(chan error)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, w.serviceDSN())
			if err != nil {
				for range jobs {
					results <- err
				}
				return
			}
			defer c.Close(context.Background())
			for j := range jobs {
				err := exec(c, `SELECT setseed($1)`, float64(j.lo%1000003)/1000003)
				if err == nil {
					err = exec(c, ordersSQL, j.lo, j.hi, o.customers, w.start.Unix(), secsPerRow)
				}
				results <- err
			}
		}()
	}
	go func() {
		defer close(jobs)
		for lo := 1; lo <= o.rows; lo += batch {
			select {
			case jobs <- job{lo, min(lo+batch-1, o.rows)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	inserted, nBatches := 0, (o.rows+batch-1)/batch
	var firstErr error
	for err := range results {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		inserted++
		benchkit.Done("orders: %d of %d batches (%s)", inserted, nBatches, benchkit.Since(t0))
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, sql := range afterLoadSQL {
		t1 := time.Now()
		if err := exec(conn, sql); err != nil {
			return err
		}
		benchkit.Done("%s (%s)", sql, benchkit.Since(t1))
	}
	var size string
	if err := conn.QueryRow(ctx, `SELECT pg_size_pretty(pg_table_size('orders'))`).Scan(&size); err != nil {
		return err
	}
	benchkit.Done("%d orders (%s), %d customers (%s)", o.rows, size, o.customers, benchkit.Since(t0))
	return nil
}

const schemaSQL = `CREATE TABLE customers (
    id         integer PRIMARY KEY,
    name       text NOT NULL,
    country    text,           -- 1% NULL
    -- Not created_at: pgrollup's build SQL names the rollups' columns
    -- unqualified, so a column name both tables have is ambiguous there.
    signed_up  timestamptz NOT NULL
);
-- No foreign key: a few orders have no customer or an orphan customer_id,
-- which the rollups' LEFT JOIN must keep.
CREATE TABLE orders (
    id          bigint NOT NULL,
    customer_id integer,
    status      text,          -- 0.1% NULL
    amount      numeric(12,2), -- 0.1% NULL
    quantity    integer NOT NULL,
    created_at  timestamptz NOT NULL
);
GRANT SELECT ON customers, orders TO ` + benchUser

// $1 customers, $2 the start of the order history.
const customersSQL = `INSERT INTO customers (id, name, country, signed_up)
SELECT g, 'Customer ' || g,
       CASE WHEN g % 101 = 0 THEN NULL
            ELSE (ARRAY['US','US','US','US','DE','DE','GB','GB','FR','NL','SE','ES','IT','JP','BR','IN','CA','AU','MX','PL'])[1 + floor(random() * 20)::int]
       END,
       $2::timestamptz - interval '1 year' + random() * interval '1 year'
FROM generate_series(1, $1::int) AS g`

// $1..$2 order ids, $3 customers, $4 the start in epoch seconds, $5 seconds per order.
const ordersSQL = `INSERT INTO orders (id, customer_id, status, amount, quantity, created_at)
SELECT g,
       CASE WHEN g % 10000 = 9 THEN NULL
            WHEN g % 5000 = 17 THEN $3::int + 1000000   -- an orphan: no such customer
            ELSE 1 + floor(random() * $3::int)::int
       END,
       CASE WHEN g % 1000 = 3 THEN NULL
            ELSE (ARRAY['completed','completed','completed','completed','completed','completed',
                        'shipped','shipped','pending','cancelled','refunded'])[1 + floor(random() * 11)::int]
       END,
       CASE WHEN g % 1000 = 7 THEN NULL ELSE round((1 + random() * random() * 499)::numeric, 2) END,
       1 + floor(random() * random() * 10)::int,
       to_timestamp($4::float8 + ((g - 1) + random()) * $5::float8)
FROM generate_series($1::bigint, $2::bigint) AS g`

var afterLoadSQL = []string{
	// The index a real orders table has for date ranges; the hourly rollup's
	// partition builds and Postgres's own last-N-days plans use it.
	`CREATE INDEX orders_created_at ON orders (created_at)`,
	`VACUUM ANALYZE orders`,
	`VACUUM ANALYZE customers`,
}

// The materialized views pgbench's comparison reads: the same rollups as
// pgrollup's (same dimensions, grain, measures, join and time zone), each
// with the index a DBA would give it.
var viewSQL = []string{
	`SET timezone TO 'UTC'`,
	`CREATE MATERIALIZED VIEW mv_orders_daily_by_status AS
SELECT status, date_trunc('day', created_at) AS day,
       sum(amount) AS sum_amount, count(*) AS count, sum(quantity) AS sum_quantity,
       count(amount) AS count_amount, min(amount) AS min_amount, max(amount) AS max_amount
FROM orders GROUP BY 1, 2`,
	`CREATE INDEX ON mv_orders_daily_by_status (day)`,
	`CREATE MATERIALIZED VIEW mv_orders_monthly_by_country AS
SELECT customers.country, orders.status, date_trunc('month', orders.created_at) AS month,
       sum(orders.amount) AS sum_amount, count(*) AS count, sum(orders.quantity) AS sum_quantity,
       count(orders.amount) AS count_amount
FROM orders LEFT JOIN customers ON orders.customer_id = customers.id GROUP BY 1, 2, 3`,
	`CREATE INDEX ON mv_orders_monthly_by_country (month)`,
	`CREATE MATERIALIZED VIEW mv_orders_hourly_by_status AS
SELECT status, date_trunc('hour', created_at) AS hour,
       sum(amount) AS sum_amount, count(*) AS count, sum(quantity) AS sum_quantity
FROM orders GROUP BY 1, 2`,
	`CREATE INDEX ON mv_orders_hourly_by_status (hour)`,
	`VACUUM ANALYZE mv_orders_daily_by_status`,
	`VACUUM ANALYZE mv_orders_monthly_by_country`,
	`VACUUM ANALYZE mv_orders_hourly_by_status`,
	`GRANT SELECT ON mv_orders_daily_by_status, mv_orders_monthly_by_country, mv_orders_hourly_by_status TO ` + benchUser,
}

// createViews creates the materialized views for the pgbench comparison,
// before pgrollup starts so that neither competes with the other's builds.
func (w *warehouse) createViews(ctx context.Context) error {
	benchkit.Step("Creating materialized views holding the same rollups (for the pgbench comparison)")
	t0 := time.Now()
	conn, err := pgx.Connect(ctx, w.serviceDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range viewSQL {
		fmt.Printf("%s;\n", benchkit.Indent(sql))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", benchkit.FirstLine(sql), err)
		}
	}
	benchkit.Done("(%s)", benchkit.Since(t0))
	return nil
}
