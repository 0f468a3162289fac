package main

import (
	"fmt"
	"strconv"
)

// query is one of the Star Schema Benchmark's 13 queries.
type query struct {
	id  string // "Q1.1"
	sql string
	// rollup is the rollup declared for this query (rollupsYAML): the one
	// whose decision is reported when the statement passes through.
	rollup string
	// orderKeys are the 0-based output columns of the ORDER BY. Rows tied on
	// them may come in any order, so answers are compared as sorted lists
	// and, separately, by the sequence of these columns.
	orderKeys []int
}

// queries are the 13 SSB queries with the text of P. O'Neil, E. O'Neil,
// X. Chen, "Star Schema Benchmark", revision 3 (June 5, 2009), section 3.1,
// as the common implementations run them (the ssb-dbgen and ClickHouse
// versions): implicit joins in FROM, the date dimension named dwdate because
// date is a reserved word, and sum(lo_revenue) named revenue in flight 3 and
// sum(lo_revenue - lo_supplycost) named profit in flight 4. Only the white
// space differs from the paper. They are sent as written: no alias, no
// rewording to help pgrollup.
var queries = []query{
	// Flight 1: one dimension (the date) and restrictions on the fact table.
	{id: "Q1.1", rollup: "ssb_flight1", sql: `select sum(lo_extendedprice*lo_discount) as revenue
from lineorder, dwdate
where lo_orderdate = d_datekey
  and d_year = 1993
  and lo_discount between 1 and 3
  and lo_quantity < 25`},
	{id: "Q1.2", rollup: "ssb_flight1", sql: `select sum(lo_extendedprice*lo_discount) as revenue
from lineorder, dwdate
where lo_orderdate = d_datekey
  and d_yearmonthnum = 199401
  and lo_discount between 4 and 6
  and lo_quantity between 26 and 35`},
	{id: "Q1.3", rollup: "ssb_flight1", sql: `select sum(lo_extendedprice*lo_discount) as revenue
from lineorder, dwdate
where lo_orderdate = d_datekey
  and d_weeknuminyear = 6
  and d_year = 1994
  and lo_discount between 5 and 7
  and lo_quantity between 26 and 35`},

	// Flight 2: restrictions on two dimensions, grouped by brand and year.
	{id: "Q2.1", rollup: "ssb_flight2", orderKeys: []int{1, 2}, sql: `select sum(lo_revenue), d_year, p_brand1
from lineorder, dwdate, part, supplier
where lo_orderdate = d_datekey
  and lo_partkey = p_partkey
  and lo_suppkey = s_suppkey
  and p_category = 'MFGR#12'
  and s_region = 'AMERICA'
group by d_year, p_brand1
order by d_year, p_brand1`},
	{id: "Q2.2", rollup: "ssb_flight2", orderKeys: []int{1, 2}, sql: `select sum(lo_revenue), d_year, p_brand1
from lineorder, dwdate, part, supplier
where lo_orderdate = d_datekey
  and lo_partkey = p_partkey
  and lo_suppkey = s_suppkey
  and p_brand1 between 'MFGR#2221' and 'MFGR#2228'
  and s_region = 'ASIA'
group by d_year, p_brand1
order by d_year, p_brand1`},
	{id: "Q2.3", rollup: "ssb_flight2", orderKeys: []int{1, 2}, sql: `select sum(lo_revenue), d_year, p_brand1
from lineorder, dwdate, part, supplier
where lo_orderdate = d_datekey
  and lo_partkey = p_partkey
  and lo_suppkey = s_suppkey
  and p_brand1 = 'MFGR#2239'
  and s_region = 'EUROPE'
group by d_year, p_brand1
order by d_year, p_brand1`},

	// Flight 3: customer, supplier and date, by nation and then city.
	{id: "Q3.1", rollup: "ssb_flight3_nation", orderKeys: []int{2, 3}, sql: `select c_nation, s_nation, d_year, sum(lo_revenue) as revenue
from customer, lineorder, supplier, dwdate
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_orderdate = d_datekey
  and c_region = 'ASIA'
  and s_region = 'ASIA'
  and d_year >= 1992 and d_year <= 1997
group by c_nation, s_nation, d_year
order by d_year asc, revenue desc`},
	{id: "Q3.2", rollup: "ssb_flight3_city", orderKeys: []int{2, 3}, sql: `select c_city, s_city, d_year, sum(lo_revenue) as revenue
from customer, lineorder, supplier, dwdate
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_orderdate = d_datekey
  and c_nation = 'UNITED STATES'
  and s_nation = 'UNITED STATES'
  and d_year >= 1992 and d_year <= 1997
group by c_city, s_city, d_year
order by d_year asc, revenue desc`},
	{id: "Q3.3", rollup: "ssb_flight3_city", orderKeys: []int{2, 3}, sql: `select c_city, s_city, d_year, sum(lo_revenue) as revenue
from customer, lineorder, supplier, dwdate
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_orderdate = d_datekey
  and (c_city='UNITED KI1' or c_city='UNITED KI5')
  and (s_city='UNITED KI1' or s_city='UNITED KI5')
  and d_year >= 1992 and d_year <= 1997
group by c_city, s_city, d_year
order by d_year asc, revenue desc`},
	{id: "Q3.4", rollup: "ssb_flight3_month", orderKeys: []int{2, 3}, sql: `select c_city, s_city, d_year, sum(lo_revenue) as revenue
from customer, lineorder, supplier, dwdate
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_orderdate = d_datekey
  and (c_city='UNITED KI1' or c_city='UNITED KI5')
  and (s_city='UNITED KI1' or s_city='UNITED KI5')
  and d_yearmonth = 'Dec1997'
group by c_city, s_city, d_year
order by d_year asc, revenue desc`},

	// Flight 4: all four dimensions, profit.
	{id: "Q4.1", rollup: "ssb_flight4_nation", orderKeys: []int{0, 1}, sql: `select d_year, c_nation, sum(lo_revenue - lo_supplycost) as profit
from dwdate, customer, supplier, part, lineorder
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_partkey = p_partkey
  and lo_orderdate = d_datekey
  and c_region = 'AMERICA'
  and s_region = 'AMERICA'
  and (p_mfgr = 'MFGR#1' or p_mfgr = 'MFGR#2')
group by d_year, c_nation
order by d_year, c_nation`},
	{id: "Q4.2", rollup: "ssb_flight4_nation", orderKeys: []int{0, 1, 2}, sql: `select d_year, s_nation, p_category, sum(lo_revenue - lo_supplycost) as profit
from dwdate, customer, supplier, part, lineorder
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_partkey = p_partkey
  and lo_orderdate = d_datekey
  and c_region = 'AMERICA'
  and s_region = 'AMERICA'
  and (d_year = 1997 or d_year = 1998)
  and (p_mfgr = 'MFGR#1' or p_mfgr = 'MFGR#2')
group by d_year, s_nation, p_category
order by d_year, s_nation, p_category`},
	{id: "Q4.3", rollup: "ssb_flight4_city", orderKeys: []int{0, 1, 2}, sql: `select d_year, s_city, p_brand1, sum(lo_revenue - lo_supplycost) as profit
from dwdate, customer, supplier, part, lineorder
where lo_custkey = c_custkey
  and lo_suppkey = s_suppkey
  and lo_partkey = p_partkey
  and lo_orderdate = d_datekey
  and c_region = 'AMERICA'
  and s_nation = 'UNITED STATES'
  and (d_year = 1997 or d_year = 1998)
  and p_category = 'MFGR#14'
group by d_year, s_city, p_brand1
order by d_year, s_city, p_brand1`},
}

// rollupsYAML is the tables: and rollups: part of pgrollup's config: the
// star declared once (every join inner and many-to-one, with the conditions
// the queries write), and the rollups a data engineer would declare for the
// four flights: the dimensions each flight filters and groups on, at the
// coarsest level that answers it, and its measure. Flights 3 and 4 get a
// rollup by nation and one by city, because the city-level one is many times
// larger and the nation-level queries should not pay for it; Q3.4's month
// of cities gets its own, larger again (a month has no rows of another).
//
// Q4.3 joins customer (c_region = 'AMERICA') although it reports no customer
// column, so its rollup carries c_region: a rollup built without the inner
// join to customer cannot answer a statement that makes it.
func rollupsYAML() string {
	q := strconv.Quote
	join := func(table, on string) string {
		return fmt.Sprintf("      - {table: public.%s, on: %s, type: inner, relationship: many_to_one}\n", table, q(on))
	}
	rollup := func(name, dims, measure string) string {
		return fmt.Sprintf("  - name: %s\n    table: public.lineorder\n    dimensions: [%s]\n    measures: [%s, count(*)]\n", name, dims, q(measure))
	}
	return "tables:\n  - name: public.lineorder\n    joins:\n" +
		join("dwdate", "lineorder.lo_orderdate = dwdate.d_datekey") +
		join("customer", "lineorder.lo_custkey = customer.c_custkey") +
		join("supplier", "lineorder.lo_suppkey = supplier.s_suppkey") +
		join("part", "lineorder.lo_partkey = part.p_partkey") +
		"rollups:\n" +
		rollup("ssb_flight1", "dwdate.d_year, dwdate.d_yearmonthnum, dwdate.d_weeknuminyear, lo_discount, lo_quantity", "sum(lo_extendedprice * lo_discount)") +
		rollup("ssb_flight2", "dwdate.d_year, part.p_category, part.p_brand1, supplier.s_region", "sum(lo_revenue)") +
		rollup("ssb_flight3_nation", "dwdate.d_year, customer.c_region, customer.c_nation, supplier.s_region, supplier.s_nation", "sum(lo_revenue)") +
		rollup("ssb_flight3_city", "dwdate.d_year, customer.c_nation, customer.c_city, supplier.s_nation, supplier.s_city", "sum(lo_revenue)") +
		rollup("ssb_flight3_month", "dwdate.d_year, dwdate.d_yearmonth, customer.c_city, supplier.s_city", "sum(lo_revenue)") +
		rollup("ssb_flight4_nation", "dwdate.d_year, customer.c_region, customer.c_nation, supplier.s_region, supplier.s_nation, part.p_mfgr, part.p_category", "sum(lo_revenue - lo_supplycost)") +
		rollup("ssb_flight4_city", "dwdate.d_year, customer.c_region, supplier.s_nation, supplier.s_city, part.p_category, part.p_brand1", "sum(lo_revenue - lo_supplycost)")
}
