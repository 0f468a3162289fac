"""psycopg2 compatibility workload for pgrollup's e2e suite.

Run with Debian's /usr/bin/python3 and python3-psycopg2:
    compat.py DSN
It prints a canonical text of what it observes; the Go test runs it directly
and through pgrollup and requires the same text. It does what Superset does
at connect time, then pages a named (server-side) cursor with itersize.
"""
import sys

import psycopg2
import psycopg2.extensions


def p(*args):
    print(*args, flush=True)


def plain(row):
    # memoryview's repr holds an address; its bytes are what matter.
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def describe(cur):
    return [(d.name, d.type_code, d.internal_size, d.precision, d.scale) for d in cur.description]


def main():
    conn = psycopg2.connect(sys.argv[1], application_name="e2e-psycopg2")
    p("server_version", conn.server_version, "protocol", conn.protocol_version)
    p("encoding", conn.encoding)
    for name in ("DateStyle", "TimeZone", "integer_datetimes", "standard_conforming_strings", "client_encoding"):
        p("parameter", name, conn.get_parameter_status(name))

    # Superset's connect-time queries (SQLAlchemy's postgres dialect).
    cur = conn.cursor()
    for sql in ("select pg_catalog.version()", "select current_schema()",
                "show standard_conforming_strings", "show transaction isolation level"):
        cur.execute(sql)
        p(sql, "->", cur.fetchall(), describe(cur), cur.statusmessage)
    p("status in transaction", conn.get_transaction_status())
    conn.rollback()
    p("status after rollback", conn.get_transaction_status())

    # A named server-side cursor: DECLARE, then FETCH FORWARD itersize at a time.
    named = conn.cursor(name="e2e_named_cursor")
    named.itersize = 1000
    named.execute("SELECT g, md5(g::text), g * 1.5 AS half, now() IS NOT NULL AS t FROM generate_series(1, 2500) g")
    n = total = 0
    first = last = None
    for row in named:
        n += 1
        total += row[0]
        first = first or row
        last = row
    p("named cursor rows", n, "sum", total, "first", first, "last", last, "rownumber", named.rownumber)
    p("named description", describe(named))
    named.close()
    conn.commit()

    # A named cursor with fetchmany/scroll over a real table, then WITH HOLD.
    named = conn.cursor(name="e2e_scroll", scrollable=True)
    named.execute("SELECT id, category, amount, created_at FROM items ORDER BY id")
    p("fetchmany", named.fetchmany(3))
    named.scroll(990, mode="absolute")
    p("after scroll", named.fetchall())
    named.close()
    conn.commit()
    held = conn.cursor(name="e2e_held", withhold=True)
    held.execute("SELECT id FROM items WHERE id <= 5 ORDER BY id")
    conn.commit()
    p("with hold after commit", held.fetchall())
    held.close()

    # Types, parameters, errors, notices, autocommit.
    cur.execute("SELECT * FROM types ORDER BY id")
    for row in cur.fetchall():
        p("types", plain(row))
    p("types description", describe(cur))
    cur.execute("SELECT %s::int + %s, %s::text, %s", (40, 2, "it's", None))
    p("params", cur.fetchone(), cur.query)
    conn.commit()
    for sql in ("SELECT 1/0", "SELECT nosuch FROM items", "SELEC 1"):
        try:
            cur.execute(sql)
        except psycopg2.Error as e:
            p("error", sql, e.pgcode, repr(e.pgerror), e.diag.severity, e.diag.statement_position, e.diag.source_function)
        conn.rollback()
    cur.execute("DO $$BEGIN RAISE NOTICE 'from psycopg2 %', 7; END$$")
    p("notices", [s.strip() for s in conn.notices])
    conn.commit()
    conn.autocommit = True
    cur.execute("SET TimeZone = 'Asia/Tokyo'")
    p("timezone", conn.get_parameter_status("TimeZone"))
    cur.execute("SELECT '2024-01-01 00:00:00+00'::timestamptz::text")
    p("timestamptz", cur.fetchone())
    p("status autocommit", conn.get_transaction_status())
    conn.close()
    p("done")


main()
