package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"
)

// importDB is the import round trip's own database in the shared cluster.
const importDB = "e2e_import"

// importFixtureSQL is the shop the importer's test models describe
// (importer/testdata): orders over 400 days up to today, customers in
// regions, NULL statuses, countries and customers among them.
const importFixtureSQL = `
CREATE TABLE regions (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id int PRIMARY KEY, country text, region_id int REFERENCES regions);
CREATE TABLE orders (
	id int PRIMARY KEY,
	customer_id int,
	status text,
	amount numeric(12,2),
	created_at timestamptz NOT NULL,
	updated_at timestamptz
);
INSERT INTO regions VALUES (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west');
INSERT INTO customers
SELECT x, CASE WHEN x % 17 = 0 THEN NULL ELSE (ARRAY['DE','FR','US','JP','BR'])[1 + x % 5] END, 1 + x % 4
FROM generate_series(1, 200) x;
INSERT INTO orders
SELECT x,
	CASE WHEN x % 97 = 0 THEN NULL ELSE 1 + x % 200 END,
	CASE WHEN x % 31 = 0 THEN NULL ELSE (ARRAY['completed','pending','cancelled','completed'])[1 + x % 4] END,
	round((x * 7.31) % 500, 2),
	date_trunc('day', now()) - (x % 400) * interval '1 day' + (x % 24) * interval '1 hour',
	date_trunc('day', now()) - (x % 400) * interval '1 day' + interval '1 day'
FROM generate_series(1, 20000) x;
ANALYZE regions, customers, orders;
`

// importCase is one statement as Cube or Lightdash generates it for a query
// one of the imported pre-aggregations serves there.
type importCase struct {
	name string
	sql  string
	// rollups are those that may answer; none: the statement passes
	// through (a known gap, named in why), and must still be equal.
	rollups []string
	why     string
}

// importCases are written as the tools write SQL for Postgres. Cube
// (PostgresQuery in @cubejs-backend/schema-compiler): members aliased
// cube__member, time dimensions date_trunc('unit', (col::timestamptz AT
// TIME ZONE 'UTC')), every join a LEFT JOIN with the cube's name as alias,
// filtered measures as aggregates of CASE WHEN filter THEN sql END, segments
// in WHERE, GROUP BY ordinals, LIMIT 10000, date ranges as col >= from AND
// col <= to with to at .999 of the last day. Lightdash (its Postgres warehouse
// client and MetricQueryBuilder): the model aliased "orders", fields aliased
// model_field, DATE_TRUNC('DAY', col), metric filters as CASE WHEN ... ELSE
// NULL END, "is" filters as IN lists, "is not" as NOT IN ... OR IS NULL,
// date filters with the bound computed by Lightdash as a literal, LIMIT 500.
func importCases(now time.Time) []importCase {
	day := func(days int) string {
		return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days).Format("2006-01-02")
	}
	return []importCase{
		{
			name: "cube by_status_country",
			sql: `SELECT
  "orders".status "orders__status", "customers".country "customers__country", date_trunc('day', ("orders".created_at::timestamptz AT TIME ZONE 'UTC')) "orders__created_at_day", count(*) "orders__count", sum("orders".amount) "orders__total_amount", avg("orders".amount) "orders__average_amount", sum("orders".amount) / NULLIF(count(*), 0) "orders__amount_per_order"
FROM
  public.orders AS "orders"
LEFT JOIN public.customers AS "customers" ON "orders".customer_id = "customers".id  GROUP BY 1, 2, 3 ORDER BY 3 ASC LIMIT 10000`,
			rollups: []string{"orders_by_status_country"},
		},
		{
			name: "cube by_status_country, by month",
			sql: `SELECT
  "orders".status "orders__status", date_trunc('month', ("orders".created_at::timestamptz AT TIME ZONE 'UTC')) "orders__created_at_month", count(*) "orders__count", sum("orders".amount) "orders__total_amount"
FROM
  public.orders AS "orders"  GROUP BY 1, 2 ORDER BY 2 ASC LIMIT 10000`,
			rollups: []string{"orders_by_status_country"},
		},
		{
			name: "cube monthly",
			sql: `SELECT
  date_trunc('month', ("orders".created_at::timestamptz AT TIME ZONE 'UTC')) "orders__created_at_month", count(distinct "orders".customer_id) "orders__unique_customers", count(CASE WHEN ("orders".status = 'completed') THEN 1 END) "orders__completed_count", max("orders".amount) "orders__largest_order", min("orders".amount) "orders__smallest_order"
FROM
  public.orders AS "orders"  GROUP BY 1 ORDER BY 1 ASC LIMIT 10000`,
			rollups: []string{"orders_monthly"},
		},
		{
			name: "cube completed_by_region",
			sql: `SELECT
  "regions".name "regions__name", date_trunc('week', ("orders".created_at::timestamptz AT TIME ZONE 'UTC')) "orders__created_at_week", count(*) "orders__count", sum("orders".amount) "orders__total_amount"
FROM
  public.orders AS "orders"
LEFT JOIN public.customers AS "customers" ON "orders".customer_id = "customers".id
LEFT JOIN public.regions AS "regions" ON "customers".region_id = "regions".id  WHERE ("orders".status = 'completed') GROUP BY 1, 2 ORDER BY 2 ASC LIMIT 10000`,
			rollups: []string{"orders_completed_by_region"},
		},
		{
			name: "cube recent_daily, date range",
			sql: fmt.Sprintf(`SELECT
  "orders".status "orders__status", date_trunc('day', ("orders".created_at::timestamptz AT TIME ZONE 'UTC')) "orders__created_at_day", count(*) "orders__count", sum("orders".amount) "orders__total_amount"
FROM
  public.orders AS "orders"  WHERE ("orders".created_at >= '%sT00:00:00.000'::timestamptz AND "orders".created_at <= '%sT23:59:59.999'::timestamptz) GROUP BY 1, 2 ORDER BY 2 ASC LIMIT 10000`, day(30), day(1)),
			// Cube ends a date range at .999 of its last day, which is not
			// a bucket edge: the whole days come from the rollup and the
			// last day's rows up to .999 from the warehouse (exact edges).
			rollups: []string{"orders_recent_daily"},
		},
		{
			name: "lightdash daily_by_status, in the past 12 weeks",
			sql: fmt.Sprintf(`SELECT
  "orders".status AS "orders_status",
  DATE_TRUNC('DAY', "orders".created_at) AS "orders_created_at_day",
  SUM("orders".amount) AS "orders_total_order_amount",
  AVG("orders".amount) AS "orders_average_order_size",
  COUNT("orders".id) AS "orders_order_count",
  (SUM("orders".amount) / NULLIF(COUNT("orders".id), 0)) AS "orders_amount_per_order"
FROM "public"."orders" AS "orders"
WHERE ((
  ("orders".created_at) >= ('%s 00:00:00')
))
GROUP BY 1,2
ORDER BY "orders_created_at_day" DESC
LIMIT 500`, day(84)),
			rollups: []string{"orders_daily_by_status"},
		},
		{
			name: "lightdash monthly_customers, status is not cancelled",
			sql: `SELECT
  "orders".customer_id AS "orders_customer_id",
  DATE_TRUNC('MONTH', "orders".created_at) AS "orders_created_at_month",
  COUNT(DISTINCT "orders".customer_id) AS "orders_unique_customers",
  COUNT(CASE WHEN (("orders".status) IN ('completed')) THEN ("orders".amount) ELSE NULL END) AS "orders_completed_orders",
  MAX("orders".amount) AS "orders_largest_order"
FROM "public"."orders" AS "orders"
WHERE ((
  (("orders".status) NOT IN ('cancelled') OR ("orders".status) IS NULL)
))
GROUP BY 1,2
ORDER BY "orders_created_at_month" DESC
LIMIT 500`,
			rollups: []string{"orders_monthly_customers"},
		},
	}
}

// TestImportRoundTrip imports the importer's Cube and Lightdash test models
// with the pgrollup binary, starts pgrollup with the imported tables and
// rollups over a shop whose tables the models describe, and checks that the
// statements those tools generate for their pre-aggregations are answered
// from the imported rollups, equal to Postgres's answers.
func TestImportRoundTrip(t *testing.T) {
	ctx := testCtx(t, 6*time.Minute)
	createSuiteDB(t, ctx, importDB, importFixtureSQL)

	td := filepath.Join("..", "importer", "testdata")
	var tables, rollups []any
	for _, args := range [][]string{
		{"cube", filepath.Join(td, "cube", "orders.yml"), filepath.Join(td, "cube", "customers.yml")},
		{"lightdash", "--schema", "public", filepath.Join(td, "lightdash", "schema.yml")},
	} {
		doc := importWith(t, ctx, args...)
		var parts struct {
			Tables  []any `yaml:"tables"`
			Rollups []any `yaml:"rollups"`
		}
		if err := yaml.Unmarshal(doc, &parts); err != nil {
			t.Fatalf("pgrollup import %s printed no YAML: %v\n%s", args[0], err, doc)
		}
		tables = append(tables, parts.Tables...)
		rollups = append(rollups, parts.Rollups...)
	}
	p, _ := startTestProxy(t, ctx, "import", filepath.Join(env.tmp, "proxy-import"), env.pg.DSN(importDB), map[string]any{
		"worker":  map[string]any{"concurrency": 2, "duckdb_memory_limit": "512MB"},
		"tables":  tables,
		"rollups": rollups,
	}, "info")
	states, err := waitRollupsActive(ctx, p, len(rollups))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollups: %s", states)

	open := func(tg target) *pgconn.PgConn {
		conn := connect(t, ctx, tg.DSN(userScram, importDB))
		if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
			t.Fatal(err)
		}
		return conn.PgConn()
	}
	direct := open(target{name: "direct", host: env.pg.Host, port: env.pg.Port})
	via := open(target{name: "proxy", host: p.host, port: p.port})
	modes := []diffMode{diffModeSimpleText, diffModeExtBinary, diffModeExtText}
	metrics, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range importCases(time.Now()) {
		t.Run(c.name, func(t *testing.T) {
			st := &diffStmt{Kind: "import", Name: c.name, SQL: c.sql}
			explained := measuresRender(measuresExplain(t, ctx, via, c.sql))
			compareModes(t, ctx, direct, via, st, modes)
			after, err := diffScrape(p)
			if err != nil {
				t.Fatal(err)
			}
			hits := after.deltaByLabel(metrics, "pgrollup_rollup_hits_total", "rollup")
			metrics = after
			served := 0.0
			for _, r := range c.rollups {
				served += hits[r]
			}
			switch {
			case len(c.rollups) == 0 && len(hits) > 0:
				t.Errorf("answered from %v, but it should pass through (%s):\n%s", hits, c.why, explained)
			case len(c.rollups) == 0:
				t.Logf("passes through, as expected (%s):\n%s", c.why, explained)
			case len(c.rollups) > 0 && served != float64(len(modes)):
				t.Errorf("answered from rollups %v, want one of %v for each of %d executions:\n%s", hits, c.rollups, len(modes), explained)
			}
		})
	}
}

// compareModes runs st on Postgres directly and through pgrollup in each
// of modes, and reports every difference as a wrong answer.
func compareModes(t *testing.T, ctx context.Context, direct, via *pgconn.PgConn, st *diffStmt, modes []diffMode) {
	t.Helper()
	for _, m := range modes {
		d, pr := diffExec(ctx, direct, st, m), diffExec(ctx, via, st, m)
		if d.err != nil {
			t.Fatalf("%s: Postgres fails: %v", m.name, d.err)
		}
		if diffs, _ := diffCompare(st, d, pr); len(diffs) > 0 {
			t.Errorf("%s: WRONG ANSWER (direct vs proxy):\n%s", m.name, strings.Join(diffs, "\n"))
		}
	}
}

// importWith runs pgrollup import with args and returns what it printed; it
// must exit 0, everything translated.
func importWith(t *testing.T, ctx context.Context, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, env.bin, append([]string{"import"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pgrollup import %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}
