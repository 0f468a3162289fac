"""Generates ../{metabase,tableau,grafana,looker,lightdash}.json.

These tools do not run here (Metabase, Tableau, Looker, Lightdash and
Grafana are servers or desktop applications), so their statements are their SQL templates filled in for the
corpus's dashboards. Each entry names the source it follows:

- Metabase: src/metabase/driver/postgres.clj and
  src/metabase/driver/sql/query_processor.clj (metabase/metabase): fully
  qualified "public"."orders"."col" names, aliases "sum"/"count", ORDER BY
  every breakout, CAST(x AS date) for days, DATE_TRUNC for month, weeks
  starting on Sunday (adjust-start-of-week), CAST(extract(month ...) AS
  integer), nested questions as a "source" subquery with LIMIT 1048575,
  values bound through pgjdbc (varchar, timestamptz).
- Tableau: tableau/connector-plugin-sdk samples/plugins/postgres_jdbc/dialect.tdd:
  DATE_TRUNC( 'MONTH', CAST(x AS TIMESTAMP) ), CAST(EXTRACT(YEAR FROM x) AS
  INTEGER), (DATE '...') and (TIMESTAMP '...') literals, "sum:amount:ok"
  aliases, FROM "public"."orders" "orders", top-N as an INNER JOIN to a
  LIMITed subquery "t0".
- Grafana: grafana/grafana pkg/tsdb/grafana-postgresql-datasource/macros.go,
  whose $__timeFilter, $__timeGroup and $__timeGroupAlias expansions are
  reproduced below (grafana_macros) with the dashboard's time range.
- Looker: its documented Postgres SQL (COALESCE(SUM(x), 0), TO_CHAR of
  DATE_TRUNC for dimension groups, FETCH NEXT 500 ROWS ONLY, relative
  filters with (SELECT DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE ...)),
  MD5-based symmetric aggregates over fanned-out joins).
- Lightdash: lightdash/lightdash packages/backend/src/utils/QueryBuilder
  (DATE_TRUNC('WEEK', ...), COALESCE sums, inThePast filters).

Run: python3 templates.py
"""
import datetime
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, entries):
    with open(os.path.join(HERE, "..", name + ".json"), "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")
    print(name + ".json", len(entries))


def entry(tool, version, source, ident, sql, rollup=None, why=None, params=None):
    e = {"id": tool + "-" + ident, "tool": tool, "version": version, "source": source,
         "sql": re.sub(r"\n\s*\n", "\n", sql.strip())}
    if params:
        e["params"] = [{"type": t, "value": v} for t, v in params]
    e["answerable"] = rollup is not None
    if rollup:
        e["rollup"] = rollup
    else:
        e["why"] = why
    return e


# ---- Metabase -----------------------------------------------------------
MB = ("metabase", "v0.50 postgres driver", "src/metabase/driver/postgres.clj, src/metabase/driver/sql/query_processor.clj (metabase/metabase): ")
O = '"public"."orders"'
metabase = [
    entry(*MB[:2], MB[2] + "breakout status, sum of amount", "sum-by-status",
          f'SELECT {O}."status" AS "status", SUM({O}."amount") AS "sum" FROM {O} GROUP BY {O}."status" ORDER BY {O}."status" ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "breakout status, count", "count-by-status",
          f'SELECT {O}."status" AS "status", COUNT(*) AS "count" FROM {O} GROUP BY {O}."status" ORDER BY {O}."status" ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "breakout created_at: month (DATE_TRUNC)", "month",
          f'SELECT DATE_TRUNC(\'month\', {O}."created_at") AS "created_at", SUM({O}."amount") AS "sum" FROM {O} GROUP BY DATE_TRUNC(\'month\', {O}."created_at") ORDER BY DATE_TRUNC(\'month\', {O}."created_at") ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "breakout created_at: day (CAST AS date)", "day",
          f'SELECT CAST({O}."created_at" AS date) AS "created_at", COUNT(*) AS "count" FROM {O} WHERE ({O}."created_at" >= ?) AND ({O}."created_at" < ?) GROUP BY CAST({O}."created_at" AS date) ORDER BY CAST({O}."created_at" AS date) ASC'.replace("?", "$1", 1).replace("?", "$2", 1),
          "orders_daily", params=[("timestamptz", "2024-03-01 00:00:00+00"), ("timestamptz", "2024-04-01 00:00:00+00")]),
    entry(*MB[:2], MB[2] + "breakout created_at: week, start of week Sunday (adjust-start-of-week)", "week-sunday",
          f'SELECT (DATE_TRUNC(\'week\', ({O}."created_at" + INTERVAL \'1 day\')) + INTERVAL \'-1 day\') AS "created_at", COUNT(*) AS "count" FROM {O} GROUP BY (DATE_TRUNC(\'week\', ({O}."created_at" + INTERVAL \'1 day\')) + INTERVAL \'-1 day\') ORDER BY (DATE_TRUNC(\'week\', ({O}."created_at" + INTERVAL \'1 day\')) + INTERVAL \'-1 day\') ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "breakout created_at: month-of-year", "month-of-year",
          f'SELECT CAST(extract(month from {O}."created_at") AS integer) AS "created_at", SUM({O}."quantity") AS "sum" FROM {O} GROUP BY CAST(extract(month from {O}."created_at") AS integer) ORDER BY CAST(extract(month from {O}."created_at") AS integer) ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "filter status is paid (bound through pgjdbc as varchar), breakout country", "paid-by-country",
          f'SELECT "Customers"."country" AS "Customers__country", SUM({O}."amount") AS "sum" FROM {O} LEFT JOIN "public"."customers" AS "Customers" ON {O}."customer_id" = "Customers"."id" WHERE {O}."status" = $1 GROUP BY "Customers"."country" ORDER BY "Customers"."country" ASC',
          "paid_by_country", params=[("varchar", "paid")]),
    entry(*MB[:2], MB[2] + "filter created_at between two dates (bound timestamptz)", "range-bound",
          f'SELECT {O}."status" AS "status", SUM({O}."amount") AS "sum", COUNT(*) AS "count" FROM {O} WHERE ({O}."created_at" >= $1) AND ({O}."created_at" < $2) GROUP BY {O}."status" ORDER BY {O}."status" ASC',
          "orders_daily", params=[("timestamptz", "2024-06-01 00:00:00+00"), ("timestamptz", "2024-07-01 00:00:00+00")]),
    entry(*MB[:2], MB[2] + "relative filter: previous 12 months", "previous-12-months",
          f'SELECT DATE_TRUNC(\'month\', {O}."created_at") AS "created_at", COUNT(*) AS "count" FROM {O} WHERE ({O}."created_at" >= date_trunc(\'month\', (NOW() + INTERVAL \'-12 month\'))) AND ({O}."created_at" < date_trunc(\'month\', NOW())) GROUP BY DATE_TRUNC(\'month\', {O}."created_at") ORDER BY DATE_TRUNC(\'month\', {O}."created_at") ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "nested question: a saved question as the source", "nested-source",
          f'SELECT "source"."status" AS "status", "source"."sum" AS "sum" FROM (SELECT {O}."status" AS "status", SUM({O}."amount") AS "sum" FROM {O} GROUP BY {O}."status" ORDER BY {O}."status" ASC) AS "source" ORDER BY "source"."sum" DESC LIMIT 1048575', "orders_daily"),
    entry(*MB[:2], MB[2] + "average of amount by segment", "avg-by-segment",
          f'SELECT "Customers"."segment" AS "Customers__segment", AVG({O}."amount") AS "avg" FROM {O} LEFT JOIN "public"."customers" AS "Customers" ON {O}."customer_id" = "Customers"."id" GROUP BY "Customers"."segment" ORDER BY "Customers"."segment" ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "filter order_date between two dates (bound as date)", "order-date-bound",
          f'SELECT {O}."status" AS "status", COUNT(*) AS "count" FROM {O} WHERE ({O}."order_date" >= $1) AND ({O}."order_date" < $2) GROUP BY {O}."status" ORDER BY {O}."status" ASC',
          "orders_by_order_date", params=[("date", "2024-05-01"), ("date", "2024-06-01")]),
    entry(*MB[:2], MB[2] + "filter local_ts on a day (bound as timestamp), breakout day", "local-bound",
          f'SELECT CAST({O}."local_ts" AS date) AS "local_ts", COUNT(*) AS "count" FROM {O} WHERE ({O}."local_ts" >= $1) AND ({O}."local_ts" < $2) GROUP BY CAST({O}."local_ts" AS date) ORDER BY CAST({O}."local_ts" AS date) ASC',
          "orders_local_daily", params=[("timestamp", "2024-03-30 00:00:00"), ("timestamp", "2024-04-02 00:00:00")]),
    entry(*MB[:2], MB[2] + "breakout created_at: quarter", "quarter",
          f'SELECT DATE_TRUNC(\'quarter\', {O}."created_at") AS "created_at", SUM({O}."amount") AS "sum" FROM {O} GROUP BY DATE_TRUNC(\'quarter\', {O}."created_at") ORDER BY DATE_TRUNC(\'quarter\', {O}."created_at") ASC', "orders_daily"),
    entry(*MB[:2], MB[2] + "filter status is paid (bound), hour of created_at", "paid-hour-bound",
          f'SELECT DATE_TRUNC(\'hour\', {O}."created_at") AS "created_at", COUNT(*) AS "count" FROM {O} WHERE ({O}."status" = $1) AND ({O}."created_at" >= $2) AND ({O}."created_at" < $3) GROUP BY DATE_TRUNC(\'hour\', {O}."created_at") ORDER BY DATE_TRUNC(\'hour\', {O}."created_at") ASC',
          "orders_hourly", params=[("varchar", "paid"), ("timestamptz", "2024-03-31 00:00:00+00"), ("timestamptz", "2024-04-01 00:00:00+00")]),
    entry(*MB[:2], MB[2] + "distinct values of customer_id", "distinct-customers",
          f'SELECT COUNT(DISTINCT {O}."customer_id") AS "count" FROM {O}', None,
          "count(DISTINCT customer_id) over the whole table: distinct counts do not add up across days"),
    entry(*MB[:2], MB[2] + "filter note contains (case-insensitive)", "note-contains",
          f'SELECT COUNT(*) AS "count" FROM {O} WHERE LOWER({O}."note") LIKE $1', None, "note is not a dimension", params=[("varchar", "%note 1%")]),
]

# ---- Tableau -------------------------------------------------------------
TB = ("tableau", "connector-plugin-sdk postgres_jdbc dialect", "tableau/connector-plugin-sdk samples/plugins/postgres_jdbc/dialect.tdd: ")
T = '"public"."orders" "orders"'
tableau = [
    entry(*TB[:2], TB[2] + "SUM measure by a dimension", "sum-by-status",
          f'SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM {T} GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "YEAR(created_at)", "year",
          f'SELECT CAST(EXTRACT(YEAR FROM "orders"."created_at") AS INTEGER) AS "yr:created_at:ok", SUM("orders"."amount") AS "sum:amount:ok" FROM {T} GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "MONTH(created_at) truncated", "month-trunc",
          f'SELECT DATE_TRUNC( \'MONTH\', CAST("orders"."created_at" AS TIMESTAMP) ) AS "tmn:created_at:ok", COUNT(*) AS "cnt:orders:ok" FROM {T} GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "QUARTER(order_date) truncated, a date", "quarter-date",
          f'SELECT CAST(DATE_TRUNC( \'QUARTER\', CAST("orders"."order_date" AS DATE) ) AS DATE) AS "tqr:order_date:ok", SUM("orders"."quantity") AS "sum:quantity:ok" FROM {T} GROUP BY 1', "orders_by_order_date"),
    entry(*TB[:2], TB[2] + "date range filter, inclusive end", "date-range",
          f'SELECT "orders"."status" AS "status", COUNT(*) AS "cnt:orders:ok" FROM {T} WHERE (("orders"."order_date" >= (DATE \'2024-01-01\')) AND ("orders"."order_date" <= (DATE \'2024-01-31\'))) GROUP BY 1', "orders_by_order_date"),
    entry(*TB[:2], TB[2] + "timestamp range filter", "timestamp-range",
          f'SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM {T} WHERE (("orders"."created_at" >= (TIMESTAMP \'2024-02-01 00:00:00.000\')) AND ("orders"."created_at" < (TIMESTAMP \'2024-03-01 00:00:00.000\'))) GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "top 3 statuses by SUM(amount): INNER JOIN of a LIMITed subquery", "top-n",
          f'SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM {T} INNER JOIN (SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "$__alias__0" FROM {T} GROUP BY 1 ORDER BY 2 DESC LIMIT 3) "t0" ON ("orders"."status" = "t0"."status") GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "dimension cast to TEXT", "cast-text",
          f'SELECT CAST("orders"."status" AS TEXT) AS "status", COUNT(*) AS "cnt:orders:ok" FROM {T} GROUP BY 1', "orders_daily"),
    entry(*TB[:2], TB[2] + "region from the stores table (inner join)", "region",
          f'SELECT "stores"."region" AS "region", SUM("orders"."amount") AS "sum:amount:ok" FROM {T} INNER JOIN "public"."stores" "stores" ON ("orders"."store_id" = "stores"."id") GROUP BY 1', "orders_region_monthly"),
    entry(*TB[:2], TB[2] + "COUNTD(customer_id) by month", "countd",
          f'SELECT DATE_TRUNC( \'MONTH\', CAST("orders"."created_at" AS TIMESTAMP) ) AS "tmn:created_at:ok", COUNT(DISTINCT "orders"."customer_id") AS "ctd:customer_id:ok" FROM {T} GROUP BY 1', None,
          "count(DISTINCT customer_id) by month over a day rollup: distinct counts do not add up across days"),
    entry(*TB[:2], TB[2] + "AVG(price) by status", "avg-price",
          f'SELECT "orders"."status" AS "status", AVG("orders"."price") AS "avg:price:ok" FROM {T} GROUP BY 1', "orders_daily"),
]

# ---- Grafana --------------------------------------------------------------
GF = ("grafana", "v11 postgres datasource", "grafana/grafana pkg/tsdb/grafana-postgresql-datasource/macros.go; ")


def rfc3339(t):
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("%.9f" % (t.microsecond / 1e6))[1:].rstrip("0")
    return s + "Z"


def grafana_macros(sql, frm, to):
    """The expansion of macros.go's evaluateMacro for the macros used here."""
    def group(col, interval):
        secs = {"1h": 3600, "1d": 86400, "5m": 300}[interval]
        return "floor(extract(epoch from %s)/%d)*%d" % (col, secs, secs)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*'?([0-9a-z]+)'?\)", lambda m: group(m.group(1), m.group(2)) + ' AS "time"', sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),\s*'?([0-9a-z]+)'?\)", lambda m: group(m.group(1), m.group(2)), sql)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: "%s BETWEEN '%s' AND '%s'" % (m.group(1), rfc3339(frm), rfc3339(to)), sql)
    return sql


def gf(ident, template, frm, to, rollup=None, why=None):
    t0 = datetime.datetime.fromisoformat(frm)
    t1 = datetime.datetime.fromisoformat(to)
    return entry(*GF[:2], GF[2] + "panel query: " + template + " over " + frm + " to " + to, ident,
                 grafana_macros(template, t0, t1), rollup, why)


grafana = [
    gf("daily-orders-by-date", "SELECT $__timeGroupAlias(order_date, 1d), count(*) AS \"orders\" FROM orders WHERE $__timeFilter(order_date) GROUP BY 1 ORDER BY 1",
       "2024-03-01 00:00:00", "2024-03-31 23:59:59", "orders_by_order_date"),
    gf("hourly-all-time", "SELECT $__timeGroupAlias(created_at, 1h), sum(price) AS \"price\" FROM orders GROUP BY 1 ORDER BY 1",
       "2024-03-01 00:00:00", "2024-03-02 00:00:00", "orders_hourly"),
    gf("daily-status-series", "SELECT $__timeGroupAlias(created_at, 1d), status AS metric, count(*) AS value FROM orders GROUP BY 1, 2 ORDER BY 1",
       "2024-03-01 00:00:00", "2024-03-02 00:00:00", "orders_daily"),
    gf("hourly-last-day", "SELECT $__timeGroupAlias(created_at, 1h), count(*) AS \"orders\" FROM orders WHERE $__timeFilter(created_at) GROUP BY 1 ORDER BY 1",
       "2024-10-26 00:00:00", "2024-10-27 00:00:00", None,
       "BETWEEN includes its end instant 2024-10-27T00:00:00Z, the first instant of the next hour: no rollup bucket holds only it"),
    gf("hourly-last-6h", "SELECT $__timeGroupAlias(created_at, 1h), sum(amount) AS \"amount\" FROM orders WHERE $__timeFilter(created_at) GROUP BY 1 ORDER BY 1",
       "2024-10-26 10:17:23.123", "2024-10-26 16:17:23.123", None,
       "the range starts and ends inside hours (now-6h to now, to the millisecond)"),
    gf("five-minutes", "SELECT $__timeGroupAlias(created_at, 5m), count(*) AS \"orders\" FROM orders GROUP BY 1 ORDER BY 1",
       "2024-10-26 00:00:00", "2024-10-27 00:00:00", None, "5-minute buckets are finer than the hourly rollup"),
    gf("stat-total", "SELECT sum(amount) AS \"revenue\" FROM orders WHERE $__timeFilter(order_date)",
       "2024-01-01 00:00:00", "2024-06-30 23:59:59", "orders_by_order_date"),
]

# ---- Looker ---------------------------------------------------------------
LK = ("looker", "documented Postgres SQL", "Looker's generated SQL for PostgreSQL (SQL tab of an Explore): ")
looker = [
    entry(*LK[:2], LK[2] + "measure type: sum, a dimension, row limit 500", "sum-by-status",
          'SELECT\n    orders.status  AS "orders.status",\n    COALESCE(SUM(orders.amount ), 0) AS "orders.total_amount"\nFROM public.orders  AS orders\nGROUP BY\n    1\nORDER BY\n    2 DESC\nFETCH NEXT 500 ROWS ONLY', "orders_daily"),
    entry(*LK[:2], LK[2] + "dimension_group created, timeframe month", "month",
          'SELECT\n    TO_CHAR(DATE_TRUNC(\'month\', orders.created_at ), \'YYYY-MM\') AS "orders.created_month",\n    COUNT(*) AS "orders.count"\nFROM public.orders  AS orders\nGROUP BY\n    (DATE_TRUNC(\'month\', orders.created_at ))\nORDER BY\n    1 DESC\nFETCH NEXT 500 ROWS ONLY', "orders_daily"),
    entry(*LK[:2], LK[2] + "dimension_group created, timeframe date, filter last 30 days", "last-30-days",
          'SELECT\n    DATE(orders.created_at ) AS "orders.created_date",\n    COALESCE(SUM(orders.quantity ), 0) AS "orders.total_quantity"\nFROM public.orders  AS orders\nWHERE ((( orders.created_at  ) >= ((SELECT (DATE_TRUNC(\'day\', CURRENT_TIMESTAMP AT TIME ZONE \'UTC\') + (-29 || \' day\')::INTERVAL))) AND ( orders.created_at  ) < ((SELECT ((DATE_TRUNC(\'day\', CURRENT_TIMESTAMP AT TIME ZONE \'UTC\') + (-29 || \' day\')::INTERVAL) + (30 || \' day\')::INTERVAL)))))\nGROUP BY\n    1\nORDER BY\n    1 DESC\nFETCH NEXT 500 ROWS ONLY', "orders_daily"),
    entry(*LK[:2], LK[2] + "a joined view (many_to_one), sum of the base view's measure", "country",
          'SELECT\n    customers.country  AS "customers.country",\n    COALESCE(SUM(orders.amount ), 0) AS "orders.total_amount"\nFROM public.orders  AS orders\nLEFT JOIN public.customers  AS customers ON orders.customer_id = customers.id\nGROUP BY\n    1\nORDER BY\n    2 DESC\nFETCH NEXT 500 ROWS ONLY', "orders_daily"),
    entry(*LK[:2], LK[2] + "symmetric aggregate: sum of a joined view's measure over a fanned-out join", "symmetric",
          'SELECT\n    customers.segment  AS "customers.segment",\n    COALESCE(CAST( ( SUM(DISTINCT (CAST(FLOOR(COALESCE( orders.amount  ,0)*(1000000*1.0)) AS DECIMAL(65,0))) + (\'x\' || MD5( orders.id ::varchar))::bit(64)::bigint::DECIMAL(65,0)  *18446744073709551616 + (\'x\' || SUBSTR(MD5( orders.id ::varchar),17))::bit(64)::bigint::DECIMAL(65,0) ) - SUM(DISTINCT (\'x\' || MD5( orders.id ::varchar))::bit(64)::bigint::DECIMAL(65,0)  *18446744073709551616 + (\'x\' || SUBSTR(MD5( orders.id ::varchar),17))::bit(64)::bigint::DECIMAL(65,0)) )  AS DOUBLE PRECISION) / CAST((1000000*1.0) AS DOUBLE PRECISION), 0) AS "orders.total_amount"\nFROM public.orders  AS orders\nLEFT JOIN public.customers  AS customers ON orders.customer_id = customers.id\nGROUP BY\n    1\nORDER BY\n    2 DESC\nFETCH NEXT 500 ROWS ONLY', None,
          "symmetric aggregates sum DISTINCT over md5 of the primary key: an expression of raw rows, not a measure"),
]

# ---- Lightdash --------------------------------------------------------------
LD = ("lightdash", "0.1000 QueryBuilder", "lightdash/lightdash packages/backend/src/utils/QueryBuilder: ")
lightdash = [
    entry(*LD[:2], LD[2] + "dimension status, week of created_at, sum metric", "week",
          'SELECT\n  "orders".status AS "orders_status",\n  DATE_TRUNC(\'WEEK\', "orders".created_at) AS "orders_created_at_week",\n  COALESCE(SUM("orders".amount), 0) AS "orders_total_amount"\nFROM "public"."orders" AS "orders"\nGROUP BY 1,2\nORDER BY "orders_created_at_week" DESC\nLIMIT 500', "orders_daily"),
    entry(*LD[:2], LD[2] + "filter created_at inThePast 52 weeks (completed)", "in-the-past",
          'SELECT\n  DATE_TRUNC(\'MONTH\', "orders".created_at) AS "orders_created_at_month",\n  COUNT(*) AS "orders_count"\nFROM "public"."orders" AS "orders"\nWHERE (("orders".created_at) >= (DATE_TRUNC(\'day\', NOW()) - interval \'52 weeks\'))\nGROUP BY 1\nORDER BY "orders_created_at_month" DESC\nLIMIT 500', "orders_daily"),
    entry(*LD[:2], LD[2] + "average metric by segment", "avg-segment",
          'SELECT\n  "customers".segment AS "customers_segment",\n  AVG("orders".amount) AS "orders_average_amount"\nFROM "public"."orders" AS "orders"\nLEFT OUTER JOIN "public"."customers" AS "customers"\n  ON ("orders".customer_id) = ("customers".id)\nGROUP BY 1\nORDER BY "orders_average_amount" DESC\nLIMIT 500', "orders_daily"),
]

write("metabase", metabase)
write("tableau", tableau)
write("grafana", grafana)
write("looker", looker)
write("lightdash", lightdash)
