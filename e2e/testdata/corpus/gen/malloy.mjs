// Generates ../malloy.json: Malloy queries compiled to Postgres SQL by the
// real compiler, with the schema read from a scratch Postgres database that
// holds the corpus's tables (see ../README.md). The SQL is what Malloy's
// Postgres connection runs: the compiled query, whose last stage is
// `SELECT row_to_json(finalStage) as row FROM __stage0 AS finalStage`
// (packages/malloy/src/dialect/postgres/postgres.ts sqlFinalStage), in a
// session set to UTC (db-postgres's connection runs SET TIME ZONE 'UTC').
//
// PGHOST, PGPORT, PGUSER and PGDATABASE name the scratch database.
import fs from 'node:fs';
import { Runtime } from '@malloydata/malloy';
import { PostgresConnection } from '@malloydata/db-postgres';

const env = process.env;
const conn = new PostgresConnection('postgres', () => ({}), async () => ({
  host: env.PGHOST || '127.0.0.1', port: Number(env.PGPORT || 5432), username: env.PGUSER || 'postgres',
  databaseName: env.PGDATABASE || 'corpus',
}));
const runtime = new Runtime({ connections: { lookupConnection: async () => conn }, urlReader: { readURL: async () => '' } });
const version = JSON.parse(fs.readFileSync(new URL('./node_modules/@malloydata/malloy/package.json', import.meta.url))).version;

const model = `
source: customers is postgres.table('public.customers') extend { primary_key: id }
source: stores is postgres.table('public.stores') extend { primary_key: id }
source: orders is postgres.table('public.orders') extend {
  join_one: customers with customer_id
  join_one: stores with store_id
  measure:
    total is amount.sum()
    n is count()
    avg_amount is amount.avg()
    qty is quantity.sum()
}`;

const cases = [
  ['by-status', 'run: orders -> { group_by: status; aggregate: total, n }', 'orders_daily'],
  ['month', 'run: orders -> { group_by: m is created_at.month; aggregate: n }', 'orders_daily'],
  ['week', 'run: orders -> { group_by: w is created_at.week; aggregate: total }', 'orders_daily'],
  ['year', 'run: orders -> { group_by: y is created_at.year; aggregate: qty }', 'orders_daily'],
  ['month-filter', 'run: orders -> { where: created_at ? @2024-03; group_by: status; aggregate: n }', 'orders_daily'],
  ['country', 'run: orders -> { group_by: customers.country; aggregate: total }', 'orders_daily'],
  ['avg', 'run: orders -> { group_by: customers.segment; aggregate: avg_amount }', 'orders_daily'],
  ['paid', "run: orders -> { where: status = 'paid'; aggregate: total, n }", 'paid_by_country'],
  ['order-date', 'run: orders -> { where: order_date ? @2024-01; group_by: d is order_date.day; aggregate: n }', 'orders_by_order_date'],
  ['status-in-limit', "run: orders -> { where: status = 'paid' | 'shipped'; group_by: status; aggregate: total; limit: 1 }", 'orders_daily'],
  ['region', 'run: orders -> { group_by: stores.region; aggregate: n }', null,
    "join_one is a LEFT JOIN: the region rollup is built with the declared inner join, which leaves out orders without a store"],
  ['distinct', 'run: orders -> { aggregate: c is count(customer_id) }', null,
    'count(DISTINCT customer_id) over all days: distinct counts do not add up across the rollup grain'],
  ['nest', 'run: orders -> { group_by: status; aggregate: n; nest: by_month is { group_by: m is created_at.month; aggregate: total } }', null,
    'nest: one statement computes two groupings (status, status by month) over the rows cross joined with group sets; no one GROUP BY core'],
];

const entries = [];
for (const [id, query, rollup, why] of cases) {
  const sql = await runtime.loadModel(model).loadQuery(query).getSQL();
  const e = {
    id: 'malloy-' + id, tool: 'malloy', version: '@malloydata/malloy ' + version,
    source: 'runtime.loadModel(model).loadQuery(' + JSON.stringify(query) + ').getSQL() with model ' + JSON.stringify(model.trim()),
    sql: sql.trim(), answerable: !!rollup,
  };
  if (rollup) e.rollup = rollup; else e.why = why;
  entries.push(e);
}
await conn.close();
fs.writeFileSync(new URL('../malloy.json', import.meta.url), JSON.stringify(entries, null, 2) + '\n');
console.log('malloy.json', entries.length);
