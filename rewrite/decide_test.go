package rewrite

import (
	"strings"
	"testing"
	"time"
)

type decideCase struct {
	name   string
	sql    string
	rollup string     // expected rollup; "" means passthrough
	reason ReasonCode // expected passthrough reason
	zone   string
	params []Param
	want   []string // substrings the DuckDB SQL must contain
}

func runCases(t *testing.T, cases []decideCase) {
	t.Helper()
	cat := testCatalog(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			zone := c.zone
			if zone == "" {
				zone = "UTC"
			}
			d := decide(t, cat, Session{TimeZone: zone, Params: c.params}, c.sql)
			if c.rollup == "" {
				if d.Route != RoutePassthrough {
					t.Fatalf("want passthrough (%s), got rollup %s: %s", c.reason, d.Rollup, d.SQL)
				}
				if d.Reason.Code != c.reason {
					t.Fatalf("want reason %s, got %v (candidates %+v)", c.reason, d.Reason, d.Candidates)
				}
				if d.Reason.Message == "" {
					t.Fatalf("reason %s has no message", d.Reason.Code)
				}
				return
			}
			if d.Route != RouteRollup || d.Rollup != c.rollup {
				t.Fatalf("want rollup %s, got %s %s %v (candidates %+v)", c.rollup, d.Route, d.Rollup, d.Reason, d.Candidates)
			}
			for _, w := range c.want {
				if !strings.Contains(d.SQL, w) {
					t.Errorf("SQL lacks %q:\n%s", w, d.SQL)
				}
			}
		})
	}
}

func TestRule1Shape(t *testing.T) {
	runCases(t, []decideCase{
		{name: "group by", sql: "SELECT status, count(*) FROM orders GROUP BY status", rollup: "orders_daily"},
		{name: "empty", sql: "-- just a comment", reason: ReasonEmpty},
		{name: "multiple", sql: "SELECT count(*) FROM orders; SELECT 1", reason: ReasonMultiple},
		{name: "insert", sql: "INSERT INTO orders(id) VALUES (1)", reason: ReasonNotSelect},
		{name: "declare cursor", sql: "DECLARE c CURSOR FOR SELECT status, count(*) FROM orders GROUP BY status", reason: ReasonCursor},
		{name: "fetch", sql: "FETCH 2048 IN c", reason: ReasonCursor},
		{name: "raw rows", sql: "SELECT status FROM orders", reason: ReasonNoAggregate},
		{name: "select star", sql: "SELECT * FROM orders", reason: ReasonNoAggregate},
		{name: "distinct dims", sql: "SELECT DISTINCT status FROM orders", rollup: "orders_daily"},
		{name: "distinct on", sql: "SELECT DISTINCT ON (status) status FROM orders", reason: ReasonShape},
		{name: "group by no aggregate", sql: "SELECT status FROM orders GROUP BY status", rollup: "orders_daily"},
		{name: "window", sql: "SELECT status, count(*) OVER () FROM orders", reason: ReasonWindow},
		{name: "volatile", sql: "SELECT status, count(*) FROM orders WHERE random() > 0.5 GROUP BY status", reason: ReasonVolatile},
		{name: "subquery in where", sql: "SELECT count(*) FROM orders WHERE status IN (SELECT status FROM orders)", reason: ReasonSubquery},
		{name: "exists", sql: "SELECT count(*) FROM orders WHERE EXISTS (SELECT 1)", reason: ReasonSubquery},
		{name: "for update", sql: "SELECT count(*) FROM orders FOR UPDATE", reason: ReasonLocking},
		{name: "cte", sql: "WITH x AS (SELECT 1) SELECT count(*) FROM orders", reason: ReasonCTE},
		{name: "union", sql: "SELECT count(*) FROM orders UNION SELECT count(*) FROM orders", reason: ReasonSetOp},
		{name: "no from", sql: "SELECT count(*)", reason: ReasonNoTable},
		{name: "unknown table", sql: "SELECT count(*) FROM products", reason: ReasonNoRollup},
		{name: "table without catalog", sql: "SELECT count(*) FROM nowhere", reason: ReasonNoRollup},
		{name: "schema qualified", sql: `SELECT "public"."orders"."status", count(*) FROM "public"."orders" GROUP BY "public"."orders"."status"`, rollup: "orders_daily"},
		{name: "other schema", sql: `SELECT count(*) FROM other.orders`, reason: ReasonNoRollup},
		{name: "alias without as", sql: `SELECT "orders"."status", count(*) FROM "public"."orders" "orders" GROUP BY 1`, rollup: "orders_daily"},
		{name: "relname hidden by alias", sql: `SELECT orders.status, count(*) FROM orders o GROUP BY 1`, reason: ReasonUnknownColumn},
		{name: "declared left join", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY c.country", rollup: "orders_daily"},
		{name: "declared join reversed condition", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1", rollup: "orders_daily"},
		{name: "left join declared but inner written", sql: "SELECT c.country, count(*) FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "join other condition", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON o.store_id = c.id GROUP BY 1", reason: ReasonJoin},
		{name: "undeclared join", sql: "SELECT count(*) FROM orders o JOIN products p ON o.id = p.id", reason: ReasonJoin},
		{name: "inner join rollup", sql: "SELECT s.region, count(*) FROM orders o JOIN stores s ON o.store_id = s.id GROUP BY 1", rollup: "orders_by_store"},
		{name: "implicit inner join", sql: "SELECT s.region, count(*) FROM orders o, stores s WHERE o.store_id = s.id GROUP BY 1", rollup: "orders_by_store"},
		{name: "implicit join without condition", sql: "SELECT s.region, count(*) FROM orders o, stores s GROUP BY 1", reason: ReasonJoin},
		{name: "inner join missing", sql: "SELECT count(*) FROM orders", rollup: "orders_daily"},
		{name: "right join", sql: "SELECT count(*) FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id", reason: ReasonJoin},
		{name: "using join", sql: "SELECT count(*) FROM orders JOIN customers USING (id)", reason: ReasonJoin},
		{name: "metabase wrapper", sql: `SELECT "source"."status" AS "status", "source"."count" AS "count" FROM (SELECT "public"."orders"."status" AS "status", COUNT(*) AS "count" FROM "public"."orders" GROUP BY "public"."orders"."status") AS "source" ORDER BY "source"."count" DESC, "source"."status" ASC LIMIT 1048575`, rollup: "orders_daily", want: []string{"LIMIT 1048575", `"w0"."c1" DESC NULLS FIRST`}},
		{name: "evidence wrap", sql: `SELECT * FROM (SELECT status, sum(amount) FROM orders GROUP BY status) AS __ev_limit_wrap LIMIT 1000`, rollup: "orders_daily"},
		{name: "power bi nested", sql: `SELECT "_"."status", "_"."a0" FROM (SELECT "rows"."status", "rows"."a0" FROM (SELECT status, count(*) AS a0 FROM orders GROUP BY status) "rows") "_" LIMIT 1000001`, rollup: "orders_daily"},
		{name: "wrapper with where", sql: `SELECT * FROM (SELECT status, count(*) c FROM orders GROUP BY status) s WHERE c > 1`, reason: ReasonShape},
		{name: "wrapper unknown column", sql: `SELECT s.nope FROM (SELECT status, count(*) c FROM orders GROUP BY status) s`, reason: ReasonUnknownColumn},
		{name: "superset virtual table", sql: `SELECT status, count(*) FROM (SELECT * FROM orders) AS virtual_table GROUP BY status`, reason: ReasonShape},
		{name: "fetch next", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 FETCH NEXT 500 ROWS ONLY", rollup: "orders_daily", want: []string{"LIMIT 500"}},
		{name: "with ties", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 FETCH FIRST 5 ROWS WITH TIES", reason: ReasonShape},
		{name: "grouping sets", sql: "SELECT status, count(*) FROM orders GROUP BY ROLLUP (status)", reason: ReasonShape},
		{name: "not grouped column", sql: "SELECT status, count(*) FROM orders", reason: ReasonShape},
		{name: "select into", sql: "SELECT count(*) INTO t FROM orders", reason: ReasonNotSelect},
		{name: "from only", sql: "SELECT count(*) FROM ONLY orders", reason: ReasonShape},
	})
}

func TestRule2Columns(t *testing.T) {
	runCases(t, []decideCase{
		{name: "dimension", sql: "SELECT status, count(*) FROM orders GROUP BY status", rollup: "orders_daily"},
		{name: "not a dimension", sql: "SELECT customer_id, count(*) FROM orders GROUP BY customer_id", reason: ReasonNotDimension},
		{name: "unknown column", sql: "SELECT nope, count(*) FROM orders GROUP BY nope", reason: ReasonUnknownColumn},
		{name: "ambiguous column", sql: "SELECT status, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY status", reason: ReasonAmbiguousColumn},
		{name: "qualified disambiguates", sql: "SELECT o.status, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY o.status", rollup: "orders_daily"},
		{name: "joined dimension unqualified", sql: "SELECT country, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY country", rollup: "orders_daily"},
		{name: "joined non dimension", sql: "SELECT c.name, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1", reason: ReasonNotDimension},
		{name: "filter on non dimension", sql: "SELECT status, count(*) FROM orders WHERE note = 'x' GROUP BY status", reason: ReasonNotDimension},
		{name: "group by alias", sql: "SELECT status AS s, count(*) FROM orders GROUP BY s", rollup: "orders_daily"},
		{name: "group by ordinal", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "group by bad ordinal", sql: "SELECT status, count(*) FROM orders GROUP BY 3", reason: ReasonShape},
		{name: "group by repeated expression", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY date_trunc('month', created_at)", rollup: "orders_daily"},
		{name: "quoted identifier case", sql: `SELECT "Status", count(*) FROM orders GROUP BY 1`, reason: ReasonUnknownColumn},
		{name: "tableau cast text", sql: `SELECT CAST("orders"."status" AS TEXT) AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, rollup: "orders_daily"},
		{name: "dimension of int", sql: "SELECT quantity, count(*) FROM orders GROUP BY quantity", rollup: "orders_daily"},
	})
}

func TestRule3Grain(t *testing.T) {
	runCases(t, []decideCase{
		{name: "month from day", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "tableau upper unit", sql: "SELECT DATE_TRUNC( 'MONTH', CAST(created_at AS TIMESTAMP) ), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "quarter date cast", sql: "SELECT CAST(DATE_TRUNC('QUARTER', CAST(created_at AS DATE)) AS DATE), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "cast date", sql: "SELECT created_at::date, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "CAST date", sql: "SELECT CAST(created_at AS DATE), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "extract year", sql: "SELECT EXTRACT(YEAR FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "date_part year", sql: "SELECT date_part('year', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "extract hour needs hour", sql: "SELECT EXTRACT(HOUR FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "hour bucket", sql: "SELECT date_trunc('hour', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "minute bucket", sql: "SELECT date_trunc('minute', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "week from day", sql: "SELECT date_trunc('week', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "week rollup month query", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders WHERE status <> 'cancelled' AND status = 'paid' GROUP BY 1", rollup: "orders_daily"},
		{name: "raw time column", sql: "SELECT created_at, count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "raw date column at day grain", sql: "SELECT order_date, count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "date month", sql: "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "timestamp month", sql: "SELECT date_trunc('month', local_ts), count(*) FROM orders GROUP BY 1", rollup: "orders_local_month"},
		{name: "timestamp day from month", sql: "SELECT date_trunc('day', local_ts), count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "timestamp year from month", sql: "SELECT extract(year from local_ts), count(*) FROM orders GROUP BY 1", rollup: "orders_local_month"},
		{name: "looker to_char", sql: "SELECT TO_CHAR(DATE_TRUNC('month', created_at), 'YYYY-MM'), count(*) FROM orders GROUP BY DATE_TRUNC('month', created_at)", reason: ReasonExpression},
		{name: "grafana epoch", sql: "SELECT floor(extract(epoch from created_at)/300)*300 AS time, count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "superset at time zone after trunc", sql: "SELECT DATE_TRUNC('month', created_at) AT TIME ZONE 'UTC' AS __timestamp, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "malloy", sql: "SELECT DATE_TRUNC('month', (created_at)::TIMESTAMPTZ AT TIME ZONE 'UTC')::TIMESTAMP, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
	})
}

func TestRule4TimeZones(t *testing.T) {
	runCases(t, []decideCase{
		{name: "same zone", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "other zone day from hourly", zone: "Europe/Berlin", sql: "SELECT date_trunc('day', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly",
			want: []string{"timezone('Europe/Berlin', date_trunc('day', timezone('Europe/Berlin', \"r\".\"t\")))"}},
		{name: "half hour zone", zone: "Asia/Kolkata", sql: "SELECT date_trunc('day', created_at), sum(amount) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "other zone count distinct", zone: "Europe/Berlin", sql: "SELECT date_trunc('day', created_at), count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "explicit at time zone utc", zone: "Europe/Berlin", sql: "SELECT date_trunc('day', created_at AT TIME ZONE 'UTC'), count(distinct customer_id), count(*) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "date column any zone", zone: "America/New_York", sql: "SELECT order_date, count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "date_trunc date in zone", zone: "America/New_York", sql: "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day",
			want: []string{"timezone('America/New_York', CAST(date_trunc('month', \"r\".\"t\") AS TIMESTAMP))"}},
		{name: "posix zone refused", zone: "EST5EDT", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "utc spellings", zone: "Etc/UTC", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "timestamp column at time zone", sql: "SELECT date_trunc('month', local_ts AT TIME ZONE 'UTC'), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
	})
}

func TestRule5Measures(t *testing.T) {
	runCases(t, []decideCase{
		{name: "sum", sql: "SELECT sum(amount) FROM orders", rollup: "orders_daily", want: []string{"CAST(sum(\"r\".\"m0_sum\") AS DECIMAL(38,2))"}},
		{name: "sum quoted", sql: `SELECT SUM("public"."orders"."amount") AS "sum" FROM "public"."orders"`, rollup: "orders_daily"},
		{name: "sum cast numeric", sql: "SELECT sum(amount::numeric) FROM orders", rollup: "orders_daily"},
		{name: "sum int", sql: "SELECT sum(quantity) FROM orders", rollup: "orders_daily", want: []string{"AS BIGINT"}},
		{name: "count star", sql: "SELECT count(*) FROM orders", rollup: "orders_daily", want: []string{"COALESCE(sum(\"r\".\"m1_count\"), 0)"}},
		{name: "count 1", sql: "SELECT count(1) FROM orders", rollup: "orders_daily"},
		{name: "count column", sql: "SELECT count(price) FROM orders", rollup: "orders_daily"},
		{name: "count column not stored", sql: "SELECT count(amount) FROM orders", reason: ReasonMeasure},
		{name: "min max", sql: "SELECT min(amount), max(amount) FROM orders", rollup: "orders_daily"},
		{name: "avg float", sql: "SELECT avg(price) FROM orders", rollup: "orders_daily"},
		{name: "avg numeric not yet", sql: "SELECT avg(amount) FROM orders", reason: ReasonMeasure},
		{name: "count distinct dimension", sql: "SELECT count(distinct status) FROM orders", rollup: "orders_daily", want: []string{"count(DISTINCT \"r\".\"d0\")"}},
		{name: "count distinct stored exact grain", sql: "SELECT o.status, c.country, quantity, created_at::date, count(distinct customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1,2,3,4", rollup: "orders_daily"},
		{name: "count distinct stored coarser", sql: "SELECT status, count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "power bi distinct count", sql: "SELECT count(distinct(status)) + max(case when status is null then 1 else 0 end) FROM orders", rollup: "orders_daily"},
		{name: "filter on dimension", sql: "SELECT count(*) FILTER (WHERE status = 'paid') FROM orders", rollup: "orders_daily", want: []string{"FILTER (WHERE"}},
		{name: "filter on non dimension", sql: "SELECT count(*) FILTER (WHERE note = 'x') FROM orders", reason: ReasonNotDimension},
		{name: "stddev", sql: "SELECT stddev(amount) FROM orders", reason: ReasonMeasure},
		{name: "sum distinct", sql: "SELECT sum(distinct amount) FROM orders", reason: ReasonMeasure},
		{name: "sum of expression", sql: "SELECT sum(amount * 2) FROM orders", reason: ReasonMeasure},
		{name: "string_agg", sql: "SELECT string_agg(status, ',') FROM orders", reason: ReasonMeasure},
		{name: "looker coalesce sum int", sql: "SELECT COALESCE(SUM(quantity), 0) FROM orders", rollup: "orders_daily"},
		{name: "looker coalesce sum numeric", sql: "SELECT COALESCE(SUM(amount), 0) FROM orders", reason: ReasonExpression},
		{name: "md5 symmetric aggregate", sql: "SELECT sum(DISTINCT (CAST(FLOOR(COALESCE(amount, 0) * 1000000) AS DECIMAL(65,0))) + ('x' || md5(status))::numeric) FROM orders", reason: ReasonMeasure},
	})
}

func TestRule6Filters(t *testing.T) {
	runCases(t, []decideCase{
		{name: "equality on dimension", sql: "SELECT count(*) FROM orders WHERE status = 'paid'", rollup: "orders_daily", want: []string{"= ('paid')"}},
		{name: "in list", sql: "SELECT count(*) FROM orders WHERE status IN ('paid', 'new')", rollup: "orders_daily"},
		{name: "is null", sql: "SELECT count(*) FROM orders WHERE status IS NULL", rollup: "orders_daily"},
		{name: "not", sql: "SELECT count(*) FROM orders WHERE NOT (status = 'paid')", rollup: "orders_daily"},
		{name: "or on one dimension", sql: "SELECT count(*) FROM orders WHERE status = 'a' OR status = 'b'", rollup: "orders_daily"},
		{name: "aligned range", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", rollup: "orders_daily"},
		{name: "unaligned range", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01 12:00'", rollup: "orders_hourly"},
		{name: "unaligned for hourly too", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01 12:30'", reason: ReasonUnalignedRange},
		{name: "inclusive end", sql: "SELECT count(*) FROM orders WHERE created_at <= '2024-01-31'", reason: ReasonUnalignedRange},
		{name: "between timestamp", sql: "SELECT count(*) FROM orders WHERE created_at BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-31T23:59:59Z'", reason: ReasonUnalignedRange},
		{name: "tableau inclusive date", sql: "SELECT count(*) FROM orders WHERE order_date >= (DATE '2024-01-01') AND order_date <= (DATE '2024-01-31')", rollup: "orders_by_day"},
		{name: "power bi date", sql: `SELECT count(*) FROM orders "_" WHERE "_"."order_date" < date '2024-02-01' and "_"."order_date" >= date '2024-01-01'`, rollup: "orders_by_day"},
		{name: "params metabase", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", rollup: "orders_daily",
			params: []Param{{Type: OIDTimestamptz, Value: "2024-01-01 00:00:00+00"}, {Type: OIDTimestamptz, Value: "2024-02-01 00:00:00+00"}}},
		{name: "params unaligned", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", reason: ReasonUnalignedRange,
			params: []Param{{Type: OIDTimestamptz, Value: "2024-01-01 00:30:00+00"}, {Type: OIDTimestamptz, Value: "2024-02-01 00:00:00+00"}}},
		{name: "param missing", sql: "SELECT count(*) FROM orders WHERE created_at >= $1", reason: ReasonParameter},
		{name: "zone shifts alignment", zone: "Europe/Berlin", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", rollup: "orders_hourly"},
		{name: "relative month", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('month', (now() + (INTERVAL '-12 month')))", rollup: "orders_daily", want: []string{"2023-03-01 00:00:00+00"}},
		{name: "now minus interval", sql: "SELECT count(*) FROM orders WHERE created_at >= now() - interval '7 days'", reason: ReasonUnalignedRange},
		{name: "current_date", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - 7", rollup: "orders_daily", want: []string{"2024-03-08 00:00:00+00"}},
		{name: "rollup filter implied exactly", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily"},
		{name: "rollup filter not implied", sql: "SELECT date_trunc('week', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "like", sql: "SELECT count(*) FROM orders WHERE status LIKE 'p%'", reason: ReasonFilterNotEvaluable},
		{name: "text range needs collation", sql: "SELECT count(*) FROM orders WHERE status > 'm'", rollup: "orders_daily"},
	})
}

func TestRule7Expressions(t *testing.T) {
	runCases(t, []decideCase{
		{name: "having", sql: "SELECT status, count(*) FROM orders GROUP BY 1 HAVING count(*) > 10", rollup: "orders_daily", want: []string{"HAVING"}},
		{name: "order by aggregate desc", sql: "SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT 10", rollup: "orders_daily", want: []string{"ORDER BY 2 DESC NULLS LAST LIMIT 10"}},
		{name: "order by alias", sql: "SELECT status AS s, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY total", rollup: "orders_daily", want: []string{"ORDER BY 2 ASC NULLS LAST"}},
		{name: "offset", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 LIMIT 10 OFFSET 20", rollup: "orders_daily", want: []string{"OFFSET 20"}},
		{name: "ratio float", sql: "SELECT sum(price) / count(*)::float8 FROM orders", rollup: "orders_daily"},
		{name: "integer division", sql: "SELECT sum(quantity) / count(*) FROM orders", reason: ReasonExpression},
		{name: "numeric division", sql: "SELECT 100.0 * sum(amount) / count(*) FROM orders", reason: ReasonExpression},
		{name: "case over dimension", sql: "SELECT CASE WHEN status = 'paid' THEN 'yes' ELSE 'no' END, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "coalesce dimension", sql: "SELECT COALESCE(status, 'none'), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "upper not supported", sql: "SELECT upper(status), count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "text to date cast", sql: "SELECT created_at::date::text, count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "limit param", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT $1", rollup: "orders_daily", params: []Param{{Type: OIDInt8, Value: "5"}}, want: []string{"LIMIT 5"}},
	})
}

func TestRule8Data(t *testing.T) {
	cat := testCatalog(t)
	for _, r := range cat.Rollups {
		if r.Def.Name != "orders_daily" {
			r.Status = StatusPending
			r.Version = ""
		}
	}
	daily := cat.Rollups[0]
	daily.AllTime = false
	daily.Partitions = []Partition{
		{Start: testNow.AddDate(0, -3, 0).Truncate(24 * 3600e9), End: mustDay("2024-02-01"), Files: []string{"a.parquet"}},
		{Start: mustDay("2024-02-01"), End: mustDay("2024-03-01"), Files: []string{"b.parquet"}},
	}
	daily.Partitions[0].Start = mustDay("2024-01-01")
	d := decide(t, cat, Session{}, "SELECT count(*) FROM orders WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'")
	if d.Route != RouteRollup || len(d.Files) != 1 || d.Files[0] != "b.parquet" {
		t.Fatalf("want pruned to b.parquet, got %v %v %v", d.Route, d.Reason, d.Files)
	}
	d = decide(t, cat, Session{}, "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-03-01'")
	if d.Route != RouteRollup || len(d.Files) != 2 {
		t.Fatalf("want both files, got %v %v %v", d.Route, d.Reason, d.Files)
	}
	for _, q := range []string{
		"SELECT count(*) FROM orders",
		"SELECT count(*) FROM orders WHERE created_at >= '2023-12-01' AND created_at < '2024-03-01'",
		"SELECT count(*) FROM orders WHERE created_at >= '2024-02-01'",
	} {
		d = decide(t, cat, Session{}, q)
		if d.Route != RoutePassthrough || d.Reason.Code != ReasonNotCovered {
			t.Fatalf("%s: want not_covered, got %v %v", q, d.Route, d.Reason)
		}
	}
	daily.Partitions[1].Truncated = true
	d = decide(t, cat, Session{}, "SELECT count(*) FROM orders WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'")
	if d.Reason.Code != ReasonTruncated {
		t.Fatalf("want truncated, got %v", d.Reason)
	}
	d = decide(t, cat, Session{}, "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'")
	if d.Route != RouteRollup {
		t.Fatalf("an untruncated partition should still answer: %v", d.Reason)
	}
	cat2 := testCatalog(t)
	cat2.MaxStaleness = 3600e9
	for _, r := range cat2.Rollups {
		r.BuiltAt = testNow.Add(-2 * 3600e9)
	}
	d = decide(t, cat2, Session{}, "SELECT count(*) FROM orders")
	if d.Reason.Code != ReasonStale {
		t.Fatalf("want stale, got %v", d.Reason)
	}
	cat3 := testCatalog(t)
	for _, r := range cat3.Rollups {
		r.Status = StatusBuilding
	}
	d = decide(t, cat3, Session{}, "SELECT count(*) FROM orders")
	if d.Reason.Code != ReasonNotBuilt {
		t.Fatalf("want not_built, got %v", d.Reason)
	}
}

func TestRule9Session(t *testing.T) {
	cat := testCatalog(t)
	q := "SELECT status, count(*) FROM orders GROUP BY 1"
	if d := decide(t, cat, Session{TxFailed: true}, q); d.Reason.Code != ReasonTxFailed {
		t.Fatalf("want tx failed, got %v", d.Reason)
	}
	if d := decide(t, cat, Session{TxWrote: true}, q); d.Reason.Code != ReasonTxWrote {
		t.Fatalf("want tx wrote, got %v", d.Reason)
	}
	deny := func(string) bool { return false }
	if d := decide(t, cat, Session{CanRead: deny}, q); d.Reason.Code != ReasonPrivilege {
		t.Fatalf("want privilege, got %v", d.Reason)
	}
	only := func(r string) bool { return r == "orders_hourly" }
	if d := decide(t, cat, Session{CanRead: only}, q); d.Rollup != "orders_hourly" {
		t.Fatalf("want the readable rollup, got %v %v", d.Rollup, d.Reason)
	}
}

func TestRule10Smallest(t *testing.T) {
	cat := testCatalog(t)
	q := "SELECT status, count(*) FROM orders GROUP BY 1"
	d := decide(t, cat, Session{}, q)
	if d.Rollup != "orders_daily" {
		t.Fatalf("want smallest orders_daily, got %s", d.Rollup)
	}
	cat.Rollups[1].Rows = 10
	d = decide(t, cat, Session{}, q)
	if d.Rollup != "orders_hourly" {
		t.Fatalf("want smallest orders_hourly, got %s", d.Rollup)
	}
	if !d.Candidates[0].Match || d.Candidates[0].Rollup != "orders_hourly" {
		t.Fatalf("chosen candidate first: %+v", d.Candidates)
	}
	n := 0
	for _, c := range d.Candidates {
		if c.Reason.Code == ReasonNotChosen {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("other matches must say larger_than_chosen: %+v", d.Candidates)
	}
}

func TestResultColumns(t *testing.T) {
	cat := testCatalog(t)
	cat.Tables["public.orders"].OID = 16384
	for i := range cat.Tables["public.orders"].Columns {
		cat.Tables["public.orders"].Columns[i].AttNum = int16(i + 1)
	}
	d := decide(t, cat, Session{}, "SELECT status, sum(amount), count(*), min(amount), date_trunc('month', created_at), created_at::date AS day, extract(year from created_at), date_part('year', created_at), sum(quantity), 1 + 1 FROM orders GROUP BY 1, 5, 6, 7, 8")
	if d.Route != RouteRollup {
		t.Fatalf("%v", d.Reason)
	}
	want := []struct {
		name string
		oid  uint32
	}{{"status", OIDText}, {"sum", OIDNumeric}, {"count", OIDInt8}, {"min", OIDNumeric}, {"date_trunc", OIDTimestamptz},
		{"day", OIDDate}, {"extract", OIDNumeric}, {"date_part", OIDFloat8}, {"sum", OIDInt8}, {"?column?", OIDInt4}}
	if len(d.Columns) != len(want) {
		t.Fatalf("columns %+v", d.Columns)
	}
	for i, w := range want {
		c := d.Columns[i]
		if c.Name != w.name || c.Type.OID != w.oid {
			t.Errorf("column %d: got %s %d, want %s %d", i, c.Name, c.Type.OID, w.name, w.oid)
		}
		if i > 0 && (c.TableOID != 0 || c.Type.Typmod != -1) {
			t.Errorf("column %d: computed columns carry no origin or typmod: %+v", i, c)
		}
	}
	if d.Columns[0].TableOID != 16384 || d.Columns[0].AttNum == 0 {
		t.Errorf("plain column keeps its origin: %+v", d.Columns[0])
	}
}

func mustDay(s string) time.Time {
	v, _, ok := parseTimeText(s)
	if !ok {
		panic(s)
	}
	return v
}
