package rewrite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// TestDuckDBMatchesPostgres writes the same rows to Postgres tables and, as
// rollups built in DuckDB, to Parquet; then every rewritten query must return
// what Postgres returns for the original, compared in Postgres's text form.
func TestDuckDBMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg := startPostgres(t, ctx)
	t.Run("shop", func(t *testing.T) { shopMatchesPostgres(t, ctx, pg) })
	t.Run("avg", func(t *testing.T) { avgMatchesPostgres(t, ctx, pg) })
}

// startPostgres starts a Postgres cluster and connects to it, both until
// the test ends.
func startPostgres(t *testing.T, ctx context.Context) *pgx.Conn {
	t.Helper()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		pgcluster.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	pg, err := pgx.Connect(ctx, cl.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close(context.Background()) })
	return pg
}

// shopMatchesPostgres compares the shapes of the decide tests on the shop
// tables.
func shopMatchesPostgres(t *testing.T, ctx context.Context, pg *pgx.Conn) {

	// Deterministic rows spread over Dec 2023 - Mar 2024, with NULLs.
	type row struct {
		id, qty, cust int
		status        *string
		amount        string
		price         float64
		at            time.Time
	}
	statuses := []string{"paid", "new", "cancelled", "refunded"}
	var rows []row
	for i := 0; i < 600; i++ {
		var st *string
		if i%17 != 0 {
			s := statuses[(i*7)%len(statuses)]
			st = &s
		}
		at := time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i*i*7919%(120*24*60)) * time.Minute)
		rows = append(rows, row{id: i, qty: i%5 + 1, cust: i % 37, status: st,
			amount: fmt.Sprintf("%d.%02d", (i*31)%500, (i*13)%100), price: float64((i*17)%1000) / 8, at: at})
	}
	// Rows in the hours DST moves: the repeated hours of the fall-backs of
	// Berlin (2023-10-29 00:00-02:00 UTC) and New York (2023-11-05
	// 05:00-07:00 UTC), each two hour buckets in Postgres, and the hours
	// around New York's spring-forward (2024-03-10 07:00 UTC).
	for j, s := range []string{"2023-10-29 00:10", "2023-10-29 00:40", "2023-10-29 01:05", "2023-10-29 01:20", "2023-10-29 01:55",
		"2023-11-05 05:15", "2023-11-05 06:45", "2023-11-05 06:50", "2024-03-10 06:30", "2024-03-10 07:30"} {
		at, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		st := statuses[j%len(statuses)]
		rows = append(rows, row{id: 600 + j, qty: j%3 + 1, cust: j % 4, status: &st, amount: fmt.Sprintf("%d.25", j), price: float64(j) / 4, at: at})
	}
	mustPG := func(q string, args ...any) {
		t.Helper()
		if _, err := pg.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustPG(`CREATE TABLE orders (id int, status text, amount numeric(12,2), price double precision, quantity integer, customer_id integer, store_id integer, created_at timestamptz, order_date date, local_ts timestamp, note text)`)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustDuck := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustDuck(`CREATE TABLE orders (id INTEGER, status VARCHAR, amount DECIMAL(12,2), price DOUBLE, quantity INTEGER, customer_id INTEGER, created_at TIMESTAMPTZ, order_date DATE, local_ts TIMESTAMP)`)
	for _, r := range rows {
		mustPG(`INSERT INTO orders VALUES ($1, $2, $3, $4, $5, $6, 1, $7, ($7 AT TIME ZONE 'UTC')::date, $7 AT TIME ZONE 'UTC', NULL)`, r.id, r.status, r.amount, r.price, r.qty, r.cust, r.at)
		st := "NULL"
		if r.status != nil {
			st = sqlquote.Literal(*r.status)
		}
		mustDuck(fmt.Sprintf(`INSERT INTO orders VALUES (%d, %s, %s, %s, %d, %d, TIMESTAMPTZ '%s', DATE '%s', TIMESTAMP '%s')`, r.id, st, r.amount,
			strconv.FormatFloat(r.price, 'g', -1, 64), r.qty, r.cust, r.at.Format("2006-01-02 15:04:05+00"), r.at.Format("2006-01-02"), r.at.Format("2006-01-02 15:04:05")))
	}

	// Rollups built as the builder does: the time bucket on the build zone's
	// clock, measures stored as their Layout parts.
	dir := t.TempDir()
	cat := diffCatalog(t)
	build := map[string]string{
		"daily": `SELECT status AS d0, quantity AS d1, timezone('UTC', date_trunc('day', timezone('UTC', created_at))) AS t,
			sum(amount) AS m0_sum, count(*) AS m1_count, min(amount) AS m2_min, max(amount) AS m3_max, sum(price) AS m4_sum, count(price) AS m4_count,
			sum(quantity) AS m5_sum, count(DISTINCT customer_id) AS m6_count_distinct FROM orders GROUP BY ALL`,
		"hourly":      `SELECT status AS d0, timezone('UTC', date_trunc('hour', timezone('UTC', created_at))) AS t, sum(amount) AS m0_sum, count(*) AS m1_count FROM orders GROUP BY ALL`,
		"by_date":     `SELECT status AS d0, order_date AS t, count(*) AS m0_count, sum(amount) AS m1_sum FROM orders GROUP BY ALL`,
		"local_month": `SELECT status AS d0, date_trunc('month', local_ts) AS t, count(*) AS m0_count FROM orders GROUP BY ALL`,
	}
	for _, r := range cat.Rollups {
		f := filepath.Join(dir, r.Def.Name+".parquet")
		mustDuck("COPY (" + build[r.Def.Name] + ") TO " + sqlquote.Literal(f) + " (FORMAT parquet)")
		r.Partitions = []Partition{{Files: []string{f}}}
	}

	queries := []struct {
		zone, sql string
		ordered   bool
	}{
		{"UTC", "SELECT status, count(*), sum(amount), min(amount), max(amount) FROM orders GROUP BY status", false},
		{"UTC", "SELECT date_trunc('month', created_at), count(*), sum(quantity) FROM orders GROUP BY 1 ORDER BY 1", true},
		{"UTC", "SELECT created_at::date, sum(amount) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01' GROUP BY 1", false},
		{"UTC", "SELECT EXTRACT(YEAR FROM created_at), date_part('month', created_at), count(*) FROM orders GROUP BY 1, 2", false},
		{"UTC", "SELECT date_trunc('week', created_at), count(*) FROM orders GROUP BY 1", false},
		{"UTC", "SELECT avg(price), count(price), sum(price) FROM orders WHERE status = 'paid'", false},
		{"UTC", "SELECT count(*), sum(amount) FROM orders WHERE status = 'nope'", false},
		{"UTC", "SELECT count(distinct status), count(*) FILTER (WHERE status IN ('paid', 'new')) FROM orders", false},
		{"UTC", "SELECT status, quantity, created_at::date, count(distinct customer_id) FROM orders GROUP BY 1, 2, 3", false},
		{"UTC", `SELECT "source"."status" AS "status", "source"."count" AS "count" FROM (SELECT "public"."orders"."status" AS "status", COUNT(*) AS "count" FROM "public"."orders" GROUP BY "public"."orders"."status") AS "source" ORDER BY "source"."count" DESC, "source"."status" ASC LIMIT 1048575`, true},
		{"UTC", "SELECT status, count(*) FROM orders GROUP BY 1 HAVING count(*) > 100 ORDER BY 2 DESC NULLS LAST, 1", true},
		{"Europe/Berlin", "SELECT date_trunc('day', created_at), sum(amount) FROM orders GROUP BY 1", false},
		{"America/New_York", "SELECT date_trunc('month', created_at), count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-03-01' GROUP BY 1", false},
		{"America/New_York", "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY 1", false},
		{"UTC", "SELECT order_date, count(*) FROM orders WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' GROUP BY 1", false},
		{"UTC", "SELECT date_trunc('quarter', local_ts), extract(year from local_ts), count(*) FROM orders GROUP BY 1, 2", false},
		{"UTC", "SELECT CASE WHEN status = 'paid' THEN 'yes' ELSE 'no' END AS p, COALESCE(SUM(quantity), 0) FROM orders GROUP BY 1", false},
		{"UTC", "SELECT DISTINCT status FROM orders", false},
		{"UTC", "SELECT sum(price) / count(*)::float8 FROM orders", false},
		{"UTC", `SELECT status, count(*) FROM orders WHERE status LIKE 'p%' OR status LIKE '%e_' OR status NOT LIKE '%\%%' GROUP BY 1`, false},
		{"UTC", `SELECT status LIKE '_a%', status NOT LIKE 'c%d', count(*) FROM orders GROUP BY 1, 2`, false},
		{"UTC", `SELECT DATE_TRUNC('day', created_at) AS __timestamp, status AS status, SUM(amount) AS "SUM(amount)" FROM (SELECT * FROM public.orders WHERE status <> 'cancelled') AS virtual_table WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') GROUP BY status, DATE_TRUNC('day', created_at) ORDER BY "SUM(amount)" DESC, 1, 2 LIMIT 10000`, true},
		{"UTC", `WITH t AS (SELECT status, quantity FROM orders WHERE quantity > 2) SELECT x.status, sum(x.quantity), count(*) FROM t AS x GROUP BY 1`, false},
		{"UTC", `SELECT TO_CHAR(DATE_TRUNC('month', created_at), 'YYYY-MM'), count(*) FROM orders GROUP BY DATE_TRUNC('month', created_at)`, false},
		{"America/New_York", `SELECT TO_CHAR(DATE_TRUNC('month', created_at), 'YYYY-MM'), count(*) FROM orders GROUP BY DATE_TRUNC('month', created_at)`, false},
		{"Europe/Berlin", `SELECT to_char(date_trunc('hour', created_at), 'YYYY-MM-DD HH24:MI:SS Q'), sum(amount) FROM orders GROUP BY 1`, false},
		{"UTC", `SELECT to_char(order_date, 'DD/MM/YYYY'), count(*) FROM orders GROUP BY 1`, false},
		{"UTC", `SELECT to_char(date_trunc('quarter', local_ts), 'YYYY Q'), count(*) FROM orders GROUP BY 1`, false},
		{"UTC", `SELECT floor(extract(epoch from created_at)/3600)*3600 AS "time", count(*) FROM orders GROUP BY 1 ORDER BY 1`, true},
		{"Europe/Berlin", `SELECT floor(extract(epoch from created_at)/21600)*21600 AS "time", sum(amount) FROM orders GROUP BY 1 ORDER BY 1`, true},
		{"UTC", `SELECT floor(extract(epoch from created_at)/86400)*86400 AS "time", sum(quantity) FROM orders GROUP BY 1 ORDER BY 1`, true},
		{"UTC", `SELECT floor(date_part('epoch', created_at)/604800)*604800 AS "time", count(*) FROM orders GROUP BY 1 ORDER BY 1`, true},
		{"UTC", `SELECT floor(extract(epoch from order_date)/86400)*86400, count(*) FROM orders GROUP BY 1`, false},
		{"UTC", `WITH agg AS (SELECT status, count(*) AS n FROM orders GROUP BY status) SELECT status, n FROM agg ORDER BY n DESC, status LIMIT 3`, true},
		{"Europe/Berlin", "SELECT date_trunc('hour', created_at), count(*) FROM orders WHERE created_at >= '2023-10-29 00:00:00+00' AND created_at < '2023-10-29 02:00:00+00' GROUP BY 1", false},
		{"America/New_York", "SELECT date_trunc('hour', created_at), count(*), sum(amount) FROM orders WHERE created_at >= '2023-11-05 04:00:00+00' AND created_at < '2023-11-05 08:00:00+00' GROUP BY 1", false},
		{"America/New_York", "SELECT date_trunc('hour', created_at), count(*) FROM orders WHERE created_at >= '2024-03-10 05:00:00+00' AND created_at < '2024-03-10 09:00:00+00' GROUP BY 1", false},
		{"UTC", "SELECT date_trunc('hour', created_at, 'Europe/Berlin'), count(*) FROM orders WHERE created_at < '2023-11-01' GROUP BY 1", false},
		{"Europe/Berlin", "SELECT date_trunc('day', created_at), date_trunc('hour', created_at), sum(amount) FROM orders WHERE created_at < '2023-11-01' GROUP BY 1, 2 ORDER BY 2", true},
		{"America/New_York", "SELECT date_trunc('day', created_at), count(*) FROM orders WHERE created_at < '2023-11-10' GROUP BY 1", false},
		{"UTC", "SELECT status, quantity, date_trunc('day', created_at), EXTRACT(DOW FROM created_at), count(distinct customer_id) FROM orders GROUP BY 1, 2, 3, 4", false},
		{"UTC", "SELECT CAST(status AS TEXT), order_date::date, count(*) FROM orders GROUP BY 1, 2", false},
		{"UTC", "SELECT CAST(EXTRACT(YEAR FROM created_at) AS INTEGER), CAST(extract(month from created_at) AS integer), count(*) FROM orders GROUP BY 1, 2", false},
		{"UTC", "SELECT status, sum(amount) / count(*), sum(amount) FILTER (WHERE quantity > 4) / count(price) FILTER (WHERE quantity > 4) FROM orders GROUP BY 1", false},
		{"UTC", "SELECT sum(amount) / count(*) FROM orders WHERE status = 'nope'", false},
		{"UTC", "SELECT status, COALESCE(SUM(amount), 0) AS total, COALESCE(sum(amount) FILTER (WHERE status = 'paid'), 0) FROM orders GROUP BY 1 ORDER BY 2 DESC NULLS LAST", true},
		{"UTC", "SELECT COALESCE(SUM(amount), 0), COALESCE(sum(amount), 1.5) FROM orders WHERE status = 'nope'", false},
		{"UTC", `SELECT (CAST(DATE_TRUNC('week', ("public"."orders"."created_at" + INTERVAL '1 day')) AS timestamp) + INTERVAL '-1 day') AS "created_at", COUNT(*) AS "count" FROM "public"."orders" GROUP BY 1`, false},
		{"Europe/Berlin", "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day', sum(amount) FROM orders GROUP BY 1", false},
		{"America/New_York", "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day', extract(dow from created_at - interval '1 day'), count(*) FROM orders GROUP BY 1, 2", false},
		{"America/New_York", "SELECT CAST(DATE_TRUNC('WEEK', CAST(order_date AS DATE) + 1) AS DATE) - 1, count(*) FROM orders GROUP BY 1", false},
		{"Europe/Berlin", "SELECT status, count(*) FROM orders WHERE local_ts >= '2024-01-01T00:00:00.000Z' AND local_ts < '2024-02-01T00:00:00+05:00' GROUP BY 1", false},
		{"America/New_York", "SELECT count(*) FROM orders WHERE order_date >= '2024-01-01T00:00:00Z' AND order_date < '2024-02-01T00:00:00-08:00'", false},
		{"UTC", "SELECT status, sum(amount) / count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC NULLS LAST", true},
		{"UTC", `SELECT "source"."q", "source"."status" FROM (SELECT status, sum(amount) / count(price) AS "q" FROM orders GROUP BY 1) AS "source" ORDER BY "source"."q", "source"."status"`, true},
		{"<+02>-02", "SELECT date_trunc('day', created_at), extract(hour from created_at), sum(amount) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01' GROUP BY 1, 2", false},
		{"UTC+5", "SELECT date_trunc('month', created_at), count(*) FROM orders WHERE created_at >= '2024-01-01' GROUP BY 1", false},
		{"+00:00", "SELECT date_trunc('week', created_at), created_at::date, count(*) FROM orders GROUP BY 1, 2", false},
		{"-3", "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", false},
		{"America/New_York", "SELECT count(*) FROM orders WHERE order_date >= date_trunc('month', TIMESTAMPTZ '2024-01-15 00:00:00+00') AND order_date <= '2024-02-10' AND order_date > DATE '2023-12-31'", false},
		{"America/New_York", "SELECT status, count(*) FROM orders WHERE created_at >= TO_DATE('2023-12-01','YYYY-MM-DD') AND created_at < TO_DATE('2024-02-01','YYYY-MM-DD') GROUP BY status", false},
		{"UTC", `SELECT DATE_TRUNC('week', base."created_at" + INTERVAL '1' DAY) - INTERVAL '1' DAY as "week", COALESCE(SUM(base."amount"),0) as "total" FROM "public"."orders" as base WHERE base."created_at" >= TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL '3' DAY AND base."created_at" < DATE '2024-02-01' + make_interval(days => 2) GROUP BY 1 ORDER BY 1 asc NULLS LAST`, true},
	}
	for _, q := range queries {
		t.Run(q.sql, func(t *testing.T) {
			d := decide(t, cat, Session{TimeZone: q.zone}, q.sql)
			if d.Outcome != OutcomeRollup {
				t.Fatalf("expected a rollup route: %v", d.Reason)
			}
			mustPG("SET TimeZone = " + sqlquote.Literal(q.zone))
			want := pgRows(t, ctx, pg, q.sql)
			got := duckRows(t, db, d, q.zone)
			if !q.ordered {
				sort.Strings(want)
				sort.Strings(got)
			}
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Fatalf("results differ\nSQL: %s\npostgres:\n%s\nduckdb:\n%s", d.SQL, strings.Join(want, "\n"), strings.Join(got, "\n"))
			}
			if len(want) == 0 {
				t.Fatalf("test query returns no rows: not a useful comparison")
			}
		})
	}
}

func diffCatalog(t *testing.T) *Catalog {
	cfg := testConfig()
	cfg.Tables = nil
	for i := range cfg.Rollups {
		cfg.Rollups[i].Filters = nil
	}
	cfg.Rollups = cfg.Rollups[:0:0]
	base := testConfig().Rollups
	d := base[0]
	d.Name, d.Dimensions = "daily", []string{"status", "quantity"}
	d.Measures = []string{"sum(amount)", "count(*)", "min(amount)", "max(amount)", "avg(price)", "sum(quantity)", "count(distinct customer_id)"}
	h := base[1]
	h.Name = "hourly"
	b := base[4]
	b.Name = "by_date"
	l := base[5]
	l.Name = "local_month"
	cfg.Rollups = append(cfg.Rollups, d, h, b, l)
	cat, err := NewOfflineCatalog(cfg, testTypes)
	if err != nil {
		t.Fatal(err)
	}
	cat.PartialColumns = false
	cat.TextSortsBytewise = true // the test cluster's database uses the C collation or ASCII data
	for i, r := range cat.Rollups {
		r.Rows = int64(i)
	}
	return cat
}

func pgRows(t *testing.T, ctx context.Context, pg *pgx.Conn, q string) []string {
	t.Helper()
	rs, err := pg.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var cells []string
		for _, v := range rs.RawValues() {
			if v == nil {
				cells = append(cells, "NULL")
			} else {
				cells = append(cells, string(v))
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return out
}

// duckRows runs the rewritten SQL and renders values in Postgres's text
// output form for the described type (ISO DateStyle, the session zone).
func duckRows(t *testing.T, db *sql.DB, d Decision, zone string) []string {
	t.Helper()
	_, loc, err := canonicalZone(zone)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := db.Query(d.SQL)
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, d.SQL)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals := make([]any, len(d.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var cells []string
		for i, v := range vals {
			cells = append(cells, pgText(t, v, d.Columns[i].Type, loc))
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	return out
}

func pgText(t *testing.T, v any, typ Type, loc *time.Location) string {
	if v == nil {
		return "NULL"
	}
	switch x := v.(type) {
	case duckdb.Decimal:
		r := new(big.Rat).SetFrac(x.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Scale)), nil))
		return r.FloatString(int(x.Scale))
	case *big.Int:
		return x.String()
	case int64, int32, int16, int8:
		return fmt.Sprint(x)
	case float64:
		// float8out: the shortest exact digits, in exponent form only below
		// 1e-4 or from 1e15.
		if a := math.Abs(x); a != 0 && (a < 1e-4 || a >= 1e15) {
			return strconv.FormatFloat(x, 'e', -1, 64)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "t"
		}
		return "f"
	case string:
		return x
	case time.Time:
		switch typ.OID {
		case pgtype.TimestamptzOID:
			s := x.In(loc).Format("2006-01-02 15:04:05-07")
			return strings.TrimSuffix(s, ":00")
		case pgtype.TimestampOID:
			return x.UTC().Format("2006-01-02 15:04:05")
		case pgtype.DateOID:
			return x.UTC().Format("2006-01-02")
		}
	}
	t.Fatalf("no text form for %T as %d", v, typ.OID)
	return ""
}
