-- psql compatibility script: run with psql -X -a -v ON_ERROR_STOP=0, once
-- directly and once through pgrollup, in a fresh database each time; the two
-- outputs must be identical.
\set VERBOSITY verbose
\set SHOW_CONTEXT always
SET TimeZone = 'UTC';
SHOW server_encoding;
SELECT current_user, current_database();

-- DDL
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer text NOT NULL,
    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    amount numeric(12,2) NOT NULL,
    created_at timestamptz NOT NULL,
    tags text[],
    meta jsonb
);
CREATE INDEX orders_customer ON orders (customer);
CREATE VIEW paid_orders AS SELECT id, customer, amount FROM orders WHERE status = 'paid';
COMMENT ON TABLE orders IS 'orders for the psql script';
\d orders
\dv

-- DML
INSERT INTO orders (customer, status, amount, created_at, tags, meta) VALUES
    ('alice', 'paid', 10.50, '2024-01-01 10:00+00', '{a,b}', '{"n": 1}'),
    ('bob', 'new', 99.99, '2024-01-02 11:30+00', NULL, NULL),
    ('carol', 'shipped', 0.01, '2024-02-29 23:59:59+00', '{}', '{"x": [1, {"y": null}]}')
RETURNING id, customer, amount;
UPDATE orders SET status = 'paid' WHERE customer = 'bob' RETURNING *;
DELETE FROM orders WHERE customer = 'nobody';
SELECT status, count(*), sum(amount), avg(amount), min(created_at), max(created_at)
FROM orders GROUP BY status ORDER BY status;
SELECT * FROM paid_orders ORDER BY id;
SELECT date_trunc('month', created_at) AS month, sum(amount) FROM orders GROUP BY 1 ORDER BY 1;

-- transactions: commit
BEGIN;
INSERT INTO orders (customer, amount, created_at) VALUES ('dave', 5, '2024-03-01');
COMMIT;
-- rollback
BEGIN;
DELETE FROM orders;
SELECT count(*) FROM orders;
ROLLBACK;
SELECT count(*) FROM orders;
-- savepoints
BEGIN;
INSERT INTO orders (customer, amount, created_at) VALUES ('erin', 1, '2024-03-02');
SAVEPOINT s1;
INSERT INTO orders (customer, amount, created_at) VALUES ('frank', 2, '2024-03-03');
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
COMMIT;
SELECT customer FROM orders ORDER BY id;
-- an error inside a transaction, then ROLLBACK
BEGIN;
INSERT INTO orders (customer, amount, created_at) VALUES ('gina', 3, '2024-03-04');
INSERT INTO orders (customer, status, amount, created_at) VALUES ('hank', 'lost', 4, '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
SELECT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) FROM orders WHERE customer = 'gina';

-- errors
SELECT 1/0;
SELECT nosuch FROM orders;
SELECT * FROM no_such_table;
SELEC 1;
INSERT INTO orders (id, customer, amount, created_at) VALUES (1, 'dup', 1, '2024-04-01');
INSERT INTO orders (customer, amount, created_at) VALUES (NULL, 1, '2024-04-02');
SELECT 'abc'::int;
SELECT repeat('x', 3) || 1 + 'y';
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
DO $$BEGIN RAISE NOTICE 'notice with %', 'a value'; RAISE WARNING 'a warning' USING HINT = 'some hint'; END$$;
DO $$BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = '22023', DETAIL = 'the detail'; END$$;

-- several statements in one Query message, and empty statements
SELECT 1 AS a \; SELECT 2 AS b \; SELECT 3 AS c;
;
SELECT 'after empty';

-- \copy out and in
\copy (SELECT id, customer, amount, tags, meta FROM orders ORDER BY id) TO 'orders_out.csv' WITH (FORMAT csv, HEADER)
CREATE TABLE imported (id int, customer text, amount numeric, tags text[], meta jsonb);
\copy imported FROM 'orders_out.csv' WITH (FORMAT csv, HEADER)
SELECT * FROM imported ORDER BY id;
\copy imported FROM 'orders_bad.csv' WITH (FORMAT csv)
\copy imported TO 'imported_out.txt'
-- COPY FROM STDIN inline
COPY imported (id, customer) FROM STDIN;
100	inline one
101	inline two
\.
SELECT id, customer FROM imported WHERE id >= 100 ORDER BY id;

-- \gdesc, \gset, \gexec
SELECT id, customer, amount * 2 AS doubled, created_at::date AS day, tags, meta -> 'n' AS n FROM orders \gdesc
SELECT $1::int AS p \gdesc
SELECT count(*) AS n, max(amount) AS top FROM orders \gset
\echo n=:n top=:top
SELECT format('SELECT %L AS generated', customer) FROM orders ORDER BY id LIMIT 2 \gexec

-- settings and types
SET DateStyle = 'SQL, DMY';
SELECT '2024-07-04'::date, '2024-07-04 05:06:07+00'::timestamptz, interval '1 day 2 hours';
RESET DateStyle;
SET extra_float_digits = 0;
SELECT 1.0::float8 / 3, 0.1::float4;
RESET extra_float_digits;
SELECT 1.0::float8 / 3, 0.1::float4;
SELECT NULL::int AS nothing, ''::text AS empty, E'tab\there' AS tab, 'ünïcödé ✓' AS uni;
\pset null '(null)'
\pset format unaligned
SELECT NULL::int AS nothing, 'x' AS v;
\pset format aligned
\x on
SELECT * FROM orders WHERE id = 1;
\x off

-- cursors
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM orders ORDER BY id;
FETCH 2 FROM c;
FETCH ALL FROM c;
CLOSE c;
COMMIT;

-- prepared statements at the SQL level
PREPARE by_customer (text) AS SELECT id, amount FROM orders WHERE customer = $1;
EXECUTE by_customer('alice');
EXECUTE by_customer('nobody');
DEALLOCATE by_customer;
EXECUTE by_customer('alice');

-- cleanup
DROP VIEW paid_orders;
DROP TABLE orders, imported;
\echo done
