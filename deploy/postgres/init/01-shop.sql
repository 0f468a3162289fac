-- The demo shop for docker compose: the same tables and rows as `make demo`
-- (demo/data.go; e2e/ops_deploy_test.go checks the schema is the same), with
-- 5,000,000 orders over the last two years. Postgres's entrypoint runs this
-- once, on an empty data volume, with psql; it takes a minute or two, and the
-- service reports healthy only afterwards.
\set ON_ERROR_STOP on

-- pgrollup's service account (warehouse.dsn): it runs the rollup builds and
-- reads the catalog to check client users' privileges.
CREATE ROLE pgrollup LOGIN PASSWORD 'pgrollup';
-- The account for people and BI tools, through pgrollup or directly.
CREATE ROLE demo LOGIN PASSWORD 'demo';
GRANT CONNECT ON DATABASE shop TO pgrollup, demo;

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
GRANT USAGE ON SCHEMA public TO pgrollup;
GRANT SELECT ON customers, products, orders TO pgrollup;

-- A fixed seed: the same rows on every run, in this one session.
SELECT setseed(0.4242);
SELECT date_trunc('day', now()) - interval '730 days' AS start \gset
INSERT INTO customers (id, name, country, signed_up_at)
SELECT g,
       'Customer ' || g,
       CASE WHEN g % 97 = 0 THEN NULL
            ELSE (ARRAY['US','US','US','US','DE','DE','GB','GB','FR','NL','SE','ES','IT','JP','BR','IN','CA','AU'])[1 + floor(random() * 18)::int]
       END,
       :'start'::timestamptz - interval '1 year' + random() * interval '3 years'
FROM generate_series(1, 100000) AS g;
INSERT INTO products (id, name, category, price)
SELECT g,
       'Product ' || g,
       CASE WHEN g % 53 = 0 THEN NULL
            ELSE (ARRAY['Books','Electronics','Garden','Toys','Grocery','Clothing','Sports','Home'])[1 + floor(random() * 8)::int]
       END,
       round((2 + random() * 298)::numeric, 2)
FROM generate_series(1, 2000) AS g;
\echo generating 5,000,000 orders
INSERT INTO orders (id, customer_id, product_id, status, amount, created_at)
SELECT g,
       CASE WHEN g % 10000 = 9 THEN NULL
            WHEN g % 5000 = 17 THEN 100000 + 1000000   -- an orphan: no such customer
            ELSE 1 + floor(random() * 100000)::int
       END,
       1 + floor(random() * 2000)::int,
       CASE WHEN g % 1000 = 3 THEN NULL
            ELSE (ARRAY['completed','completed','completed','completed','completed','completed',
                        'shipped','shipped','pending','cancelled','refunded'])[1 + floor(random() * 11)::int]
       END,
       CASE WHEN g % 1000 = 7 THEN NULL
            ELSE round((1 + random() * random() * 499)::numeric, 2)
       END,
       :'start'::timestamptz + sqrt(random()) * interval '730 days'
FROM generate_series(1, 5000000) AS g;

CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX orders_customer_id ON orders (customer_id);
VACUUM (ANALYZE) customers, products, orders;
