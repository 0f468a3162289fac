// Generates the corpus statements of the JavaScript query builders: each
// case's builder code is run with the real library and its SQL and bound
// values (as node-postgres sends them: text, type left to the server) are
// written with the code that made them. Run with TZ=UTC (node-postgres
// writes a Date in the process's zone): see ../README.md.
import fs from 'node:fs';
import knexF from 'knex';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Sequelize, Op, fn, col, literal } from 'sequelize';
import pgutils from 'pg/lib/utils.js';


function pkgVersion(name) {
  const dir = new URL('./node_modules/' + name + '/package.json', import.meta.url);
  return JSON.parse(fs.readFileSync(dir)).version;
}

const out = (file, entries) => {
  fs.writeFileSync(new URL('../' + file, import.meta.url), JSON.stringify(entries, null, 2) + '\n');
  console.log(file, entries.length);
};

const param = (v) => {
  const s = pgutils.prepareValue(v);
  return { type: 'unknown', value: s === null ? null : String(s) };
};

// ---- knex --------------------------------------------------------------
const knex = knexF({ client: 'pg' });
const d = (s) => new Date(s);
const knexCases = [
  ['revenue-by-status', `knex('orders').select('status').sum({ revenue: 'amount' }).count({ orders: '*' }).groupBy('status').orderBy('status')`, 'orders_daily'],
  ['status-january', `knex('orders').select('status').sum({ revenue: 'amount' }).where('created_at', '>=', d('2024-01-01T00:00:00Z')).andWhere('created_at', '<', d('2024-02-01T00:00:00Z')).groupBy('status')`, 'orders_daily'],
  ['paid-by-country', `knex('orders').leftJoin('customers', 'orders.customer_id', 'customers.id').select('customers.country').sum({ revenue: 'orders.amount' }).where('orders.status', 'paid').groupBy('customers.country').orderBy('revenue', 'desc')`, 'paid_by_country'],
  ['monthly', `knex('orders').select(knex.raw("date_trunc('month', created_at) as month")).count({ n: '*' }).sum({ qty: 'quantity' }).groupByRaw('1').orderBy('month')`, 'orders_daily'],
  ['status-in', `knex('orders').select('status').count({ n: '*' }).whereIn('status', ['paid', 'shipped', 'new']).groupBy('status')`, 'orders_daily'],
  ['avg-amount', `knex('orders').select('status').avg({ avg_amount: 'amount' }).groupBy('status')`, 'orders_daily'],
  ['top-statuses', `knex('orders').select('status').sum({ revenue: 'amount' }).groupBy('status').orderBy('revenue', 'desc').limit(3)`, 'orders_daily'],
  ['page-2', `knex('orders').select('status').count({ n: '*' }).groupBy('status').orderBy('status').limit(3).offset(3)`, 'orders_daily'],
  ['having', `knex('orders').select('status').sum({ revenue: 'amount' }).groupBy('status').having(knex.raw('sum(amount) > ?', [1000]))`, 'orders_daily'],
  ['local-day-range', `knex('orders').select('status').count({ n: '*' }).where('local_ts', '>=', d('2024-03-01T00:00:00Z')).andWhere('local_ts', '<', d('2024-04-01T00:00:00Z')).groupBy('status')`, 'orders_local_daily'],
  ['order-date-between', `knex('orders').count({ n: '*' }).sum({ revenue: 'amount' }).whereBetween('order_date', ['2024-01-01', '2024-01-31'])`, 'orders_by_order_date'],
  ['hourly-day', `knex('orders').select(knex.raw("date_trunc('hour', created_at) as hour")).sum({ price: 'price' }).where('created_at', '>=', d('2024-03-31T00:00:00Z')).andWhere('created_at', '<', d('2024-04-01T00:00:00Z')).groupByRaw('1').orderByRaw('1')`, 'orders_hourly'],
  ['region-count', `knex('orders').join('stores', 'orders.store_id', 'stores.id').select('stores.region').count({ n: '*' }).groupBy('stores.region')`, 'orders_region_monthly'],
  ['distinct-customers', `knex('orders').select('status').countDistinct({ customers: 'customer_id' }).groupBy('status')`, null, 'count(DISTINCT customer_id) over several days of the rollup: distinct counts do not add up across its grain'],
  ['region-max', `knex('orders').join('stores', 'orders.store_id', 'stores.id').select('stores.region').max({ biggest: 'amount' }).groupBy('stores.region')`, null, 'max(amount) is not a measure of the region rollup, and the other rollups are not built with the stores join'],
  ['note-like', `knex('orders').count({ n: '*' }).where('note', 'like', 'note 1%')`, null, 'note is not a dimension of any rollup'],
  ['sample', `knex('orders').select('status').count({ n: '*' }).whereRaw('random() < ?', [0.5]).groupBy('status')`, null, 'random() in the aggregate core is volatile'],
  ['order-date-from-js-date', `knex('orders').select('status').count({ n: '*' }).where('order_date', '>=', d('2024-02-01T00:00:00Z')).andWhere('order_date', '<', d('2024-03-01T00:00:00Z')).groupBy('status')`, 'orders_by_order_date'],
  ['stores-first', `knex.select('stores.region').count({ n: '*' }).from(knex.raw('??, ??', ['stores', 'orders'])).whereRaw('?? = ??', ['orders.store_id', 'stores.id']).groupBy('stores.region')`, 'orders_region_monthly'],
  ['customers-first', `knex.select('customers.country').count({ n: '*' }).from(knex.raw('??, ??', ['customers', 'orders'])).whereRaw('?? = ??', ['orders.customer_id', 'customers.id']).groupBy('customers.country')`, null, 'an inner join of customers, which the rollups join with the declared left join: orders without a customer would be counted under a NULL country'],
  ['by-customer', `knex('orders').select('customer_id').sum({ revenue: 'amount' }).groupBy('customer_id').orderBy('revenue', 'desc').limit(10)`, null, 'customer_id is not a dimension'],
];

// ---- kysely ------------------------------------------------------------
const db = new Kysely({ dialect: new PostgresDialect({ pool: { connect() { throw new Error('compile only'); }, end() {} } }) });
const kyselyCases = [
  ['revenue-by-status', `db.selectFrom('orders').select(['status', (eb) => eb.fn.sum('amount').as('revenue'), (eb) => eb.fn.countAll().as('n')]).groupBy('status').orderBy('status')`, 'orders_daily'],
  ['paid-filter', `db.selectFrom('orders').select([(eb) => eb.fn.sum('amount').as('revenue')]).where('status', '=', 'paid')`, 'paid_by_country'],
  ['week-range', `db.selectFrom('orders').select(['status', (eb) => eb.fn.count('amount').as('n')]).where('created_at', '>=', d('2024-05-06T00:00:00Z')).where('created_at', '<', d('2024-05-13T00:00:00Z')).groupBy('status')`, 'orders_daily'],
  ['month-bucket', `db.selectFrom('orders').select([sql\`date_trunc('month', created_at)\`.as('month'), (eb) => eb.fn.sum('quantity').as('qty')]).where('status', 'in', ['paid', 'shipped']).groupBy(sql\`date_trunc('month', created_at)\`).orderBy('month')`, 'orders_daily'],
  ['country-join', `db.selectFrom('orders').leftJoin('customers', 'customers.id', 'orders.customer_id').select(['customers.country', (eb) => eb.fn.countAll().as('n')]).groupBy('customers.country').orderBy('n', 'desc')`, 'orders_daily'],
  ['segment-minmax', `db.selectFrom('orders').leftJoin('customers', 'customers.id', 'orders.customer_id').select(['customers.segment', (eb) => eb.fn.min('amount').as('lo'), (eb) => eb.fn.max('amount').as('hi')]).groupBy('customers.segment')`, 'orders_daily'],
  ['avg-price', `db.selectFrom('orders').select(['status', (eb) => eb.fn.avg('price').as('avg_price')]).groupBy('status')`, 'orders_daily'],
  ['local-day', `db.selectFrom('orders').select([sql\`date_trunc('day', local_ts)\`.as('day'), (eb) => eb.fn.countAll().as('n')]).where('local_ts', '>=', d('2024-10-01T00:00:00Z')).where('local_ts', '<', d('2024-10-08T00:00:00Z')).groupBy(sql\`date_trunc('day', local_ts)\`).orderBy('day')`, 'orders_local_daily'],
  ['status-limit', `db.selectFrom('orders').select(['status', (eb) => eb.fn.sum('amount').as('revenue')]).groupBy('status').orderBy('revenue', 'desc').limit(5)`, 'orders_daily'],
  ['last-7-days', `db.selectFrom('orders').select(['status', (eb) => eb.fn.countAll().as('n')]).where('created_at', '>=', sql\`current_date - 7\`).groupBy('status')`, 'orders_daily'],
  ['rolling-7-days', `db.selectFrom('orders').select(['status', (eb) => eb.fn.countAll().as('n')]).where('created_at', '>=', sql\`now() - interval '7 days'\`).groupBy('status')`, null, 'now() - 7 days is not on a bucket edge of any rollup'],
  ['stores-first', `db.selectFrom(['stores', 'orders']).select(['stores.region', (eb) => eb.fn.sum('orders.amount').as('revenue')]).whereRef('orders.store_id', '=', 'stores.id').groupBy('stores.region')`, 'orders_region_monthly'],
  ['amount-bucket', `db.selectFrom('orders').select([sql\`floor(amount / 100)\`.as('bucket'), (eb) => eb.fn.countAll().as('n')]).groupBy(sql\`floor(amount / 100)\`)`, null, 'amount is a measure, not a dimension: buckets of it are not in any rollup'],
  ['quantity-dim', `db.selectFrom('orders').select(['quantity', (eb) => eb.fn.countAll().as('n')]).groupBy('quantity')`, null, 'quantity is not a dimension of any corpus rollup'],
];

// ---- sequelize ---------------------------------------------------------
// Sequelize writes values into the text (no bound parameters for finders)
// and runs `SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE` on connect
// (lib/dialects/postgres/connection-manager.js): the "sequelize" session.
const sequelize = new Sequelize('postgres://u:p@localhost:1/db', { dialect: 'postgres', logging: false });
const Order = sequelize.define('orders', {
  id: { type: 'INTEGER', primaryKey: true }, status: 'TEXT', amount: 'NUMERIC(12,2)', price: 'DOUBLE PRECISION', quantity: 'INTEGER',
  customer_id: 'INTEGER', store_id: 'INTEGER', created_at: 'TIMESTAMPTZ', order_date: 'DATEONLY', local_ts: 'TIMESTAMP',
}, { tableName: 'orders', timestamps: false });
const qg = sequelize.getQueryInterface().queryGenerator;
const seqSelect = (opts) => qg.selectQuery('orders', opts, Order);
const sequelizeCases = [
  ['revenue-by-status', `seqSelect({ attributes: ['status', [fn('SUM', col('amount')), 'revenue'], [fn('COUNT', col('id')), 'n']], group: ['status'], order: [['status', 'ASC']] })`, null, 'count(id) counts a column that is not a measure of any rollup (count(*) would be)'],
  ['revenue-count-star', `seqSelect({ attributes: ['status', [fn('SUM', col('amount')), 'revenue'], [fn('COUNT', literal('*')), 'n']], group: ['status'], order: [['status', 'ASC']] })`, 'orders_daily'],
  ['paid-total', `seqSelect({ attributes: [[fn('SUM', col('amount')), 'total']], where: { status: 'paid' } })`, 'paid_by_country'],
  ['range', `seqSelect({ attributes: ['status', [fn('COUNT', literal('*')), 'n']], where: { created_at: { [Op.gte]: d('2024-02-01T00:00:00Z'), [Op.lt]: d('2024-03-01T00:00:00Z') } }, group: ['status'] })`, 'orders_daily'],
  ['status-in', `seqSelect({ attributes: ['status', [fn('SUM', col('quantity')), 'qty']], where: { status: { [Op.in]: ['paid', 'refunded'] } }, group: ['status'], order: [[literal('qty'), 'DESC']] })`, 'orders_daily'],
  ['month', `seqSelect({ attributes: [[fn('date_trunc', 'month', col('created_at')), 'month'], [fn('SUM', col('amount')), 'revenue']], group: [fn('date_trunc', 'month', col('created_at'))], order: [[literal('1'), 'ASC']] })`, 'orders_daily'],
  ['order-date', `seqSelect({ attributes: ['order_date', [fn('COUNT', literal('*')), 'n']], where: { order_date: { [Op.between]: ['2024-06-01', '2024-06-30'] } }, group: ['order_date'], order: [['order_date', 'ASC']] })`, 'orders_by_order_date'],
  ['not-status', `seqSelect({ attributes: [[fn('COUNT', literal('*')), 'n']], where: { status: { [Op.ne]: 'cancelled' } } })`, 'orders_daily'],
];

function run(list, tool, ver, how, build) {
  const entries = [];
  for (const [id, code, rollup, why] of list) {
    const built = build(eval(code));
    const params = built.params;
    const e = { id: `${tool}-${id}`, tool, version: ver, source: how.replace("CODE", code), sql: built.sql };
    if (params && params.length) e.params = params.map(param);
    if (tool === 'sequelize') e.session = 'sequelize';
    e.answerable = !!rollup;
    if (rollup) e.rollup = rollup; else e.why = why;
    entries.push(e);
  }
  return entries;
}

out('knex.json', run(knexCases, 'knex', pkgVersion('knex'), 'CODE.toSQL().toNative() (client pg)', (q) => {
  const n = q.toSQL().toNative();
  return { sql: n.sql, params: n.bindings };
}));
out('kysely.json', run(kyselyCases, 'kysely', pkgVersion('kysely'), 'CODE.compile() (PostgresDialect)', (q) => {
  const c = q.compile();
  return { sql: c.sql, params: c.parameters };
}));
out('sequelize.json', run(sequelizeCases, 'sequelize', pkgVersion('sequelize'), 'queryGenerator.selectQuery: CODE', (q) => ({ sql: q.replace(/;$/, '') })));
