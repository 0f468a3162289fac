package main

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// rollupsYAML declares the shop's joins and the four rollups the demo
// builds. deploy/pgrollup/pgrollup.yaml (docker compose) declares the same;
// a test keeps them equal.
//
// Each rollup serves a different part of the dashboard:
//   - orders_daily_by_status_country: status and country breakdowns, and
//     averages (avg comes from sum and count of the same column);
//   - orders_daily_by_category: product categories;
//   - orders_monthly_customers: distinct customers per month and country,
//     which only a rollup with the same grain and filter can answer;
//   - orders_hourly: the smallest one for totals over time and the hour of day.
const rollupsYAML = `tables:
  - name: public.orders
    joins:
      - table: public.customers
        on: orders.customer_id = customers.id
        type: left
        relationship: many_to_one
      - table: public.products
        on: orders.product_id = products.id
        type: left
        relationship: many_to_one
rollups:
  - name: orders_daily_by_status_country
    table: public.orders
    dimensions: [status, customers.country]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), count(amount), min(amount), max(amount)]
    refresh:
      every: 1h
  - name: orders_daily_by_category
    table: public.orders
    dimensions: [status, products.category]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), count(amount)]
    refresh:
      every: 1h
  - name: orders_monthly_customers
    table: public.orders
    dimensions: [customers.country]
    time_dimension: created_at
    granularity: month
    measures: [sum(amount), count(*), count(distinct customer_id)]
    filters: ["status <> 'cancelled'"]
    refresh:
      every: 1h
  - name: orders_hourly
    table: public.orders
    dimensions: []
    time_dimension: created_at
    granularity: hour
    measures: [sum(amount), count(*), count(amount)]
    refresh:
      every: 15m
`

// demoConfig is the whole pgrollup config of the demo (docs/configuration.md).
func demoConfig(o options, warehouseDSN, dataDir string) string {
	q := strconv.Quote
	return `# Written by make demo (demo/main.go) on every run; edits are lost.
listen: ` + q(o.listen) + `
warehouse:
  dsn: ` + q(warehouseDSN) + `   # the throw-away cluster's superuser: the service account for builds
data_dir: ` + q(dataDir) + `
storage:
  url: ` + q("file://"+filepath.Join(dataDir, "rollups")) + `
worker:
  cache_dir: ` + q(filepath.Join(dataDir, "cache")) + `
  duckdb_memory_limit: 1GB
admin:
  listen: ` + q(o.admin) + `
auth:
  cleartext_without_tls: ` + q(o.cleartext) + `
tls:
  self_signed: ` + fmt.Sprint(o.selfSigned) + `
build_timezone: UTC
` + rollupsYAML
}
