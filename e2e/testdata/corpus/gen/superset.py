"""Generates ../superset.json: charts built the way Superset builds them.

Superset (superset/connectors/sqla/models.py, SqlaTable.get_sqla_query) makes
a SQLAlchemy select of the groupby columns and the metrics labelled with
their SQL ("SUM(amount)"), filters the time range with the engine spec's
convert_dttm literals (superset/db_engine_specs/postgres.py: TO_TIMESTAMP
for timestamps, TO_DATE for dates), buckets time with the spec's
_time_grain_expressions (DATE_TRUNC('day', col)) labelled __timestamp,
orders by the first metric's label descending with the row limit
(10000), limits series through a join to an inner query (mme_inner__),
and reads virtual datasets as a subquery aliased virtual_table. psycopg2
interpolates values on the client, so the statements carry literals.

Run with Debian's python3 (python3-sqlalchemy): /usr/bin/python3 superset.py
"""
import json
import datetime
import os

import sqlalchemy as sa
from sqlalchemy import and_, column, desc, literal_column, select, table, text
from sqlalchemy.dialects import postgresql

VERSION = "sqlalchemy " + sa.__version__
SOURCE = "superset/connectors/sqla/models.py get_sqla_query, superset/db_engine_specs/postgres.py; built with SQLAlchemy core, compiled for postgresql with literal_binds: "

orders = table("orders", column("status"), column("amount"), column("price"), column("quantity"),
               column("created_at"), column("order_date"), column("customer_id"), schema="public")


def ts(s):
    d = datetime.datetime.fromisoformat(s)
    return text("TO_TIMESTAMP('%s', 'YYYY-MM-DD HH24:MI:SS.US')" % d.isoformat(sep=" ", timespec="microseconds"))


def to_date(s):
    return text("TO_DATE('%s', 'YYYY-MM-DD')" % s)


def metric(sql):
    return literal_column(sql).label(sql)


def grain(unit, col="created_at"):
    return literal_column("DATE_TRUNC('%s', %s)" % (unit, col))


def chart(groupby=(), metrics=(), where=(), timegrain=None, limit=10000, frm=orders, order=True):
    cols = []
    groups = []
    if timegrain is not None:
        cols.append(timegrain.label("__timestamp"))
        groups.append(timegrain)
    for g in groupby:
        cols.append(column(g).label(g))
        groups.append(column(g))
    ms = [metric(m) for m in metrics]
    q = select(cols + ms).select_from(frm)
    if where:
        q = q.where(and_(*where))
    if groups:
        q = q.group_by(*groups)
    if order and ms:
        q = q.order_by(desc(literal_column('"%s"' % metrics[0])))
    if limit:
        q = q.limit(limit)
    return q


c = column
jan = [c("created_at") >= ts("2024-01-01 00:00:00"), c("created_at") < ts("2024-02-01 00:00:00")]
cases = [
    ("bar-status", "chart(groupby=['status'], metrics=['SUM(amount)'])", "orders_daily"),
    ("bar-status-jan", "chart(groupby=['status'], metrics=['SUM(amount)', 'COUNT(*)'], where=jan)", "orders_daily"),
    ("big-number", "chart(metrics=['COUNT(*)'], where=jan)", "orders_daily"),
    ("line-day", "chart(metrics=['SUM(amount)'], timegrain=grain('day'), where=jan)", "orders_daily"),
    ("line-week", "chart(metrics=['SUM(quantity)'], timegrain=grain('week'), where=[c('created_at') >= ts('2024-01-01 00:00:00'), c('created_at') < ts('2024-04-01 00:00:00')])", "orders_daily"),
    ("line-month-status", "chart(groupby=['status'], metrics=['SUM(amount)'], timegrain=grain('month'))", "orders_daily"),
    ("avg-amount", "chart(groupby=['status'], metrics=['AVG(amount)'])", "orders_daily"),
    ("ratio", "chart(groupby=['status'], metrics=['sum(amount) / count(*)'])", "orders_daily"),
    ("order-date", "chart(groupby=['status'], metrics=['COUNT(*)'], where=[c('order_date') >= to_date('2024-03-01'), c('order_date') < to_date('2024-04-01')])", "orders_by_order_date"),
    ("order-date-day", "chart(metrics=['SUM(amount)'], timegrain=grain('day', 'order_date'), where=[c('order_date') >= to_date('2024-03-01'), c('order_date') < to_date('2024-04-01')])", "orders_by_order_date"),
    ("status-filter", "chart(metrics=['SUM(amount)'], where=[c('status').in_(['paid'])], timegrain=grain('month'))", "orders_daily"),
    ("hour", "chart(groupby=['status'], metrics=['SUM(price)'], timegrain=grain('hour'), where=[c('created_at') >= ts('2024-10-27 00:00:00'), c('created_at') < ts('2024-10-28 00:00:00')])", "orders_hourly"),
    ("virtual-dataset", "chart(groupby=['status'], metrics=['SUM(amount)'], frm=text(\"(SELECT * FROM public.orders WHERE status <> 'cancelled') AS virtual_table\"))", "orders_daily"),
    ("series-limit", "series_limit()", "orders_daily"),
    ("min-price", "chart(groupby=['status'], metrics=['MIN(price)'])", None, "min(price) is not a measure of any rollup"),
    ("raw-time", "chart(metrics=['COUNT(*)'], timegrain=literal_column('created_at'))", None, "the raw time column, unbucketed, is finer than every rollup's grain"),
    ("unaligned", "chart(groupby=['status'], metrics=['COUNT(*)'], where=[c('created_at') >= ts('2024-01-01 06:30:00'), c('created_at') < ts('2024-02-01 00:00:00')])", None, "a time range starting at 06:30 is finer than the hourly rollup's grain"),
]


def series_limit():
    """A timeseries limited to its top 5 series: get_sqla_query's
    series_limit join of the chart to an inner query."""
    inner = select([column("status").label("status__"), literal_column("SUM(amount)").label("mme_inner__")]) \
        .select_from(orders).where(and_(*jan)).group_by(column("status")) \
        .order_by(desc(literal_column("mme_inner__"))).limit(5).alias("series_limit")
    t = grain("day", "public.orders.created_at")
    q = select([t.label("__timestamp"), literal_column("public.orders.status").label("status"), metric("SUM(amount)")]) \
        .select_from(orders.join(inner, literal_column("public.orders.status") == inner.c.status__)) \
        .where(and_(*jan)).group_by(t, literal_column("public.orders.status")) \
        .order_by(desc(literal_column('"SUM(amount)"'))).limit(10000)
    return q


entries = []
for case in cases:
    ident, code, rollup = case[0], case[1], case[2]
    q = eval(code)
    sql = str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    e = {"id": "superset-" + ident, "tool": "superset", "version": VERSION, "source": SOURCE + code, "sql": sql,
         "answerable": rollup is not None}
    if rollup:
        e["rollup"] = rollup
    else:
        e["why"] = case[3]
    entries.append(e)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "superset.json")
with open(out, "w") as f:
    json.dump(entries, f, indent=2)
    f.write("\n")
print("superset.json", len(entries))
