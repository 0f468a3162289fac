package rewrite

import (
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
)

// decideCase is one statement and the decision it must get. Every case runs
// three ways (uncached, through an Engine on a cache miss and on a hit, which
// must agree), and every rollup route it gets is run by DuckDB over empty
// Parquet files in the rollup layout, which must accept it.
type decideCase struct {
	name   string
	sql    string
	rollup string     // expected rollup; "" means passthrough
	reason ReasonCode // expected passthrough reason
	zone   string
	params []Param
	now    time.Time // default testNow
	want   []string  // substrings the DuckDB SQL must contain
	files  []string  // the files the route reads, when checked
	// cands: expected codes of individual candidates (ReasonMatched for the chosen one).
	cands map[string]ReasonCode
	cfg   func(*config.Config) // changes the configuration the catalog is built from
	types map[string]string    // column types replacing testTypes
	cat   func(*Catalog)       // changes the built catalog
	sess  func(*Session)       // changes the session
	// bi tags a shape BI tools send (BI-CLIENTS.md); every tag must appear
	// both as a match and as a near-miss that passes through.
	bi string
}

// caseDir is where one test's Parquet files live.
type caseEnv struct {
	t      *testing.T
	dir    string
	shared *Catalog
	engine *Engine
	db     duckDB
}

func runCases(t *testing.T, cases []decideCase) {
	t.Helper()
	env := newCaseEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { env.run(t, c) })
	}
}

func newCaseEnv(t *testing.T) *caseEnv {
	env := &caseEnv{t: t, dir: t.TempDir(), engine: NewEngine(0), db: duckDB{openDuck(t)}}
	env.shared = testCatalog(t)
	writeEmptyRollups(t, env.db.DB, env.shared, env.dir)
	return env
}

// catalog returns the shared catalog, or a fresh one changed as the case says.
func (env *caseEnv) catalog(t *testing.T, c decideCase) *Catalog {
	if c.cfg == nil && c.cat == nil && c.types == nil {
		return env.shared
	}
	cfg := testConfig()
	if c.cfg != nil {
		c.cfg(cfg)
	}
	cat := catalogOf(t, cfg, c.types)
	dir := t.TempDir()
	writeEmptyRollups(t, env.db.DB, cat, dir)
	if c.cat != nil {
		c.cat(cat)
	}
	// Partitions the case names by a bare file name get an empty file in
	// the rollup's layout, so that DuckDB can run the route.
	for _, cr := range cat.rollups() {
		if cr.err != nil {
			continue
		}
		for i, p := range cr.st.Partitions {
			for j, f := range p.Files {
				if filepath.IsAbs(f) {
					continue
				}
				path := filepath.Join(dir, cr.st.Def.Name+"-"+f)
				env.db.copyLayout(t, cr, path)
				cr.st.Partitions[i].Files[j] = path
			}
		}
	}
	return cat
}

func (env *caseEnv) run(t *testing.T, c decideCase) {
	cat := env.catalog(t, c)
	zone := c.zone
	if zone == "" {
		zone = "UTC"
	}
	sess := Session{TimeZone: zone, Params: c.params, Now: c.now}
	if sess.Now.IsZero() {
		sess.Now = testNow
	}
	if c.sess != nil {
		c.sess(&sess)
	}
	tree, err := pg_query.Parse(c.sql)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	d := DecideAnalysis(Analyze(tree), sess, cat)
	for i, how := range []string{"engine, cache miss", "engine, cache hit"} {
		e := env.engine.Decide(c.sql, tree, sess, cat)
		if !reflect.DeepEqual(e, d) {
			t.Fatalf("%s decides differently:\nuncached: %+v\nengine:   %+v", how, d, e)
		}
		_ = i
	}
	for name, code := range c.cands {
		found := false
		for _, cd := range d.Candidates {
			if cd.Rollup == name {
				found = true
				if cd.Reason.Code != code {
					t.Errorf("candidate %s: want %s, got %v", name, code, cd.Reason)
				}
			}
		}
		if !found {
			t.Errorf("candidate %s missing: %+v", name, d.Candidates)
		}
	}
	if c.rollup == "" {
		if d.Outcome != OutcomePassthrough {
			t.Fatalf("want passthrough (%s), got rollup %s: %s", c.reason, d.Rollup, d.SQL)
		}
		if c.reason == "" {
			t.Fatalf("a passthrough case must name its reason; got %v", d.Reason)
		}
		if d.Reason.Code != c.reason {
			t.Fatalf("want reason %s, got %v (candidates %+v)", c.reason, d.Reason, d.Candidates)
		}
		if d.Reason.Message == "" {
			t.Fatalf("reason %s has no message", d.Reason.Code)
		}
		return
	}
	if d.Outcome != OutcomeRollup || d.Rollup != c.rollup {
		t.Fatalf("want rollup %s, got %s %s %v (candidates %+v)", c.rollup, d.Outcome, d.Rollup, d.Reason, d.Candidates)
	}
	for _, w := range c.want {
		if !strings.Contains(d.SQL, w) {
			t.Errorf("SQL lacks %q:\n%s", w, d.SQL)
		}
	}
	if c.files != nil {
		var got []string
		for _, f := range d.Files {
			got = append(got, strings.TrimPrefix(filepath.Base(f), d.Rollup+"-"))
		}
		if !reflect.DeepEqual(got, c.files) {
			t.Errorf("files: want %v, got %v", c.files, got)
		}
	}
	duckAccepts(t, env.db.DB, d)
}

// catalogOf builds the test catalog of a configuration: every rollup built
// and covering all time, with warehouse columns no rollup reads.
// janFeb leaves orders_daily alone, built in two monthly partitions.
func janFeb(c *Catalog) {
	only(c, "orders_daily")
	d := c.Rollups[0]
	d.AllTime = false
	d.Partitions = []Partition{
		{Start: mustDay("2024-01-01"), End: mustDay("2024-02-01"), Files: []string{"a.parquet"}},
		{Start: mustDay("2024-02-01"), End: mustDay("2024-03-01"), Files: []string{"b.parquet"}},
	}
}

// only leaves one rollup active.
func only(c *Catalog, name string) {
	for _, r := range c.Rollups {
		if r.Def.Name != name {
			r.Status, r.Version = StatusPending, ""
		}
	}
}

// withAvg makes orders_daily store avg(amount) and avg(quantity) (m8, m9).
func withAvg(c *config.Config) {
	c.Rollups[0].Measures = append(c.Rollups[0].Measures, "avg(amount)", "avg(quantity)")
}

// monthlyDistinct adds a month-grain rollup storing count(distinct customer_id).
func monthlyDistinct(c *config.Config) {
	c.Rollups = append(c.Rollups, config.Rollup{
		Name: "orders_monthly_distinct", Table: "public.orders",
		Dimensions: []string{"status"}, TimeDimension: "created_at", Granularity: config.Month,
		Measures: []string{"count(distinct customer_id)"},
	})
}

// dateMonthly leaves one rollup: a month-grain rollup of the date column order_date.
func dateMonthly(c *config.Config) {
	c.Rollups = append(c.Rollups[:0], config.Rollup{
		Name: "orders_date_monthly", Table: "public.orders",
		Dimensions: []string{"status"}, TimeDimension: "order_date", Granularity: config.Month,
		Measures: []string{"count(*)"},
	})
}

// yearlyDistinct adds a year-grain rollup storing count(distinct customer_id).
func yearlyDistinct(c *config.Config) {
	c.Rollups = append(c.Rollups, config.Rollup{
		Name: "orders_yearly_distinct", Table: "public.orders",
		Dimensions: []string{"status"}, TimeDimension: "created_at", Granularity: config.Year,
		Measures: []string{"count(distinct customer_id)"},
	})
}

// bigRollup is a rollup with a numeric range filter on a dimension.
func bigRollup() config.Rollup {
	return config.Rollup{
		Name: "orders_big", Table: "public.orders",
		Dimensions: []string{"status", "quantity"}, TimeDimension: "created_at", Granularity: config.Day,
		Measures: []string{"count(*)"}, Filters: []string{"quantity >= 2"},
	}
}

func catalogOf(t testing.TB, cfg *config.Config, override map[string]string) *Catalog {
	t.Helper()
	types := map[string]string{}
	for k, v := range testTypes {
		types[k] = v
	}
	for k, v := range override {
		types[k] = v
	}
	cat, err := NewOfflineCatalog(cfg, types)
	if err != nil {
		t.Fatal(err)
	}
	cat.PartialColumns = false
	cat.TextSortsBytewise = true
	add := func(table string, cols ...Column) {
		tb := cat.Tables[table]
		if tb == nil {
			tb = &Table{Name: table}
			cat.Tables[table] = tb
		}
		for _, c := range cols {
			if tb.column(c.Name) == nil {
				tb.Columns = append(tb.Columns, c)
			}
		}
	}
	// Columns that exist in the warehouse but no rollup reads.
	add("public.orders", Column{Name: "note", Type: plain(pgtype.TextOID)}, Column{Name: "id", Type: plain(pgtype.Int4OID)})
	add("public.customers", Column{Name: "name", Type: plain(pgtype.TextOID)}, Column{Name: "status", Type: plain(pgtype.TextOID)})
	add("public.products", Column{Name: "id", Type: plain(pgtype.Int4OID)})
	for i, r := range cat.Rollups {
		r.Rows = int64(1000 * (i + 1))
	}
	return cat
}

// allCases lists every table case, by rule.
func allCases() map[string][]decideCase {
	return map[string][]decideCase{
		"rule 1 shape":       rule1Cases(),
		"rule 2 columns":     rule2Cases(),
		"rule 3 grain":       rule3Cases(),
		"rule 4 time zones":  rule4Cases(),
		"rule 5 measures":    rule5Cases(),
		"rule 6 filters":     rule6Cases(),
		"rule 7 expressions": rule7Cases(),
		"rule 8 data":        rule8Cases(),
		"rule 9 session":     rule9Cases(),
		"rule 10 choice":     rule10Cases(),
	}
}

func TestRule1Shape(t *testing.T)       { runCases(t, rule1Cases()) }
func TestRule2Columns(t *testing.T)     { runCases(t, rule2Cases()) }
func TestRule3Grain(t *testing.T)       { runCases(t, rule3Cases()) }
func TestRule4TimeZones(t *testing.T)   { runCases(t, rule4Cases()) }
func TestRule5Measures(t *testing.T)    { runCases(t, rule5Cases()) }
func TestRule6Filters(t *testing.T)     { runCases(t, rule6Cases()) }
func TestRule7Expressions(t *testing.T) { runCases(t, rule7Cases()) }
func TestRule8Data(t *testing.T)        { runCases(t, rule8Cases()) }
func TestRule9Session(t *testing.T)     { runCases(t, rule9Cases()) }
func TestRule10Choice(t *testing.T)     { runCases(t, rule10Cases()) }

// TestCaseInventory holds the table to what the rewrite engine promises: at least
// 200 cases, every rule covered, names unique, and every BI shape both
// answered and, in a near-miss, passed through.
func TestCaseInventory(t *testing.T) {
	total := 0
	seen := map[string]bool{}
	match, miss := map[string]int{}, map[string]int{}
	var rules []string
	for rule, cs := range allCases() {
		rules = append(rules, rule)
		if len(cs) < 5 {
			t.Errorf("%s has only %d cases", rule, len(cs))
		}
		for _, c := range cs {
			total++
			if seen[rule+"/"+c.name] {
				t.Errorf("%s: duplicate case name %q", rule, c.name)
			}
			seen[rule+"/"+c.name] = true
			if c.bi == "" {
				continue
			}
			if c.rollup != "" {
				match[c.bi]++
			} else {
				miss[c.bi]++
			}
		}
	}
	sort.Strings(rules)
	for _, r := range rules {
		t.Logf("%-20s %d cases", r, len(allCases()[r]))
	}
	t.Logf("total %d cases", total)
	if total < 200 {
		t.Errorf("%d table cases; at least 200 are required", total)
	}
	// Shapes that must never be answered from a rollup have no match.
	passOnly := map[string]bool{"looker-md5": true}
	for tag := range merge(match, miss) {
		if miss[tag] == 0 {
			t.Errorf("BI shape %s has no near-miss case", tag)
		}
		if match[tag] == 0 && !passOnly[tag] {
			t.Errorf("BI shape %s has no matching case", tag)
		}
	}
}

func merge(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

func rule1Cases() []decideCase {
	return []decideCase{
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
		{name: "cte", bi: "cte", sql: "WITH x AS (SELECT 1) SELECT count(*) FROM orders", reason: ReasonCTE},
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
		{name: "tableau join fact second", bi: "tableau-alias", sql: `SELECT "s"."region" AS "region", COUNT(*) AS "cnt" FROM "public"."stores" "s" INNER JOIN "public"."orders" "o" ON ("s"."id" = "o"."store_id") GROUP BY 1`, rollup: "orders_by_store"},
		{name: "tableau join fact second declared left", bi: "tableau-alias", sql: `SELECT "c"."country" AS "country", COUNT(*) AS "cnt" FROM "public"."customers" "c" INNER JOIN "public"."orders" "o" ON ("o"."customer_id" = "c"."id") GROUP BY 1`, reason: ReasonJoin},
		{name: "inner join missing", sql: "SELECT count(*) FROM orders", rollup: "orders_daily"},
		{name: "right join", sql: "SELECT count(*) FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id", reason: ReasonJoin},
		{name: "using join", sql: "SELECT count(*) FROM orders JOIN customers USING (id)", reason: ReasonJoin},
		{name: "metabase wrapper", bi: "metabase-wrapper", sql: `SELECT "source"."status" AS "status", "source"."count" AS "count" FROM (SELECT "public"."orders"."status" AS "status", COUNT(*) AS "count" FROM "public"."orders" GROUP BY "public"."orders"."status") AS "source" ORDER BY "source"."count" DESC, "source"."status" ASC LIMIT 1048575`, rollup: "orders_daily", want: []string{"LIMIT 1048575", `"w0"."c1" DESC NULLS FIRST`}},
		{name: "evidence wrap", bi: "evidence-wrap", sql: `SELECT * FROM (SELECT status, sum(amount) FROM orders GROUP BY status) AS __ev_limit_wrap LIMIT 1000`, rollup: "orders_daily"},
		{name: "power bi nested", bi: "powerbi-nested", sql: `SELECT "_"."status", "_"."a0" FROM (SELECT "rows"."status", "rows"."a0" FROM (SELECT status, count(*) AS a0 FROM orders GROUP BY status) "rows") "_" LIMIT 1000001`, rollup: "orders_daily"},
		{name: "wrapper with where", sql: `SELECT * FROM (SELECT status, count(*) c FROM orders GROUP BY status) s WHERE c > 1`, reason: ReasonShape},
		{name: "wrapper unknown column", sql: `SELECT s.nope FROM (SELECT status, count(*) c FROM orders GROUP BY status) s`, reason: ReasonUnknownColumn},
		{name: "superset virtual table", bi: "superset-virtual-table", sql: `SELECT status, count(*) FROM (SELECT * FROM orders) AS virtual_table GROUP BY status`, rollup: "orders_daily"},
		{name: "superset virtual table full", bi: "superset-virtual-table", sql: `SELECT DATE_TRUNC('day', created_at) AS __timestamp, status AS status, SUM(amount) AS "SUM(amount)" FROM (SELECT * FROM public.orders WHERE status <> 'cancelled') AS virtual_table WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') GROUP BY status, DATE_TRUNC('day', created_at) ORDER BY "SUM(amount)" DESC LIMIT 10000`,
			rollup: "orders_daily", want: []string{`("r"."d0") <> ('cancelled')`}},
		{name: "virtual table with columns", sql: `SELECT virtual_table.status, count(*) FROM (SELECT status, created_at FROM orders o WHERE o.quantity > 1) virtual_table GROUP BY 1`, rollup: "orders_daily"},
		{name: "virtual table hidden column", bi: "superset-virtual-table", sql: `SELECT status, sum(quantity) FROM (SELECT status, created_at FROM orders) AS virtual_table GROUP BY status`, reason: ReasonUnknownColumn},
		{name: "virtual table hides relation name", sql: `SELECT orders.status, count(*) FROM (SELECT * FROM orders) AS virtual_table GROUP BY 1`, reason: ReasonUnknownColumn},
		{name: "virtual table group by output alias", sql: `SELECT status AS s, count(*) FROM (SELECT status FROM orders) v GROUP BY s`, rollup: "orders_daily"},
		{name: "virtual table group by hidden column", sql: `SELECT status, count(*) FROM (SELECT status FROM orders) v GROUP BY status, quantity`, reason: ReasonUnknownColumn},
		{name: "virtual table filter on hidden column", sql: `SELECT status, count(*) FROM (SELECT status FROM orders WHERE note IS NULL) v GROUP BY 1`, reason: ReasonNotDimension},
		{name: "virtual table selecting a missing column", sql: `SELECT count(*) FROM (SELECT nope FROM orders) v`, reason: ReasonUnknownColumn},
		{name: "virtual table renames", sql: `SELECT s, count(*) FROM (SELECT status AS s FROM orders) v GROUP BY 1`, reason: ReasonShape},
		{name: "virtual table computed column", sql: `SELECT s, count(*) FROM (SELECT upper(status) AS s FROM orders) v GROUP BY 1`, reason: ReasonShape},
		{name: "virtual table with limit", sql: `SELECT status, count(*) FROM (SELECT * FROM orders LIMIT 100) v GROUP BY 1`, reason: ReasonShape},
		{name: "virtual table with join", sql: `SELECT country, count(*) FROM (SELECT * FROM orders o LEFT JOIN customers c ON o.customer_id = c.id) v GROUP BY 1`, reason: ReasonShape},
		{name: "virtual table without alias", sql: `SELECT status, count(*) FROM (SELECT * FROM orders) GROUP BY 1`, reason: ReasonShape},
		{name: "wrapper over virtual table", sql: `SELECT * FROM (SELECT status, count(*) AS n FROM (SELECT * FROM orders) vt GROUP BY 1) w ORDER BY n DESC LIMIT 5`, rollup: "orders_daily"},
		{name: "cte inlined", bi: "cte", sql: `WITH t AS (SELECT * FROM orders WHERE status = 'paid') SELECT date_trunc('month', created_at), count(*) FROM t GROUP BY 1`, rollup: "orders_daily", want: []string{"= ('paid')"}},
		{name: "cte aggregate wrapped", sql: `WITH agg AS (SELECT status, count(*) AS n FROM orders GROUP BY status) SELECT status, n FROM agg ORDER BY n DESC LIMIT 3`, rollup: "orders_daily", want: []string{"LIMIT 3"}},
		{name: "cte aliased", sql: `WITH t AS (SELECT status, quantity FROM orders) SELECT x.status, sum(x.quantity) FROM t AS x GROUP BY 1`, rollup: "orders_daily"},
		{name: "cte shadowing its table", sql: `WITH orders AS (SELECT * FROM orders WHERE status <> 'cancelled') SELECT status, count(*) FROM orders GROUP BY 1`, rollup: "orders_daily"},
		{name: "two ctes", bi: "cte", sql: `WITH t AS (SELECT * FROM orders), u AS (SELECT * FROM customers) SELECT count(*) FROM t`, reason: ReasonCTE},
		{name: "cte read twice", sql: `WITH t AS (SELECT * FROM orders) SELECT count(*) FROM t, t AS t2`, reason: ReasonCTE},
		{name: "cte with column list", sql: `WITH t(s) AS (SELECT status FROM orders) SELECT s, count(*) FROM t GROUP BY 1`, reason: ReasonCTE},
		{name: "data modifying cte", sql: `WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d`, reason: ReasonCTE},
		{name: "cte not read", sql: `WITH t AS (SELECT * FROM orders) SELECT count(*) FROM orders`, reason: ReasonCTE},
		{name: "fetch next", bi: "looker-fetch-next", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 FETCH NEXT 500 ROWS ONLY", rollup: "orders_daily", want: []string{"LIMIT 500"}},
		{name: "with ties", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 FETCH FIRST 5 ROWS WITH TIES", reason: ReasonShape},
		{name: "grouping sets", sql: "SELECT status, count(*) FROM orders GROUP BY ROLLUP (status)", reason: ReasonShape},
		{name: "not grouped column", sql: "SELECT status, count(*) FROM orders", reason: ReasonShape},
		{name: "select into", sql: "SELECT count(*) INTO t FROM orders", reason: ReasonNotSelect},
		{name: "from only", sql: "SELECT count(*) FROM ONLY orders", reason: ReasonShape},
		{name: "looker fetch next full", bi: "looker-fetch-next", sql: `SELECT orders.status AS "orders.status", COUNT(*) AS "orders.count" FROM public.orders AS orders GROUP BY 1 ORDER BY 2 DESC FETCH NEXT 500 ROWS ONLY`, rollup: "orders_daily", want: []string{"LIMIT 500"}},
		{name: "looker fetch next with ties", bi: "looker-fetch-next", sql: `SELECT orders.status AS "orders.status", COUNT(*) AS "orders.count" FROM public.orders AS orders GROUP BY 1 ORDER BY 2 DESC FETCH NEXT 500 ROWS WITH TIES`, reason: ReasonShape},
		{name: "fetch first with offset", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 OFFSET 10 ROWS FETCH FIRST 20 ROWS ONLY", rollup: "orders_daily", want: []string{"LIMIT 20 OFFSET 10"}},
		{name: "limit all", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT ALL", rollup: "orders_daily"},
		{name: "negative limit", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT -1", reason: ReasonShape},
		{name: "block comment only", sql: "/* grafana ping */", reason: ReasonEmpty},
		{name: "explain", sql: "EXPLAIN SELECT count(*) FROM orders", reason: ReasonNotSelect},
		{name: "show", sql: "SHOW TimeZone", reason: ReasonNotSelect},
		{name: "begin", sql: "BEGIN", reason: ReasonNotSelect},
		{name: "discard all", sql: "DISCARD ALL", reason: ReasonNotSelect},
		{name: "psqlodbc cursor", sql: `declare "SQL_CUR0x1" cursor with hold for SELECT status, count(*) FROM orders GROUP BY 1`, reason: ReasonCursor},
		{name: "close cursor", sql: `CLOSE "SQL_CUR0x1"`, reason: ReasonCursor},
		{name: "table statement", sql: "TABLE orders", reason: ReasonNoAggregate},
		{name: "values", sql: "VALUES (1), (2)", reason: ReasonShape},
		{name: "empty select list", sql: "SELECT FROM orders GROUP BY status", reason: ReasonShape},
		{name: "recursive cte", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM orders", reason: ReasonCTE},
		{name: "database qualified", sql: "SELECT count(*) FROM shop.public.orders", reason: ReasonShape},
		{name: "same alias twice", sql: "SELECT count(*) FROM orders o JOIN customers o ON o.customer_id = o.id", reason: ReasonShape},
		{name: "lateral", sql: "SELECT count(*) FROM orders o, LATERAL (SELECT 1) x", reason: ReasonSubquery},
		{name: "set returning function", sql: "SELECT count(*) FROM generate_series(1, 3)", reason: ReasonShape},
		{name: "group by distinct", sql: "SELECT status, count(*) FROM orders GROUP BY DISTINCT status", reason: ReasonShape},
		{name: "cube", sql: "SELECT status, count(*) FROM orders GROUP BY CUBE (status)", reason: ReasonShape},
		{name: "named window", sql: "SELECT status, count(*) OVER w FROM orders WINDOW w AS (PARTITION BY status)", reason: ReasonWindow},
		{name: "row_number without over", sql: "SELECT row_number() FROM orders GROUP BY status", reason: ReasonWindow},
		{name: "clock_timestamp", sql: "SELECT count(*) FROM orders WHERE created_at < clock_timestamp()", reason: ReasonVolatile},
		{name: "current_setting", sql: "SELECT current_setting('TimeZone'), count(*) FROM orders", reason: ReasonVolatile},
		{name: "for share", sql: "SELECT status FROM orders GROUP BY status FOR SHARE", reason: ReasonLocking},
		{name: "cross join", sql: "SELECT count(*) FROM orders CROSS JOIN customers", reason: ReasonJoin},
		{name: "natural join", sql: "SELECT count(*) FROM orders NATURAL JOIN customers", reason: ReasonJoin},
		{name: "full join", sql: "SELECT count(*) FROM orders o FULL JOIN customers c ON o.customer_id = c.id", reason: ReasonJoin},
		{name: "aliased join", sql: "SELECT count(*) FROM (orders o LEFT JOIN customers c ON o.customer_id = c.id) AS j", reason: ReasonJoin},
		{name: "distinct with join", sql: "SELECT DISTINCT o.status, c.country FROM orders o LEFT JOIN customers c ON o.customer_id = c.id", rollup: "orders_daily"},
		{name: "tableau top n join", bi: "tableau-alias", sql: `SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" INNER JOIN (SELECT "orders"."status" AS "status" FROM "public"."orders" "orders" GROUP BY 1 ORDER BY SUM("orders"."amount") DESC LIMIT 10) "t0" ON ("orders"."status" = "t0"."status") GROUP BY 1`, reason: ReasonJoin},
		{name: "tableau alias", bi: "tableau-alias", sql: `SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, rollup: "orders_daily"},
		{name: "power bi nested four", bi: "powerbi-nested", sql: `SELECT "_"."status", "_"."a0" FROM (SELECT "$Table"."status", "$Table"."a0" FROM (SELECT "rows"."status", "rows"."a0" FROM (SELECT "_"."status", count(*) AS "a0" FROM "public"."orders" "_" GROUP BY "_"."status") "rows") "$Table") "_" ORDER BY "_"."status" LIMIT 1000001`, rollup: "orders_daily", want: []string{"LIMIT 1000001"}},
		{name: "power bi nested filter outside", bi: "powerbi-nested", sql: `SELECT "_"."status", "_"."a0" FROM (SELECT "rows"."status", "rows"."a0" FROM (SELECT status, count(*) AS a0 FROM orders GROUP BY status) "rows") "_" WHERE "_"."a0" > 1`, reason: ReasonShape},
		{name: "metabase wrapper non dimension", bi: "metabase-wrapper", sql: `SELECT "source"."note" AS "note", "source"."count" AS "count" FROM (SELECT "public"."orders"."note" AS "note", COUNT(*) AS "count" FROM "public"."orders" GROUP BY "public"."orders"."note") AS "source" LIMIT 1048575`, reason: ReasonNotDimension},
		{name: "evidence raw rows", bi: "evidence-wrap", sql: `SELECT * FROM (SELECT status, amount FROM orders) AS __ev_limit_wrap LIMIT 1000`, reason: ReasonNoAggregate},
		{name: "wrapper order by inner name", sql: `SELECT s.status FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s ORDER BY s.n DESC`, rollup: "orders_daily", want: []string{`ORDER BY "w0"."c1" DESC`}},
		{name: "wrapper bad ordinal", sql: `SELECT s.status FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s ORDER BY 2`, reason: ReasonShape},
	}
}

func rule2Cases() []decideCase {
	return []decideCase{
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
		{name: "tableau cast text", bi: "tableau-cast-text", sql: `SELECT CAST("orders"."status" AS TEXT) AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, rollup: "orders_daily"},
		{name: "dimension of int", sql: "SELECT quantity, count(*) FROM orders GROUP BY quantity", rollup: "orders_daily"},
		{name: "power bi underscore alias", bi: "powerbi-alias", sql: `SELECT "_"."status", count(*) AS "a0" FROM "public"."orders" "_" GROUP BY "_"."status"`, rollup: "orders_daily"},
		{name: "power bi underscore non dimension", bi: "powerbi-alias", sql: `SELECT "_"."note", count(*) AS "a0" FROM "public"."orders" "_" GROUP BY "_"."note"`, reason: ReasonNotDimension},
		{name: "identity cast of a date", sql: "SELECT order_date::date, count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "identity cast grouped by the column", sql: "SELECT CAST(order_date AS DATE) AS d, count(*) FROM orders GROUP BY order_date", rollup: "orders_by_day"},
		{name: "nested identity casts", sql: "SELECT status::text::text, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "identity cast of an int", sql: "SELECT quantity::integer, CAST(status AS text), count(*) FROM orders GROUP BY quantity, status", rollup: "orders_daily"},
		{name: "cast of text to varchar", sql: "SELECT status::varchar, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "cast of char(n) to bpchar", sql: "SELECT status::bpchar, count(*) FROM orders GROUP BY 1", reason: ReasonExpression,
			types: map[string]string{"public.orders.status": "char(8)"}},
		{name: "tableau cast text non dimension", bi: "tableau-cast-text", sql: `SELECT CAST("orders"."customer_id" AS TEXT) AS "customer_id", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, reason: ReasonNotDimension},
		{name: "superset alias", bi: "superset-alias", sql: `SELECT status AS status, DATE_TRUNC('day', created_at) AS __timestamp, SUM(amount) AS "SUM(amount)" FROM public.orders GROUP BY status, DATE_TRUNC('day', created_at) ORDER BY "SUM(amount)" DESC LIMIT 10000`, rollup: "orders_daily", want: []string{"LIMIT 10000"}},
		{name: "superset alias minute", bi: "superset-alias", sql: `SELECT status AS status, DATE_TRUNC('minute', created_at) AS __timestamp, SUM(amount) AS "SUM(amount)" FROM public.orders GROUP BY status, DATE_TRUNC('minute', created_at) LIMIT 10000`, reason: ReasonTimeBucket},
		{name: "unknown qualifier", sql: "SELECT x.status, count(*) FROM orders GROUP BY 1", reason: ReasonUnknownColumn},
		{name: "schema qualified through alias", sql: "SELECT public.orders.status, count(*) FROM orders o GROUP BY 1", reason: ReasonUnknownColumn},
		{name: "output alias shadowed by input column", sql: "SELECT quantity AS status, count(*) FROM orders GROUP BY status", reason: ReasonShape},
		{name: "joined dimension schema qualified", sql: "SELECT public.customers.country, count(*) FROM public.orders LEFT JOIN public.customers ON orders.customer_id = customers.id GROUP BY 1", rollup: "orders_daily"},
		{name: "filter on joined non dimension", sql: "SELECT count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.name = 'x'", reason: ReasonNotDimension},
		{name: "filter on id", sql: "SELECT count(*) FROM orders WHERE id = 1", reason: ReasonNotDimension},
		{name: "search path", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily", sess: func(s *Session) { s.SearchPath = []string{"other", "public"} }},
		{name: "search path without public", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonNoRollup, sess: func(s *Session) { s.SearchPath = []string{"other"} }},
		{name: "order by unknown column", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY nope", reason: ReasonUnknownColumn},
		{name: "unscaled numeric dimension", sql: "SELECT quantity, count(*) FROM orders GROUP BY 1", reason: ReasonNotDimension, types: map[string]string{"public.orders.quantity": "numeric"}},
		{name: "unscaled numeric dimension in a filter", sql: "SELECT count(*) FROM orders WHERE quantity > 2", reason: ReasonNotDimension, types: map[string]string{"public.orders.quantity": "numeric"}},
		{name: "scaled numeric dimension", sql: "SELECT quantity, count(*) FROM orders WHERE quantity > 2.5 GROUP BY 1 ORDER BY 1", rollup: "orders_daily", types: map[string]string{"public.orders.quantity": "numeric(10,3)"}},
		{name: "having on non dimension", sql: "SELECT status, count(*) FROM orders GROUP BY 1 HAVING max(note) > ''", reason: ReasonMeasure},
	}
}

func rule3Cases() []decideCase {
	return []decideCase{
		{name: "month from day", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "tableau upper unit", bi: "tableau-date-trunc", sql: "SELECT DATE_TRUNC( 'MONTH', CAST(created_at AS TIMESTAMP) ), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "quarter date cast", bi: "tableau-quarter", sql: "SELECT CAST(DATE_TRUNC('QUARTER', CAST(created_at AS DATE)) AS DATE), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
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
		{name: "looker to_char", bi: "looker-to-char", sql: `SELECT TO_CHAR(DATE_TRUNC('month', orders.created_at), 'YYYY-MM') AS "orders.created_month", COUNT(*) AS "orders.count" FROM public.orders AS orders GROUP BY DATE_TRUNC('month', orders.created_at) ORDER BY 1 DESC FETCH NEXT 500 ROWS ONLY`,
			rollup: "orders_daily", want: []string{"printf('%04d', year(v)) || '-' || printf('%02d', month(v))"}},
		{name: "looker to_char month name", bi: "looker-to-char", sql: "SELECT TO_CHAR(DATE_TRUNC('month', created_at), 'Mon YYYY'), count(*) FROM orders GROUP BY DATE_TRUNC('month', created_at)", reason: ReasonExpression},
		{name: "to_char without separators", sql: "SELECT TO_CHAR(DATE_TRUNC('month', created_at), 'YYYYMM'), count(*) FROM orders GROUP BY DATE_TRUNC('month', created_at)", reason: ReasonExpression},
		{name: "to_char seconds past midnight", sql: "SELECT TO_CHAR(DATE_TRUNC('hour', created_at), 'SSSS'), count(*) FROM orders GROUP BY DATE_TRUNC('hour', created_at)", reason: ReasonExpression},
		{name: "to_char fill mode", sql: "SELECT TO_CHAR(DATE_TRUNC('day', created_at), 'FMDD'), count(*) FROM orders GROUP BY DATE_TRUNC('day', created_at)", reason: ReasonExpression},
		{name: "to_char hour", sql: "SELECT to_char(date_trunc('hour', created_at), 'YYYY-MM-DD HH24:MI:SS'), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "to_char of the raw column", sql: "SELECT to_char(created_at, 'YYYY-MM-DD HH24:MI'), count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "to_char of a date", sql: "SELECT to_char(order_date, 'DD/MM/YYYY'), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "grafana epoch five minutes", bi: "grafana-epoch", sql: `SELECT floor(extract(epoch from created_at)/300)*300 AS "time", count(*) FROM orders GROUP BY 1 ORDER BY 1`, reason: ReasonGrain},
		{name: "grafana epoch hour", bi: "grafana-epoch", sql: `SELECT floor(extract(epoch from created_at)/3600)*3600 AS "time", count(*) FROM orders GROUP BY 1 ORDER BY 1`, rollup: "orders_hourly",
			want: []string{`(epoch_us("r"."t") // 1000000)`, "AS DECIMAL(38,0)"}},
		{name: "grafana epoch day", sql: `SELECT floor(extract(epoch from created_at)/86400)*86400 AS "time", min(amount) FROM orders GROUP BY 1`, rollup: "orders_daily"},
		{name: "grafana epoch day date_part", sql: `SELECT floor(date_part('epoch', created_at)/86400)*86400 AS "time", min(amount) FROM orders GROUP BY 1`, rollup: "orders_daily", want: []string{"AS DOUBLE"}},
		{name: "grafana epoch day cut in new york", sql: `SELECT floor(extract(epoch from created_at)/86400)*86400 AS "time", count(*) FROM orders GROUP BY 1`, rollup: "orders_hourly",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/New_York" }, cands: map[string]ReasonCode{"orders_daily": ReasonGrain}},
		{name: "grafana epoch of a date", sql: `SELECT floor(extract(epoch from order_date)/86400)*86400, count(*) FROM orders GROUP BY 1`, rollup: "orders_by_day"},
		{name: "grafana epoch from month grain", sql: `SELECT floor(extract(epoch from local_ts)/86400)*86400, count(*) FROM orders GROUP BY 1`, reason: ReasonGrain},
		{name: "grafana epoch mismatched divisor", sql: `SELECT floor(extract(epoch from created_at)/3600)*60, count(*) FROM orders GROUP BY 1`, reason: ReasonTimeBucket},
		{name: "superset at time zone after trunc", bi: "superset-at-time-zone", sql: "SELECT DATE_TRUNC('month', created_at) AT TIME ZONE 'UTC' AS __timestamp, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "malloy", bi: "malloy-trunc", sql: "SELECT DATE_TRUNC('month', (created_at)::TIMESTAMPTZ AT TIME ZONE 'UTC')::TIMESTAMP, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "tableau minute", bi: "tableau-date-trunc", sql: "SELECT DATE_TRUNC( 'MINUTE', CAST(created_at AS TIMESTAMP) ), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "tableau week from month", bi: "tableau-quarter", sql: "SELECT CAST(DATE_TRUNC('WEEK', CAST(local_ts AS DATE)) AS DATE), count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "tableau quarter of timestamp", bi: "tableau-quarter", sql: "SELECT CAST(DATE_TRUNC('QUARTER', CAST(local_ts AS DATE)) AS DATE), count(*) FROM orders GROUP BY 1", rollup: "orders_local_month"},
		{name: "metabase sunday week", bi: "sunday-week", sql: `SELECT (CAST(DATE_TRUNC('week', ("public"."orders"."created_at" + INTERVAL '1 day')) AS timestamp) + INTERVAL '-1 day') AS "created_at", COUNT(*) AS "count" FROM "public"."orders" GROUP BY 1`, rollup: "orders_daily",
			want: []string{"timezone('UTC', timezone('UTC', \"r\".\"t\") + INTERVAL (1) DAY)"}},
		{name: "sunday week", bi: "sunday-week", sql: "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day' AS week, sum(amount) FROM orders GROUP BY 1 ORDER BY 1", rollup: "orders_daily"},
		{name: "sunday week in berlin from hours", bi: "sunday-week", zone: "Europe/Berlin", sql: "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day' AS week, sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly",
			cands: map[string]ReasonCode{"orders_daily": ReasonTimeZone}},
		{name: "malloy sunday week", bi: "sunday-week", sql: `SELECT DATE_TRUNC('week', base."created_at" + INTERVAL '1' DAY) - INTERVAL '1' DAY as "week", COALESCE(SUM(base."amount"),0) as "total" FROM "public"."orders" as base GROUP BY 1 ORDER BY 1 asc NULLS LAST`, rollup: "orders_daily"},
		{name: "sunday week of a date", sql: "SELECT CAST(DATE_TRUNC('WEEK', CAST(order_date AS DATE) + 1) AS DATE) - 1, count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "sunday week of a timestamp", sql: "SELECT date_trunc('week', local_ts + interval '1 day') - interval '1 day', count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "sunday week from a week rollup", bi: "sunday-week", sql: "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day', count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_weekly_paid": ReasonGrain}},
		{name: "sunday week distinct count", bi: "sunday-week", sql: "SELECT o.status, o.quantity, c.country, date_trunc('week', o.created_at + interval '1 day') - interval '1 day', count(distinct o.customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "sunday week in kolkata", bi: "sunday-week", zone: "Asia/Kolkata", sql: "SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day', count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "week of a shifted time cast to timestamp", sql: "SELECT date_trunc('week', CAST(created_at + interval '1 day' AS timestamp)), count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_weekly_paid": ReasonGrain}},
		{name: "week of a shifted time cast to date", sql: "SELECT date_trunc('week', CAST(created_at + interval '1 day' AS date)), count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_weekly_paid": ReasonGrain}},
		{name: "shifted time read in another zone", sql: "SELECT date_trunc('week', (created_at + interval '1 day') AT TIME ZONE 'Europe/Berlin'), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "hour of a shifted time", sql: "SELECT date_trunc('hour', created_at + interval '1 day'), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "shift by hours", sql: "SELECT date_trunc('week', created_at + interval '6 hours'), count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "shifted raw column", sql: "SELECT created_at + interval '1 day', count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "extract quarter", sql: "SELECT EXTRACT(QUARTER FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "extract dow", sql: "SELECT EXTRACT(DOW FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "extract isodow from week", sql: "SELECT EXTRACT(ISODOW FROM created_at), count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily", cands: map[string]ReasonCode{"orders_weekly_paid": ReasonGrain}},
		{name: "extract minute", sql: "SELECT EXTRACT(MINUTE FROM created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "extract epoch", sql: "SELECT EXTRACT(EPOCH FROM created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "extract week", sql: "SELECT EXTRACT(WEEK FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "extract week from month grain", sql: "SELECT EXTRACT(WEEK FROM local_ts), count(*) FROM orders GROUP BY 1", reason: ReasonGrain},
		{name: "date_part dow", sql: "SELECT date_part('dow', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "unit from parameter", sql: "SELECT date_trunc($1, created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket, params: []Param{{Value: "month"}}},
		{name: "date_trunc with zone argument", sql: "SELECT date_trunc('day', created_at, 'Europe/Berlin'), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "superset at time zone kolkata", bi: "superset-at-time-zone", sql: "SELECT DATE_TRUNC('month', created_at) AT TIME ZONE 'Asia/Kolkata' AS __timestamp, count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "malloy kolkata", bi: "malloy-trunc", sql: "SELECT DATE_TRUNC('month', (created_at)::TIMESTAMPTZ AT TIME ZONE 'Asia/Kolkata')::TIMESTAMP, count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "date_trunc day of date column", sql: "SELECT date_trunc('day', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "hour of date column", sql: "SELECT date_trunc('hour', order_date), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "year from week rollup", sql: "SELECT date_trunc('year', created_at), sum(amount) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily", cands: map[string]ReasonCode{"orders_weekly_paid": ReasonGrain, "orders_hourly": ReasonNotChosen}},
		{name: "tableau year as integer", bi: "extract-as-integer", sql: `SELECT CAST(EXTRACT(YEAR FROM "orders"."created_at") AS INTEGER) AS "yr:created_at:ok", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, rollup: "orders_daily",
			want: []string{"AS DECIMAL(18,0)) AS INTEGER)"}},
		{name: "metabase month of year", bi: "extract-as-integer", sql: `SELECT CAST(extract(month from "public"."orders"."created_at") AS integer) AS "created_at", COUNT(*) AS "count" FROM "public"."orders" GROUP BY CAST(extract(month from "public"."orders"."created_at") AS integer) ORDER BY CAST(extract(month from "public"."orders"."created_at") AS integer) ASC`, rollup: "orders_daily"},
		{name: "extract day as smallint", sql: "SELECT EXTRACT(DAY FROM order_date)::smallint, count(*) FROM orders GROUP BY 1", rollup: "orders_by_day"},
		{name: "date_part year as integer", bi: "extract-as-integer", sql: "SELECT CAST(date_part('year', created_at) AS INTEGER), count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "extract epoch as integer", bi: "extract-as-integer", sql: "SELECT CAST(EXTRACT(EPOCH FROM created_at) AS INTEGER), count(*) FROM orders GROUP BY 1", reason: ReasonTimeBucket},
		{name: "rounded numeric as integer", sql: "SELECT CAST(EXTRACT(YEAR FROM created_at) + 0.5 AS INTEGER), count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
	}
}

func rule4Cases() []decideCase {
	return []decideCase{
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
		{name: "metabase report zone", zone: "America/Los_Angeles", sql: `SELECT DATE_TRUNC('month', "public"."orders"."created_at") AS "created_at", COUNT(*) AS "count" FROM "public"."orders" GROUP BY 1`, rollup: "orders_hourly",
			want: []string{"timezone('America/Los_Angeles', date_trunc('month', timezone('America/Los_Angeles', \"r\".\"t\")))"}},
		{name: "kathmandu", zone: "Asia/Kathmandu", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "adelaide", zone: "Australia/Adelaide", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "lord howe half hour dst", zone: "Australia/Lord_Howe", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "lower case utc", zone: "utc", sql: "SELECT date_trunc('month', created_at), count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "zone name in wrong case", zone: "europe/berlin", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "offset zone as a number", zone: "+02", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "sequelize interval zone", bi: "offset-zone", zone: "<+00>-00", sql: "SELECT date_trunc('day', created_at), count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "sequelize interval zone without time", bi: "offset-zone", zone: "<+00>-00", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "startup option offset zone", bi: "offset-zone", zone: "+00:00", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders WHERE created_at >= '2024-01-01' GROUP BY 1", rollup: "orders_daily"},
		{name: "offset zone east from hours", bi: "offset-zone", zone: "<+02>-02", sql: "SELECT date_trunc('day', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly",
			cands: map[string]ReasonCode{"orders_daily": ReasonTimeZone}, want: []string{"timezone('Etc/GMT-2', date_trunc('day', timezone('Etc/GMT-2', \"r\".\"t\")))"}},
		{name: "posix zone west is five hours west", bi: "offset-zone", zone: "UTC+5", sql: "SELECT date_trunc('day', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly",
			want: []string{"timezone('Etc/GMT+5', date_trunc('day', timezone('Etc/GMT+5', \"r\".\"t\")))"}},
		{name: "etc gmt zone", zone: "Etc/GMT-3", sql: "SELECT date_trunc('month', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly", want: []string{"timezone('Etc/GMT-3',"}},
		{name: "offset zone literal read in the zone", zone: "<+02>-02", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01'", rollup: "orders_hourly",
			want: []string{"TIMESTAMPTZ '2023-12-31 22:00:00+00'"}},
		{name: "build zone as an offset", zone: "<+03>-03", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily",
			cfg: func(c *config.Config) { c.BuildTimezone = "Etc/GMT-3" }, cands: map[string]ReasonCode{"orders_hourly": ReasonNotChosen}},
		{name: "half hour offset zone", bi: "offset-zone", zone: "<+05:30>-05:30", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "nameless posix zone with minutes", zone: "+05:30", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "half hour offset days from an hour rollup", bi: "offset-zone", zone: "<+05:30>-05:30", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "half hour offset months of a date", bi: "offset-zone", zone: "<+05:30>-05:30", sql: "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day",
			want: []string{"timezone('UTC', CAST(date_trunc('month', \"r\".\"t\") AS TIMESTAMP) - INTERVAL (19800) SECOND)"}},
		{name: "offset beyond the tz database", zone: "<+15>-15", sql: "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day",
			want: []string{"INTERVAL (54000) SECOND"}},
		{name: "at a half hour offset", sql: "SELECT date_trunc('month', created_at AT TIME ZONE '-05:30'), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "date as an instant at a half hour offset", zone: "-5.5", sql: "SELECT CAST(order_date AS timestamptz), count(*) FROM orders GROUP BY 1", rollup: "orders_by_day",
			want: []string{"timezone('UTC', CAST(\"r\".\"t\" AS TIMESTAMP) - INTERVAL (-19800) SECOND)"}},
		{name: "posix zone with daylight saving", zone: "CET-1CEST,M3.5.0,M10.5.0/3", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "timestamp column any zone", zone: "Europe/Berlin", sql: "SELECT date_trunc('month', local_ts), count(*) FROM orders GROUP BY 1", rollup: "orders_local_month"},
		{name: "at time zone new york", sql: "SELECT date_trunc('day', created_at AT TIME ZONE 'America/New_York'), count(*) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "at time zone kolkata", sql: "SELECT date_trunc('day', created_at AT TIME ZONE 'Asia/Kolkata'), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "timestamp column to timestamptz", sql: "SELECT date_trunc('month', local_ts::timestamptz), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "hour in berlin keeps the repeated hour", zone: "Europe/Berlin", sql: "SELECT date_trunc('hour', created_at), count(*) FROM orders WHERE created_at >= '2023-10-29 00:00:00+00' AND created_at < '2023-10-29 02:00:00+00' GROUP BY 1", rollup: "orders_hourly",
			want: []string{`("r"."t" - (timezone('Europe/Berlin', "r"."t") - date_trunc('hour', timezone('Europe/Berlin', "r"."t"))))`}},
		{name: "hour in new york keeps the repeated hour", zone: "America/New_York", sql: "SELECT date_trunc('hour', created_at), count(*) FROM orders WHERE created_at >= '2023-11-05 04:00:00+00' AND created_at < '2023-11-05 08:00:00+00' GROUP BY 1", rollup: "orders_hourly",
			want: []string{`("r"."t" - (timezone('America/New_York', "r"."t") - date_trunc('hour', timezone('America/New_York', "r"."t"))))`}},
		{name: "hour with a zone argument", sql: "SELECT date_trunc('hour', created_at, 'Europe/Berlin'), sum(amount) FROM orders GROUP BY 1", rollup: "orders_hourly",
			want: []string{`("r"."t" - (timezone('Europe/Berlin', "r"."t") - date_trunc('hour', timezone('Europe/Berlin', "r"."t"))))`}},
		{name: "hour in kolkata from utc hours", zone: "Asia/Kolkata", sql: "SELECT date_trunc('hour', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone},
		{name: "hour in kolkata cut in kolkata", zone: "Asia/Kolkata", sql: "SELECT date_trunc('hour', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_hourly",
			cfg: func(c *config.Config) { c.BuildTimezone = "Asia/Kolkata" }},
		{name: "hour of now in the first pass of berlin's repeated hour", zone: "Europe/Berlin", now: time.Date(2023, 10, 29, 0, 30, 0, 0, time.UTC),
			sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('hour', now())", rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2023-10-29 00:00:00+00'"}},
		{name: "hour of now in the second pass of new york's repeated hour", zone: "America/New_York", now: time.Date(2023, 11, 5, 6, 30, 0, 0, time.UTC),
			sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('hour', now())", rollup: "orders_hourly", want: []string{"TIMESTAMPTZ '2023-11-05 06:00:00+00'"}},
		{name: "second pass of the repeated hour is a boundary in new york", zone: "America/New_York", sql: "SELECT count(*) FROM orders WHERE created_at >= '2023-11-05 01:00:00-05' AND created_at < '2023-11-05 02:00:00-05'", rollup: "orders_hourly",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/New_York" }},
		{name: "extract hour in berlin", zone: "Europe/Berlin", sql: "SELECT EXTRACT(HOUR FROM created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_hourly"},
		{name: "build zone new york", zone: "America/New_York", sql: "SELECT date_trunc('month', created_at), count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure,
			cfg: func(c *config.Config) { c.BuildTimezone = "America/New_York" }, cands: map[string]ReasonCode{"orders_daily": ReasonMeasure}},
		{name: "build zone new york same session", zone: "America/New_York", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_daily",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/New_York" }},
		{name: "build zone new york utc session", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", rollup: "orders_hourly",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/New_York" }, cands: map[string]ReasonCode{"orders_daily": ReasonTimeZone}},
		{name: "build zone kolkata hourly useless elsewhere", sql: "SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1", reason: ReasonTimeZone,
			cfg: func(c *config.Config) { c.BuildTimezone = "Asia/Kolkata" }},
	}
}

func rule5Cases() []decideCase {
	return []decideCase{
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
		{name: "avg without a stored count", bi: "avg", sql: "SELECT avg(amount) FROM orders", reason: ReasonMeasure},
		{name: "avg numeric", bi: "avg", sql: "SELECT status, avg(amount) FROM orders GROUP BY 1", rollup: "orders_daily", cfg: withAvg, want: []string{`replace(CAST(sum("r"."m0_sum") AS VARCHAR)`, `sum("r"."m8_count")`}},
		{name: "avg integer", bi: "avg", sql: "SELECT date_trunc('month', created_at), avg(quantity) AS mean FROM orders GROUP BY 1", rollup: "orders_daily", cfg: withAvg},
		{name: "avg filtered", sql: "SELECT avg(quantity) FILTER (WHERE status = 'paid') FROM orders", rollup: "orders_daily", cfg: withAvg, want: []string{`sum("r"."m9_count") FILTER (WHERE`}},
		{name: "avg in a wrapper", sql: `SELECT "source"."avg" FROM (SELECT status, avg(amount) AS "avg" FROM orders GROUP BY 1) AS "source" ORDER BY "source"."status"`, rollup: "orders_daily", cfg: withAvg},
		{name: "order by avg", bi: "avg", sql: "SELECT status, avg(amount) FROM orders GROUP BY 1 ORDER BY 2", rollup: "orders_daily", cfg: withAvg,
			want: []string{"translate(rpad(split_part(v, '.', 2), 1000, '0'), '0123456789', '9876543210')"}},
		{name: "wrapper order by avg", sql: `SELECT "source"."avg" FROM (SELECT status, avg(amount) AS "avg" FROM orders GROUP BY 1) AS "source" ORDER BY "source"."avg" DESC`, rollup: "orders_daily", cfg: withAvg},
		{name: "superset order by avg label", bi: "superset-order-by-label", sql: `SELECT status AS status, AVG(amount) AS "AVG(amount)" FROM orders GROUP BY status ORDER BY "AVG(amount)" DESC LIMIT 10000`, rollup: "orders_daily", cfg: withAvg},
		{name: "superset order by sum label", bi: "superset-order-by-label", sql: `SELECT status AS status, SUM(amount) AS "SUM(amount)" FROM orders GROUP BY status ORDER BY "SUM(amount)" DESC LIMIT 10000`, rollup: "orders_daily"},
		{name: "order by avg expression", sql: "SELECT status, avg(amount) AS a FROM orders GROUP BY 1 ORDER BY avg(amount) NULLS FIRST, 1", rollup: "orders_daily", cfg: withAvg},
		{name: "superset having avg", bi: "superset-order-by-label", sql: `SELECT status AS status, AVG(amount) AS "AVG(amount)" FROM orders GROUP BY status HAVING AVG(amount) > 10 ORDER BY "AVG(amount)" DESC LIMIT 10000`, reason: ReasonExpression, cfg: withAvg},
		{name: "order by a label that is not in the select list", bi: "superset-order-by-label", sql: `SELECT status, AVG(amount) AS "AVG(amount)" FROM orders GROUP BY status ORDER BY "avg(amount)" DESC`, reason: ReasonUnknownColumn, cfg: withAvg},
		{name: "expression over avg", sql: "SELECT avg(quantity) * 2 FROM orders", reason: ReasonExpression, cfg: withAvg},
		{name: "having avg", sql: "SELECT status FROM orders GROUP BY 1 HAVING avg(quantity) > 2", reason: ReasonExpression, cfg: withAvg},
		{name: "distinct avg", sql: "SELECT DISTINCT status, avg(quantity) FROM orders GROUP BY 1", reason: ReasonExpression, cfg: withAvg},
		{name: "coalesce avg", sql: "SELECT COALESCE(avg(quantity), 0) FROM orders", reason: ReasonExpression, cfg: withAvg},
		{name: "avg of unscaled numeric", sql: "SELECT avg(amount) FROM orders", reason: ReasonMeasure, cfg: withAvg, types: map[string]string{"public.orders.amount": "numeric"}},
		{name: "sum of unscaled numeric", sql: "SELECT sum(amount) FROM orders", reason: ReasonMeasure, types: map[string]string{"public.orders.amount": "numeric"}},
		{name: "min of unscaled numeric stored as text", sql: "SELECT min(amount) FROM orders", reason: ReasonMeasure, types: map[string]string{"public.orders.amount": "numeric"}},
		{name: "avg numeric wider than decimal", sql: "SELECT avg(amount) FROM orders", reason: ReasonMeasure, cfg: withAvg, types: map[string]string{"public.orders.amount": "numeric(40,2)"}},
		{name: "count distinct dimension", sql: "SELECT count(distinct status) FROM orders", rollup: "orders_daily", want: []string{"count(DISTINCT \"r\".\"d0\")"}},
		{name: "count distinct stored exact grain", sql: "SELECT o.status, c.country, quantity, created_at::date, count(distinct customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1,2,3,4", rollup: "orders_daily"},
		{name: "count distinct stored by day of week", sql: "SELECT o.status, c.country, quantity, EXTRACT(DOW FROM created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by iso day of week", sql: "SELECT o.status, c.country, quantity, EXTRACT(ISODOW FROM created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by day of year", sql: "SELECT o.status, c.country, quantity, EXTRACT(DOY FROM created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by day of month", sql: "SELECT o.status, c.country, quantity, EXTRACT(DAY FROM created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by date_part dow", sql: "SELECT o.status, c.country, quantity, date_part('dow', created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by day of week and date", sql: "SELECT o.status, c.country, quantity, created_at::date, EXTRACT(DOW FROM created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4, 5", rollup: "orders_daily"},
		{name: "count distinct stored by date_trunc day", sql: "SELECT o.status, c.country, quantity, date_trunc('day', created_at), count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", rollup: "orders_daily"},
		{name: "count distinct stored with identity casts", sql: "SELECT o.status::text, c.country, quantity::int, created_at::date, count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", rollup: "orders_daily"},
		{name: "count distinct stored by dimension expression", sql: "SELECT upper(o.status), c.country, quantity, created_at::date, count(DISTINCT customer_id) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2, 3, 4", reason: ReasonMeasure},
		{name: "count distinct stored by month of the year", sql: "SELECT status, EXTRACT(MONTH FROM created_at), count(DISTINCT customer_id) FROM orders GROUP BY 1, 2", reason: ReasonMeasure,
			cfg: monthlyDistinct, cands: map[string]ReasonCode{"orders_monthly_distinct": ReasonMeasure}},
		{name: "count distinct stored by month", sql: "SELECT status, date_trunc('month', created_at), count(DISTINCT customer_id) FROM orders GROUP BY 1, 2", rollup: "orders_monthly_distinct", cfg: monthlyDistinct},
		{name: "count distinct stored by year at year grain", sql: "SELECT status, EXTRACT(YEAR FROM created_at), date_part('year', created_at), count(DISTINCT customer_id) FROM orders GROUP BY 1, 2, 3", rollup: "orders_yearly_distinct", cfg: yearlyDistinct},
		{name: "count distinct stored by quarter at month grain", sql: "SELECT status, EXTRACT(QUARTER FROM created_at), count(DISTINCT customer_id) FROM orders GROUP BY 1, 2", reason: ReasonMeasure,
			cfg: monthlyDistinct, cands: map[string]ReasonCode{"orders_monthly_distinct": ReasonMeasure}},
		{name: "count distinct stored coarser", sql: "SELECT status, count(distinct customer_id) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "power bi distinct count", bi: "powerbi-distinct-count", sql: "SELECT count(distinct(status)) + max(case when status is null then 1 else 0 end) FROM orders", rollup: "orders_daily"},
		{name: "filter on dimension", sql: "SELECT count(*) FILTER (WHERE status = 'paid') FROM orders", rollup: "orders_daily", want: []string{"FILTER (WHERE"}},
		{name: "filter on non dimension", sql: "SELECT count(*) FILTER (WHERE note = 'x') FROM orders", reason: ReasonNotDimension},
		{name: "stddev", sql: "SELECT stddev(amount) FROM orders", reason: ReasonMeasure},
		{name: "sum distinct", sql: "SELECT sum(distinct amount) FROM orders", reason: ReasonMeasure},
		{name: "sum of expression", sql: "SELECT sum(amount * 2) FROM orders", reason: ReasonMeasure},
		{name: "string_agg", sql: "SELECT string_agg(status, ',') FROM orders", reason: ReasonMeasure},
		{name: "looker coalesce sum int", bi: "looker-coalesce-sum", sql: "SELECT COALESCE(SUM(quantity), 0) FROM orders", rollup: "orders_daily"},
		{name: "looker coalesce sum numeric", bi: "looker-coalesce-sum", sql: "SELECT COALESCE(SUM(amount), 0) FROM orders", rollup: "orders_daily",
			want: []string{"CASE WHEN (CAST(sum(\"r\".\"m0_sum\") AS DECIMAL(38,2))) IS NULL THEN '0' ELSE"}},
		{name: "malloy coalesce sum ordered", bi: "looker-coalesce-sum", sql: `SELECT base."status" as "status", COALESCE(SUM(base."amount"),0) as "total_amount" FROM "public"."orders" as base GROUP BY 1 ORDER BY 2 desc NULLS LAST`, rollup: "orders_daily",
			want: []string{"ORDER BY list_transform([CASE WHEN"}},
		{name: "coalesce sum same scale", sql: "SELECT status, COALESCE(sum(amount), 0.00) FROM orders GROUP BY 1 ORDER BY 2", rollup: "orders_daily",
			want: []string{"COALESCE(CAST(sum(\"r\".\"m0_sum\") AS DECIMAL(38,2)), CAST('0.00' AS DECIMAL(38,2)))"}},
		{name: "coalesce sum of bigint", sql: "SELECT status, COALESCE(sum(quantity::bigint), 0) FROM orders GROUP BY 1", reason: ReasonMeasure},
		{name: "coalesce sum float", sql: "SELECT status, COALESCE(sum(price), 0) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "coalesce sum in arithmetic", bi: "looker-coalesce-sum", sql: "SELECT status, COALESCE(SUM(amount), 0) + 1 FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "coalesce sum with a column", sql: "SELECT status, COALESCE(SUM(amount), max(amount)) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "sum over count", bi: "sum-over-count", sql: "SELECT status, sum(amount) / count(*) AS avg_amount FROM orders GROUP BY status", rollup: "orders_daily",
			want: []string{"error('division by zero')"}},
		{name: "sum over count of a column", bi: "sum-over-count", sql: "SELECT sum(amount) / count(price) FROM orders", rollup: "orders_daily"},
		{name: "sum over count filtered", sql: "SELECT status, sum(amount) FILTER (WHERE quantity > 1) / count(*) FILTER (WHERE quantity > 1) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "sum over count ordered", bi: "sum-over-count", sql: "SELECT status, sum(amount) / count(*) FROM orders GROUP BY status ORDER BY 2 DESC", rollup: "orders_daily"},
		{name: "sum over count compared", bi: "sum-over-count", sql: "SELECT status, sum(amount) / count(*) FROM orders GROUP BY status HAVING sum(amount) / count(*) > 1", reason: ReasonExpression},
		{name: "sum over sum", bi: "sum-over-count", sql: "SELECT status, sum(amount) / sum(quantity) FROM orders GROUP BY status", reason: ReasonExpression},
		{name: "sum over count times", sql: "SELECT status, sum(amount) / count(*) * 2 FROM orders GROUP BY status", reason: ReasonExpression},
		{name: "md5 symmetric aggregate", bi: "looker-md5", sql: "SELECT sum(DISTINCT (CAST(FLOOR(COALESCE(amount, 0) * 1000000) AS DECIMAL(65,0))) + ('x' || md5(status))::numeric) FROM orders", reason: ReasonMeasure},
		{name: "power bi distinct count non dimension", bi: "powerbi-distinct-count", sql: "SELECT count(distinct(customer_id)) + max(case when customer_id is null then 1 else 0 end) FROM orders", reason: ReasonMeasure},
		{name: "looker symmetric aggregate", bi: "looker-md5", sql: `SELECT COALESCE(CAST( ( SUM(DISTINCT (CAST(FLOOR(COALESCE(orders.amount ,0)*(1000000*1.0)) AS DECIMAL(65,0))) + ('x' || MD5(orders.id::varchar))::bit(64)::bigint::DECIMAL(65,0) *18446744073709551616 + ('x' || SUBSTR(MD5(orders.id::varchar),17))::bit(64)::bigint::DECIMAL(65,0) ) - SUM(DISTINCT ('x' || MD5(orders.id::varchar))::bit(64)::bigint::DECIMAL(65,0) *18446744073709551616 + ('x' || SUBSTR(MD5(orders.id::varchar),17))::bit(64)::bigint::DECIMAL(65,0)) ) AS DOUBLE PRECISION) / CAST((1000000*1.0) AS DOUBLE PRECISION), 0) AS "orders.total_amount" FROM public.orders AS orders LEFT JOIN public.customers AS customers ON orders.customer_id = customers.id`, reason: ReasonExpression},
		{name: "sum filter on dimension", sql: "SELECT sum(amount) FILTER (WHERE status = 'paid') FROM orders", rollup: "orders_daily", want: []string{`sum("r"."m0_sum") FILTER (WHERE`}},
		{name: "count filter on raw time", sql: "SELECT count(*) FILTER (WHERE created_at >= '2024-01-01') FROM orders", reason: ReasonGrain},
		{name: "count filter grouped", sql: "SELECT status, count(*) FILTER (WHERE quantity > 1) FROM orders GROUP BY 1", rollup: "orders_daily", want: []string{"COALESCE(sum(\"r\".\"m1_count\") FILTER (WHERE"}},
		{name: "min of dimension", sql: "SELECT min(status), max(quantity) FROM orders", rollup: "orders_daily"},
		{name: "max of raw time", sql: "SELECT max(created_at) FROM orders", reason: ReasonMeasure},
		{name: "max of time bucket", sql: "SELECT max(date_trunc('day', created_at)) FROM orders", rollup: "orders_daily"},
		{name: "sum float", sql: "SELECT sum(price) FROM orders", rollup: "orders_daily", want: []string{"AS DOUBLE"}},
		{name: "count column not null part", sql: "SELECT count(customer_id) FROM orders", reason: ReasonMeasure},
		{name: "percentile", sql: "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders", reason: ReasonMeasure},
		{name: "array_agg", sql: "SELECT array_agg(status) FROM orders", reason: ReasonMeasure},
		{name: "bool_and", sql: "SELECT bool_and(quantity > 0) FROM orders", reason: ReasonMeasure},
		{name: "sum of cast float", sql: "SELECT sum(amount::float8) FROM orders", reason: ReasonMeasure},
		{name: "numeric plus float", sql: "SELECT sum(amount) + sum(price) FROM orders", rollup: "orders_daily"},
		{name: "count times int", sql: "SELECT count(*) * 2 FROM orders", rollup: "orders_daily"},
		{name: "count distinct filter on dimension", sql: "SELECT count(DISTINCT status) FILTER (WHERE quantity > 1) FROM orders", rollup: "orders_daily"},
		{name: "count distinct expression over dimensions", sql: "SELECT count(DISTINCT CASE WHEN quantity > 2 THEN status END) FROM orders", rollup: "orders_daily"},
		{name: "aggregate in where", sql: "SELECT status FROM orders WHERE count(*) > 1 GROUP BY status", reason: ReasonShape},
		{name: "nested aggregate", sql: "SELECT sum(count(*)) FROM orders", reason: ReasonMeasure},
		{name: "stored filtered measure", sql: "SELECT count(*) FILTER (WHERE status = 'paid') FROM orders", rollup: "orders_daily",
			cfg: func(c *config.Config) {
				c.Rollups[0].Measures = append(c.Rollups[0].Measures, "count(*) FILTER (WHERE status = 'paid')")
			},
			want: []string{`sum("r"."m8_count"), 0)`}},
	}
}

func rule6Cases() []decideCase {
	return []decideCase{
		{name: "equality on dimension", sql: "SELECT count(*) FROM orders WHERE status = 'paid'", rollup: "orders_daily", want: []string{"= ('paid')"}},
		{name: "in list", sql: "SELECT count(*) FROM orders WHERE status IN ('paid', 'new')", rollup: "orders_daily"},
		{name: "is null", sql: "SELECT count(*) FROM orders WHERE status IS NULL", rollup: "orders_daily"},
		{name: "not", sql: "SELECT count(*) FROM orders WHERE NOT (status = 'paid')", rollup: "orders_daily"},
		{name: "or on one dimension", sql: "SELECT count(*) FROM orders WHERE status = 'a' OR status = 'b'", rollup: "orders_daily"},
		{name: "aligned range", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", rollup: "orders_daily"},
		{name: "unaligned range", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01 12:00'", rollup: "orders_hourly"},
		{name: "unaligned for hourly too", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01 12:30'", reason: ReasonUnalignedRange},
		// Havana goes back from 01:00 to 00:00 on 5 November 2023:
		// date_trunc('day') gives the later midnight (05:00 UTC), and the
		// day's rows start at the first (04:00 UTC).
		{name: "a midnight the build zone shows twice is no day edge", zone: "America/Havana", sql: "SELECT count(*) FROM orders WHERE created_at >= '2023-11-05' AND created_at < '2023-11-07'", rollup: "orders_hourly",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/Havana" }, cands: map[string]ReasonCode{"orders_daily": ReasonUnalignedRange}},
		{name: "the day after a midnight the build zone shows twice", zone: "America/Havana", sql: "SELECT count(*) FROM orders WHERE created_at >= '2023-11-06' AND created_at < '2023-11-07'", rollup: "orders_daily",
			cfg: func(c *config.Config) { c.BuildTimezone = "America/Havana" }},
		{name: "javascript dates on a timestamp column", bi: "zone-suffix-on-timestamp", sql: "SELECT status, count(*) FROM orders WHERE local_ts >= '2024-01-01T00:00:00.000Z' AND local_ts < '2024-02-01T00:00:00+05:00' GROUP BY 1", rollup: "orders_local_month",
			want: []string{"TIMESTAMP '2024-01-01 00:00:00'", "TIMESTAMP '2024-02-01 00:00:00'"}},
		{name: "javascript date parameters on a timestamp column", bi: "zone-suffix-on-timestamp", sql: "SELECT count(*) FROM orders WHERE local_ts >= $1 AND local_ts < $2", rollup: "orders_local_month",
			params: []Param{{Value: "2024-01-01T00:00:00.000Z"}, {Type: pgtype.TimestampOID, Value: "2024-03-01t00:00:00z"}}},
		{name: "grafana time filter on a date column", bi: "date-between", sql: "SELECT sum(amount) FROM orders WHERE order_date BETWEEN '2024-01-01T00:00:00Z' AND '2024-06-30T23:59:59Z'", rollup: "orders_by_day",
			want: []string{`"r"."t" >= DATE '2024-01-01'`, `"r"."t" < DATE '2024-07-01'`}},
		{name: "grafana time filter on a date column off the month", bi: "date-between", sql: "SELECT count(*) FROM orders WHERE order_date BETWEEN '2024-01-01T00:00:00Z' AND '2024-06-29T23:59:59Z'", reason: ReasonUnalignedRange,
			cfg: dateMonthly},
		{name: "zone suffix on a date column", sql: "SELECT count(*) FROM orders WHERE order_date >= '2024-01-01T00:00:00Z' AND order_date < '2024-02-01T00:00:00-08:00'", rollup: "orders_by_day"},
		{name: "zone suffix on a timestamp column off the month", bi: "zone-suffix-on-timestamp", sql: "SELECT count(*) FROM orders WHERE local_ts >= '2024-01-01T05:00:00+05:00'", reason: ReasonUnalignedRange},
		{name: "zone suffix on a timestamptz column moves the bound", bi: "zone-suffix-on-timestamp", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01T00:00:00+05:30'", reason: ReasonUnalignedRange},
		{name: "superset to_date bounds", bi: "superset-to-date", sql: "SELECT status, count(*) FROM orders WHERE created_at >= TO_DATE('2024-01-01','YYYY-MM-DD') AND created_at < TO_DATE('2024-02-01','YYYY-MM-DD') GROUP BY status", rollup: "orders_daily",
			want: []string{"TIMESTAMPTZ '2024-01-01 00:00:00+00'", "TIMESTAMPTZ '2024-02-01 00:00:00+00'"}},
		{name: "to_date bound on a date column", sql: "SELECT count(*) FROM orders WHERE order_date >= TO_DATE('2024-01-01','YYYY-MM-DD') AND order_date <= TO_DATE('2024-01-31','YYYY-MM-DD')", rollup: "orders_by_day"},
		{name: "to_date lenient spelling", bi: "superset-to-date", sql: "SELECT count(*) FROM orders WHERE created_at >= TO_DATE('2024-1-1','YYYY-MM-DD')", reason: ReasonFilterNotEvaluable},
		{name: "to_date in another zone", bi: "superset-to-date", zone: "Asia/Kolkata", sql: "SELECT count(*) FROM orders WHERE created_at >= TO_DATE('2024-01-01','YYYY-MM-DD')", reason: ReasonUnalignedRange},
		{name: "interval day qualifier", bi: "malloy-interval", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - INTERVAL '7' DAY AND created_at < current_date + INTERVAL '1' DAY", rollup: "orders_daily",
			want: []string{"TIMESTAMPTZ '2024-03-08 00:00:00+00'", "TIMESTAMPTZ '2024-03-16 00:00:00+00'"}},
		{name: "interval hour qualifier from now", bi: "malloy-interval", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('hour', now()) - INTERVAL '3' HOUR", rollup: "orders_hourly"},
		{name: "make_interval days", bi: "malloy-interval", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - make_interval(days => 7) AND created_at < current_date", rollup: "orders_daily"},
		{name: "make_interval by position", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('month', now()) - make_interval(0, 3)", rollup: "orders_daily"},
		{name: "make_interval from now", bi: "malloy-interval", sql: "SELECT count(*) FROM orders WHERE created_at >= now() - make_interval(days => 7)", reason: ReasonUnalignedRange},
		{name: "make_interval seconds", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - make_interval(secs => 1.5)", reason: ReasonExpression},
		{name: "interval day to hour qualifier", bi: "malloy-interval", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - INTERVAL '1 2' DAY TO HOUR", reason: ReasonFilterNotEvaluable},
		{name: "between dates on a date column", bi: "date-between", sql: "SELECT status, count(*) FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-01-31' GROUP BY 1", rollup: "orders_by_day",
			want: []string{`"r"."t" >= DATE '2024-01-01'`, `"r"."t" < DATE '2024-02-01'`}},
		{name: "between dates on a monthly date rollup", bi: "date-between", sql: "SELECT status, count(*) FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-03-31' GROUP BY 1", rollup: "orders_date_monthly",
			cfg: dateMonthly, want: []string{`"r"."t" < DATE '2024-04-01'`}},
		{name: "tableau inclusive dates on a monthly date rollup", sql: "SELECT count(*) FROM orders WHERE order_date >= (DATE '2024-01-01') AND order_date <= (DATE '2024-01-31') AND order_date > DATE '2023-11-30'", rollup: "orders_date_monthly",
			cfg: dateMonthly},
		{name: "between dates off the month", bi: "date-between", sql: "SELECT count(*) FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-01-30'", reason: ReasonUnalignedRange,
			cfg: dateMonthly},
		{name: "date column after now", bi: "date-between", sql: "SELECT count(*) FROM orders WHERE order_date >= now()", reason: ReasonUnalignedRange},
		{name: "date column before a timestamp", sql: "SELECT count(*) FROM orders WHERE order_date <= TIMESTAMP '2024-01-01 10:00'", reason: ReasonUnalignedRange},
		{name: "date column from the start of the month", sql: "SELECT count(*) FROM orders WHERE order_date >= date_trunc('month', now()) AND order_date <= current_date", rollup: "orders_by_day"},
		// Date input drops the time of day: >= 2024-01-01.
		{name: "time of day on a date column", sql: "SELECT count(*) FROM orders WHERE order_date >= '2024-01-01T10:00:00Z'", rollup: "orders_by_day",
			want: []string{`"r"."t" >= DATE '2024-01-01'`}},
		{name: "inclusive end", sql: "SELECT count(*) FROM orders WHERE created_at <= '2024-01-31'", reason: ReasonUnalignedRange},
		{name: "between timestamp", bi: "grafana-between", sql: "SELECT count(*) FROM orders WHERE created_at BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-31T23:59:59Z'", reason: ReasonUnalignedRange},
		{name: "tableau inclusive date", bi: "tableau-inclusive-date", sql: "SELECT count(*) FROM orders WHERE order_date >= (DATE '2024-01-01') AND order_date <= (DATE '2024-01-31')", rollup: "orders_by_day"},
		{name: "power bi date", bi: "powerbi-alias", sql: `SELECT count(*) FROM orders "_" WHERE "_"."order_date" < date '2024-02-01' and "_"."order_date" >= date '2024-01-01'`, rollup: "orders_by_day"},
		{name: "params metabase", bi: "metabase-params", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", rollup: "orders_daily",
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-01-01 00:00:00+00"}, {Type: pgtype.TimestamptzOID, Value: "2024-02-01 00:00:00+00"}}},
		{name: "params unaligned", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", reason: ReasonUnalignedRange,
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-01-01 00:30:00+00"}, {Type: pgtype.TimestamptzOID, Value: "2024-02-01 00:00:00+00"}}},
		{name: "param missing", sql: "SELECT count(*) FROM orders WHERE created_at >= $1", reason: ReasonParameter},
		{name: "zone shifts alignment", zone: "Europe/Berlin", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", rollup: "orders_hourly"},
		{name: "relative month", bi: "metabase-relative", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('month', (now() + (INTERVAL '-12 month')))", rollup: "orders_daily", want: []string{"2023-03-01 00:00:00+00"}},
		{name: "now minus interval", sql: "SELECT count(*) FROM orders WHERE created_at >= now() - interval '7 days'", reason: ReasonUnalignedRange},
		{name: "current_date", sql: "SELECT count(*) FROM orders WHERE created_at >= current_date - 7", rollup: "orders_daily", want: []string{"2024-03-08 00:00:00+00"}},
		{name: "rollup filter implied exactly", sql: "SELECT date_trunc('month', created_at), count(*) FROM orders WHERE status <> 'cancelled' GROUP BY 1", rollup: "orders_daily"},
		{name: "rollup filter not implied", sql: "SELECT date_trunc('week', created_at), sum(amount) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "like", bi: "like", sql: "SELECT count(*) FROM orders WHERE status LIKE 'p%'", rollup: "orders_daily", want: []string{`("r"."d0") LIKE 'p%' ESCAPE '\'`}},
		{name: "not like", sql: "SELECT status, count(*) FROM orders WHERE status NOT LIKE '%cancel%' GROUP BY 1", rollup: "orders_daily", want: []string{"NOT LIKE"}},
		{name: "like on joined dimension", sql: "SELECT count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.country LIKE 'D_'", rollup: "orders_daily"},
		{name: "like on non dimension", bi: "like", sql: "SELECT count(*) FROM orders WHERE note LIKE 'p%'", reason: ReasonNotDimension},
		{name: "ilike", bi: "like", sql: "SELECT count(*) FROM orders WHERE status ILIKE 'p%'", reason: ReasonFilterNotEvaluable},
		{name: "like escape clause", sql: "SELECT count(*) FROM orders WHERE status LIKE 'a!%' ESCAPE '!'", reason: ReasonFilterNotEvaluable},
		{name: "like trailing escape", sql: `SELECT count(*) FROM orders WHERE status LIKE 'a\'`, reason: ReasonFilterNotEvaluable},
		{name: "like escaped backslash", sql: `SELECT count(*) FROM orders WHERE status LIKE 'a\\'`, rollup: "orders_daily"},
		{name: "like parameter pattern", sql: "SELECT count(*) FROM orders WHERE status LIKE $1", reason: ReasonFilterNotEvaluable, params: []Param{{Value: "p%"}}},
		{name: "like on integer", sql: "SELECT count(*) FROM orders WHERE quantity LIKE '1%'", reason: ReasonFilterNotEvaluable},
		{name: "similar to", sql: "SELECT count(*) FROM orders WHERE status SIMILAR TO 'p%'", reason: ReasonFilterNotEvaluable},
		{name: "text range needs collation", sql: "SELECT count(*) FROM orders WHERE status > 'm'", rollup: "orders_daily"},
		{name: "metabase date params", bi: "metabase-params", sql: `SELECT COUNT(*) AS "count" FROM "public"."orders" WHERE ("public"."orders"."order_date" >= $1) AND ("public"."orders"."order_date" < $2)`, rollup: "orders_by_day",
			params: []Param{{Type: pgtype.DateOID, Value: "2024-01-01"}, {Type: pgtype.DateOID, Value: "2024-01-08"}}},
		{name: "metabase params untyped", bi: "metabase-params", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", rollup: "orders_daily",
			params: []Param{{Value: "2024-01-01"}, {Value: "2024-02-01"}}, want: []string{"TIMESTAMPTZ '2024-01-01 00:00:00+00'"}},
		{name: "metabase params in berlin", bi: "metabase-params", zone: "Europe/Berlin", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", rollup: "orders_hourly",
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-01-01 00:00:00+01"}, {Type: pgtype.TimestamptzOID, Value: "2024-02-01 00:00:00+01"}}, want: []string{"2023-12-31 23:00:00+00"}},
		{name: "metabase params bad text", bi: "metabase-params", sql: "SELECT count(*) FROM orders WHERE (created_at >= $1) AND (created_at < $2)", reason: ReasonFilterNotEvaluable,
			params: []Param{{Value: "yesterday"}, {Value: "2024-02-01"}}},
		{name: "metabase relative both ends", bi: "metabase-relative", sql: `SELECT COUNT(*) AS "count" FROM "public"."orders" WHERE ("public"."orders"."created_at" >= date_trunc('month', (now() + (INTERVAL '-12 month')))) AND ("public"."orders"."created_at" < date_trunc('month', now()))`, rollup: "orders_daily",
			want: []string{"TIMESTAMPTZ '2023-03-01 00:00:00+00'", "TIMESTAMPTZ '2024-03-01 00:00:00+00'"}},
		{name: "metabase relative thirty days", bi: "metabase-relative", sql: `SELECT COUNT(*) AS "count" FROM "public"."orders" WHERE "public"."orders"."created_at" >= (now() + INTERVAL '-30 day')`, reason: ReasonUnalignedRange},
		{name: "looker relative", bi: "looker-relative", sql: `SELECT COUNT(*) FROM public.orders AS orders WHERE orders.created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + INTERVAL '-10 day') AT TIME ZONE 'UTC')`, rollup: "orders_daily", want: []string{"2024-03-05 00:00:00+00"}},
		{name: "looker relative concat interval", bi: "looker-relative", sql: `SELECT COUNT(*) FROM public.orders AS orders WHERE orders.created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + (-10 || ' day')::INTERVAL) AT TIME ZONE 'UTC')`, rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2024-03-05 00:00:00+00'"}},
		{name: "concat interval of two strings", sql: `SELECT COUNT(*) FROM orders WHERE created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + ('-1' || ' month')::INTERVAL) AT TIME ZONE 'UTC')`, rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2024-02-15 00:00:00+00'"}},
		{name: "concat interval with an unknown unit", bi: "looker-relative", sql: `SELECT COUNT(*) FROM orders WHERE created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + (-10 || ' fortnight')::INTERVAL) AT TIME ZONE 'UTC')`, reason: ReasonFilterNotEvaluable},
		// Looker's "is in the past 30 days" as its Explore SQL tab shows it:
		// each bound a scalar subquery with no FROM, compared as a timestamp
		// (read in the session's zone).
		{name: "looker relative scalar subqueries", bi: "looker-relative", sql: `SELECT DATE(orders.created_at) AS "orders.created_date", COALESCE(SUM(orders.quantity), 0) AS "orders.total_quantity" FROM public.orders AS orders WHERE ((( orders.created_at ) >= ((SELECT (DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + (-29 || ' day')::INTERVAL))) AND ( orders.created_at ) < ((SELECT ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + (-29 || ' day')::INTERVAL) + (30 || ' day')::INTERVAL))))) GROUP BY 1 ORDER BY 1 DESC FETCH NEXT 500 ROWS ONLY`,
			rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2024-02-15 00:00:00+00'", "TIMESTAMPTZ '2024-03-16 00:00:00+00'"}},
		{name: "scalar subquery reading a table", sql: `SELECT count(*) FROM orders WHERE created_at >= (SELECT max(created_at) FROM orders)`, reason: ReasonSubquery},
		{name: "scalar subquery with a clause", sql: `SELECT count(*) FROM orders WHERE created_at >= (SELECT now() - interval '1 day' LIMIT 1)`, reason: ReasonSubquery},
		{name: "concat interval of a column", sql: `SELECT COUNT(*) FROM orders WHERE created_at >= ((DATE_TRUNC('day', CURRENT_TIMESTAMP AT TIME ZONE 'UTC') + (quantity || ' day')::INTERVAL) AT TIME ZONE 'UTC')`, reason: ReasonFilterNotEvaluable},
		{name: "tableau inclusive on timestamptz", bi: "tableau-inclusive-date", sql: `SELECT COUNT(*) FROM "public"."orders" "orders" WHERE (("orders"."created_at" >= (DATE '2024-01-01')) AND ("orders"."created_at" <= (DATE '2024-01-31')))`, reason: ReasonUnalignedRange},
		{name: "tableau inclusive on timestamp", bi: "tableau-inclusive-date", sql: `SELECT COUNT(*) FROM "public"."orders" "orders" WHERE (("orders"."local_ts" >= (DATE '2024-01-01')) AND ("orders"."local_ts" <= (DATE '2024-01-31')))`, reason: ReasonUnalignedRange},
		{name: "tableau timestamp literal", sql: `SELECT COUNT(*) FROM "public"."orders" "orders" WHERE (("orders"."created_at" >= (TIMESTAMP '2024-01-01 00:00:00.000')) AND ("orders"."created_at" < (TIMESTAMP '2024-02-01 00:00:00.000')))`, rollup: "orders_daily"},
		{name: "tableau timestamp literal unaligned", sql: `SELECT COUNT(*) FROM "public"."orders" "orders" WHERE ("orders"."created_at" < (TIMESTAMP '2024-02-01 00:00:00.001'))`, reason: ReasonUnalignedRange},
		{name: "grafana between dates", bi: "grafana-between", sql: "SELECT order_date AS time, count(*) FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-01-31' GROUP BY 1 ORDER BY 1", rollup: "orders_by_day"},
		{name: "grafana between", bi: "grafana-between", sql: `SELECT date_trunc('day', created_at) AS "time", count(*) FROM orders WHERE created_at BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-31T23:59:59Z' GROUP BY 1 ORDER BY 1`, reason: ReasonUnalignedRange},
		{name: "superset to_timestamp", bi: "superset-to-timestamp", sql: `SELECT DATE_TRUNC('day', created_at) AS __timestamp, COUNT(*) AS count FROM public.orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') AND created_at < TO_TIMESTAMP('2024-02-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') GROUP BY DATE_TRUNC('day', created_at) LIMIT 10000`,
			rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2024-01-01 00:00:00+00'", "TIMESTAMPTZ '2024-02-01 00:00:00+00'"}},
		{name: "superset to_timestamp in new york", bi: "superset-to-timestamp", zone: "America/New_York", sql: `SELECT COUNT(*) AS count FROM public.orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') AND created_at < TO_TIMESTAMP('2024-02-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')`,
			rollup: "orders_hourly", want: []string{"TIMESTAMPTZ '2024-01-01 05:00:00+00'"}},
		{name: "superset to_timestamp unaligned", bi: "superset-to-timestamp", sql: `SELECT COUNT(*) AS count FROM public.orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.500000', 'YYYY-MM-DD HH24:MI:SS.US')`, reason: ReasonUnalignedRange},
		{name: "to_timestamp other format", sql: `SELECT COUNT(*) FROM orders WHERE created_at >= TO_TIMESTAMP('01/01/2024', 'MM/DD/YYYY')`, reason: ReasonFilterNotEvaluable},
		{name: "to_timestamp short fraction", sql: `SELECT COUNT(*) FROM orders WHERE created_at >= TO_TIMESTAMP('2024-01-01 00:00:00.5', 'YYYY-MM-DD HH24:MI:SS.US')`, reason: ReasonFilterNotEvaluable},
		{name: "to_timestamp epoch aligned", sql: "SELECT count(*) FROM orders WHERE created_at >= to_timestamp(1704067200) AND created_at < to_timestamp(1706745600)", rollup: "orders_daily", want: []string{"2024-02-01 00:00:00+00"}},
		{name: "grafana to_timestamp epoch", sql: "SELECT count(*) FROM orders WHERE created_at BETWEEN to_timestamp(1704067200) AND to_timestamp(1706745599)", reason: ReasonUnalignedRange},
		{name: "power bi date on timestamptz", bi: "powerbi-alias", sql: `SELECT count(*) AS "a0" FROM "public"."orders" "_" WHERE "_"."created_at" < date '2024-02-01' and "_"."created_at" >= date '2024-01-01'`, rollup: "orders_daily"},
		{name: "not in", sql: "SELECT count(*) FROM orders WHERE status NOT IN ('a', 'b')", rollup: "orders_daily"},
		{name: "is not null", sql: "SELECT count(*) FROM orders WHERE status IS NOT NULL AND quantity <> 3", rollup: "orders_daily"},
		{name: "param on dimension", sql: "SELECT count(*) FROM orders WHERE status = $1", rollup: "orders_daily", params: []Param{{Value: "paid"}}, want: []string{"= ('paid')"}},
		{name: "null param on dimension", sql: "SELECT count(*) FROM orders WHERE status = $1", rollup: "orders_daily", params: []Param{{Null: true}}, want: []string{"CAST(NULL AS VARCHAR)"}},
		{name: "text param against integer", sql: "SELECT count(*) FROM orders WHERE quantity = $1", reason: ReasonExpression, params: []Param{{Type: pgtype.TextOID, Value: "3"}}},
		{name: "untyped param integer", sql: "SELECT count(*) FROM orders WHERE quantity = $1", rollup: "orders_daily", params: []Param{{Value: "3"}}, want: []string{"CAST('3' AS INTEGER)"}},
		{name: "untyped param not an integer", sql: "SELECT count(*) FROM orders WHERE quantity = $1", reason: ReasonExpression, params: []Param{{Value: "three"}}},
		{name: "or across dimensions", sql: "SELECT count(*) FROM orders WHERE status = 'a' OR quantity = 1", rollup: "orders_daily"},
		{name: "or with raw time", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' OR status = 'a'", reason: ReasonGrain},
		{name: "equality on timestamptz", sql: "SELECT count(*) FROM orders WHERE created_at = '2024-01-01'", reason: ReasonUnalignedRange},
		{name: "equality on date at day grain", sql: "SELECT count(*) FROM orders WHERE order_date = DATE '2024-01-05'", rollup: "orders_by_day"},
		{name: "greater on date at day grain", sql: "SELECT count(*) FROM orders WHERE order_date > '2024-01-01'", rollup: "orders_by_day"},
		{name: "text param time", sql: "SELECT count(*) FROM orders WHERE created_at >= $1", reason: ReasonFilterNotEvaluable, params: []Param{{Type: pgtype.TextOID, Value: "2024-01-01"}}}, // Postgres: operator does not exist: timestamptz >= text
		{name: "varchar param time", sql: "SELECT count(*) FROM orders WHERE created_at >= $1", reason: ReasonFilterNotEvaluable, params: []Param{{Type: pgtype.VarcharOID, Value: "2024-01-01"}}},
		{name: "unknown param time", sql: "SELECT count(*) FROM orders WHERE created_at >= $1", rollup: "orders_daily", params: []Param{{Type: pgtype.UnknownOID, Value: "2024-01-01"}}},
		{name: "cast param time", sql: "SELECT count(*) FROM orders WHERE created_at >= $1::timestamptz", rollup: "orders_daily", params: []Param{{Value: "2024-01-01 00:00:00+00"}}},
		{name: "month boundary in berlin from daily", zone: "Europe/Berlin", sql: "SELECT min(amount) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", reason: ReasonUnalignedRange},
		{name: "rollup filter implied by in", sql: "SELECT date_trunc('week', created_at), count(*) FROM orders WHERE status IN ('paid', 'new') GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_weekly_paid": ReasonNotChosen}},
		{name: "rollup filter not implied by or", sql: "SELECT date_trunc('week', created_at), count(*) FROM orders WHERE status = 'paid' OR status = 'cancelled' GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_weekly_paid": ReasonFilterNotImplied}},
		{name: "numeric filter implied by narrower range", sql: "SELECT status, count(*) FROM orders WHERE quantity >= 3 AND quantity < 5 GROUP BY 1", rollup: "orders_daily",
			cfg: func(c *config.Config) { c.Rollups = append(c.Rollups, bigRollup()) }, cands: map[string]ReasonCode{"orders_big": ReasonNotChosen}},
		{name: "numeric filter implied alone", sql: "SELECT status, count(*) FROM orders WHERE quantity IN (2, 3) GROUP BY 1", rollup: "orders_big",
			cfg: func(c *config.Config) { c.Rollups = []config.Rollup{bigRollup()} }},
		{name: "numeric filter not implied", sql: "SELECT status, count(*) FROM orders WHERE quantity > 1 GROUP BY 1", rollup: "orders_daily",
			cfg: func(c *config.Config) { c.Rollups = append(c.Rollups, bigRollup()) }, cands: map[string]ReasonCode{"orders_big": ReasonFilterNotImplied}},
		{name: "numeric filter only candidate", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonFilterNotImplied,
			cfg: func(c *config.Config) { c.Rollups = []config.Rollup{bigRollup()} }},
		{name: "filter on non dimension exactly the rollup's", sql: "SELECT status, count(*) FROM orders WHERE note IS NULL GROUP BY 1", rollup: "orders_noted",
			cfg: func(c *config.Config) {
				r := bigRollup()
				r.Name, r.Filters = "orders_noted", []string{"note IS NULL"}
				c.Rollups = []config.Rollup{r}
			}},
	}
}

func rule7Cases() []decideCase {
	return []decideCase{
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
		{name: "limit param", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT $1", rollup: "orders_daily", params: []Param{{Type: pgtype.Int8OID, Value: "5"}}, want: []string{"LIMIT 5"}},
		{name: "metabase limit", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1 LIMIT 1048575", rollup: "orders_daily", want: []string{"LIMIT 1048575"}},
		{name: "case over aggregate", sql: "SELECT status, CASE WHEN sum(amount) > 100 THEN 'big' ELSE 'small' END FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "float ratio of counts", sql: "SELECT count(*)::float8 / sum(quantity)::float8 FROM orders", rollup: "orders_daily"},
		{name: "text concatenation", sql: "SELECT status || '-', count(*) FROM orders GROUP BY 1", reason: ReasonExpression},
		{name: "date_trunc cast to date", sql: "SELECT CAST(DATE_TRUNC('month', created_at) AS DATE), count(*) FROM orders GROUP BY 1", rollup: "orders_daily"},
		{name: "order by extract", sql: "SELECT EXTRACT(YEAR FROM created_at) AS y, count(*) FROM orders GROUP BY 1 ORDER BY EXTRACT(YEAR FROM created_at) DESC", rollup: "orders_daily", want: []string{"ORDER BY 1 DESC"}},
		{name: "order by text without collation", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1", reason: ReasonCollation, cat: func(c *Catalog) { c.TextSortsBytewise = false }},
		{name: "min of text without collation", sql: "SELECT min(status) FROM orders", reason: ReasonCollation, cat: func(c *Catalog) { c.TextSortsBytewise = false }},
		{name: "greatest of numeric and zero", sql: "SELECT greatest(sum(amount), 0) FROM orders", reason: ReasonExpression},
		{name: "nullif count", sql: "SELECT NULLIF(count(*), 0) FROM orders", rollup: "orders_daily"},
		{name: "float times numeric", sql: "SELECT sum(price) * 1.5 FROM orders", rollup: "orders_daily"},
		{name: "negated count", sql: "SELECT -count(*) FROM orders", rollup: "orders_daily"},
		{name: "order by aggregate not selected", sql: "SELECT status FROM orders GROUP BY 1 ORDER BY sum(amount) DESC", rollup: "orders_daily", want: []string{`ORDER BY CAST(sum("r"."m0_sum") AS DECIMAL(38,2)) DESC`}},
		{name: "having without group by", sql: "SELECT count(*) FROM orders HAVING count(*) > 0", rollup: "orders_daily"},
		{name: "order by random", sql: "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY random()", reason: ReasonVolatile},
		{name: "limit param declared text", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT $1", reason: ReasonShape, params: []Param{{Type: pgtype.TextOID, Value: "10"}}},
		{name: "limit untyped param", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT $1 OFFSET $2", rollup: "orders_daily", params: []Param{{Value: "10"}, {Value: "+2"}}, want: []string{"LIMIT 10 OFFSET 2"}},
		{name: "limit text param", sql: "SELECT status, count(*) FROM orders GROUP BY 1 LIMIT $1", reason: ReasonShape, params: []Param{{Type: pgtype.Int8OID, Value: "ten"}}},
		{name: "having with param", sql: "SELECT status, count(*) FROM orders GROUP BY 1 HAVING count(*) > $1", rollup: "orders_daily", params: []Param{{Type: pgtype.Int8OID, Value: "5"}}, want: []string{"CAST('5' AS BIGINT)"}},
		{name: "now in select list", sql: "SELECT now(), count(*) FROM orders", rollup: "orders_daily", want: []string{"TIMESTAMPTZ '2024-03-15 10:30:00+00'"}},
		{name: "current_date in select list", zone: "America/New_York", sql: "SELECT current_date, count(*) FROM orders", rollup: "orders_daily", want: []string{"DATE '2024-03-15'"}},
		{name: "float division by count", sql: "SELECT sum(price) / count(*) FROM orders", rollup: "orders_daily", want: []string{"error('division by zero')"}},
	}
}

func rule8Cases() []decideCase {
	return []decideCase{
		{name: "pruned to one partition", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'", rollup: "orders_daily", cat: janFeb, files: []string{"b.parquet"}},
		{name: "both partitions", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-03-01'", rollup: "orders_daily", cat: janFeb, files: []string{"a.parquet", "b.parquet"}},
		{name: "unbounded query", sql: "SELECT count(*) FROM orders", reason: ReasonNotCovered, cat: janFeb},
		{name: "starts before", sql: "SELECT count(*) FROM orders WHERE created_at >= '2023-12-01' AND created_at < '2024-03-01'", reason: ReasonNotCovered, cat: janFeb},
		{name: "open end", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-02-01'", reason: ReasonNotCovered, cat: janFeb},
		{name: "params pick the partition", sql: "SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2", rollup: "orders_daily", cat: janFeb, files: []string{"a.parquet"},
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-01-01 00:00:00+00"}, {Type: pgtype.TimestamptzOID, Value: "2024-02-01 00:00:00+00"}}},
		{name: "params outside coverage", sql: "SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2", reason: ReasonNotCovered, cat: janFeb,
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-03-01 00:00:00+00"}, {Type: pgtype.TimestamptzOID, Value: "2024-04-01 00:00:00+00"}}},
		{name: "this month so far", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('month', now()) AND created_at < date_trunc('month', now()) + interval '1 month'", rollup: "orders_daily", cat: janFeb,
			now: time.Date(2024, 2, 15, 12, 0, 0, 0, time.UTC), files: []string{"b.parquet"}},
		{name: "this month not built yet", sql: "SELECT count(*) FROM orders WHERE created_at >= date_trunc('month', now()) AND created_at < date_trunc('month', now()) + interval '1 month'", reason: ReasonNotCovered, cat: janFeb},
		{name: "truncated partition read", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'", reason: ReasonTruncated,
			cat: func(c *Catalog) { janFeb(c); c.Rollups[0].Partitions[1].Truncated = true }},
		{name: "truncated partition not read", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'", rollup: "orders_daily", files: []string{"a.parquet"},
			cat: func(c *Catalog) { janFeb(c); c.Rollups[0].Partitions[1].Truncated = true }},
		{name: "open partitions cover all time", sql: "SELECT count(*) FROM orders", rollup: "orders_daily", files: []string{"a.parquet", "b.parquet"},
			cat: func(c *Catalog) {
				janFeb(c)
				c.Rollups[0].Partitions[0].Start, c.Rollups[0].Partitions[1].End = time.Time{}, time.Time{}
			}},
		{name: "gap between partitions", sql: "SELECT count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-04-01'", reason: ReasonNotCovered,
			cat: func(c *Catalog) {
				janFeb(c)
				c.Rollups[0].Partitions[1].Start, c.Rollups[0].Partitions[1].End = mustDay("2024-03-01"), mustDay("2024-04-01")
			}},
		{name: "date rollup inclusive range", sql: "SELECT count(*) FROM orders WHERE order_date >= '2024-01-01' AND order_date <= '2024-01-31'", rollup: "orders_by_day",
			cat: func(c *Catalog) {
				only(c, "orders_by_day")
				c.Rollups[4].AllTime = false
				c.Rollups[4].Partitions = []Partition{{Start: mustDay("2024-01-01"), End: mustDay("2024-02-01"), Files: []string{"jan.parquet"}}}
			}},
		{name: "date rollup one day too far", sql: "SELECT count(*) FROM orders WHERE order_date >= '2024-01-01' AND order_date <= '2024-02-01'", reason: ReasonNotCovered,
			cat: func(c *Catalog) {
				only(c, "orders_by_day")
				c.Rollups[4].AllTime = false
				c.Rollups[4].Partitions = []Partition{{Start: mustDay("2024-01-01"), End: mustDay("2024-02-01"), Files: []string{"jan.parquet"}}}
			}},
		{name: "stale", sql: "SELECT count(*) FROM orders", reason: ReasonStale, cat: func(c *Catalog) {
			c.MaxStaleness = time.Hour
			for _, r := range c.Rollups {
				r.BuiltAt = testNow.Add(-2 * time.Hour)
			}
		}},
		{name: "fresh enough", sql: "SELECT count(*) FROM orders", rollup: "orders_daily", cat: func(c *Catalog) {
			c.MaxStaleness = time.Hour
			for _, r := range c.Rollups {
				r.BuiltAt = testNow.Add(-30 * time.Minute)
			}
		}},
		{name: "session allows older answers", sql: "SELECT count(*) FROM orders", rollup: "orders_daily",
			sess: func(s *Session) { s.Staleness = StalenessSetting{Set: true, Max: 3 * time.Hour} },
			cat: func(c *Catalog) {
				c.MaxStaleness = time.Hour
				for _, r := range c.Rollups {
					r.BuiltAt = testNow.Add(-2 * time.Hour)
				}
			}},
		{name: "session wants fresher answers", sql: "SELECT count(*) FROM orders", reason: ReasonStale,
			sess: func(s *Session) { s.Staleness = StalenessSetting{Set: true, Max: 10 * time.Minute} },
			cat: func(c *Catalog) {
				for _, r := range c.Rollups {
					r.BuiltAt = testNow.Add(-30 * time.Minute)
				}
			}},
		{name: "session staleness zero", sql: "SELECT count(*) FROM orders", reason: ReasonStale,
			sess: func(s *Session) { s.Staleness = StalenessSetting{Set: true} },
			cat: func(c *Catalog) {
				for _, r := range c.Rollups {
					r.BuiltAt = testNow.Add(-time.Second)
				}
			}},
		{name: "session staleness not a duration", sql: "SELECT count(*) FROM orders", reason: ReasonStale,
			sess: func(s *Session) { s.Staleness = StalenessSetting{Invalid: "soon"} }},
		{name: "building", sql: "SELECT count(*) FROM orders", reason: ReasonNotBuilt, cat: func(c *Catalog) {
			for _, r := range c.Rollups {
				r.Status = StatusBuilding
			}
		}},
		{name: "failed", sql: "SELECT count(*) FROM orders", reason: ReasonNotBuilt, cat: func(c *Catalog) {
			for _, r := range c.Rollups {
				r.Status = StatusFailed
			}
		}},
		{name: "active without version", sql: "SELECT count(*) FROM orders", reason: ReasonNotBuilt, cat: func(c *Catalog) {
			for _, r := range c.Rollups {
				r.Version = ""
			}
		}},
		{name: "no files", sql: "SELECT count(*) FROM orders", reason: ReasonNotBuilt, cat: func(c *Catalog) {
			only(c, "orders_daily")
			c.Rollups[0].Partitions = []Partition{{}}
		}},
		{name: "next best rollup when one is building", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_hourly",
			cat: func(c *Catalog) { c.Rollups[0].Status = StatusBuilding }, cands: map[string]ReasonCode{"orders_daily": ReasonNotBuilt}},
		{name: "bad definition", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonNotBuilt,
			cfg: func(c *config.Config) {
				c.Rollups = c.Rollups[:1]
				c.Rollups[0].Measures = []string{"sum(amount) + 1"}
			}},
	}
}

func rule9Cases() []decideCase {
	return []decideCase{
		{name: "transaction failed", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonTxFailed, sess: func(s *Session) { s.TxFailed = true }},
		{name: "transaction wrote", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonTxWrote, sess: func(s *Session) { s.TxWrote = true }},
		{name: "no privilege", sql: "SELECT status, count(*) FROM orders GROUP BY 1", reason: ReasonPrivilege, sess: func(s *Session) { s.CanRead = func(string) bool { return false } }},
		{name: "privilege on one rollup", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_hourly",
			sess: func(s *Session) { s.CanRead = func(r string) bool { return r == "orders_hourly" } }, cands: map[string]ReasonCode{"orders_daily": ReasonPrivilege}},
		{name: "privilege granted", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily", sess: func(s *Session) { s.CanRead = func(string) bool { return true } }},
		{name: "earlier rule wins over session", sql: "SELECT note, count(*) FROM orders GROUP BY 1", reason: ReasonNotDimension, sess: func(s *Session) { s.TxFailed = true }},
		{name: "failed transaction beats wrote", sql: "SELECT count(*) FROM orders", reason: ReasonTxFailed, sess: func(s *Session) { s.TxFailed, s.TxWrote = true, true }},
	}
}

func rule10Cases() []decideCase {
	return []decideCase{
		{name: "fewest rows", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily", cands: map[string]ReasonCode{"orders_daily": ReasonMatched, "orders_hourly": ReasonNotChosen}},
		{name: "hourly smaller", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_hourly", cat: func(c *Catalog) { c.Rollups[1].Rows = 10 },
			cands: map[string]ReasonCode{"orders_hourly": ReasonMatched, "orders_daily": ReasonNotChosen}},
		{name: "rows tie fewest bytes", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_hourly", cat: func(c *Catalog) {
			c.Rollups[0].Rows, c.Rollups[1].Rows = 5, 5
			c.Rollups[0].Bytes, c.Rollups[1].Bytes = 200, 100
		}},
		{name: "rows and bytes tie name", sql: "SELECT status, count(*) FROM orders GROUP BY 1", rollup: "orders_daily", cat: func(c *Catalog) {
			c.Rollups[0].Rows, c.Rollups[1].Rows = 5, 5
		}},
		{name: "only one answers", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1", rollup: "orders_daily",
			cands: map[string]ReasonCode{"orders_hourly": ReasonNotDimension, "orders_by_store": ReasonJoin}},
		{name: "closest miss is the reason", sql: "SELECT status, stddev(amount) FROM orders GROUP BY 1", reason: ReasonMeasure,
			cands: map[string]ReasonCode{"orders_by_store": ReasonJoin, "orders_by_day": ReasonMeasure}},
	}
}

func TestResultColumns(t *testing.T) {
	cat := testCatalog(t)
	cat.Tables["public.orders"].OID = 16384
	for i := range cat.Tables["public.orders"].Columns {
		cat.Tables["public.orders"].Columns[i].AttNum = int16(i + 1)
	}
	d := decide(t, cat, Session{}, "SELECT status, sum(amount), count(*), min(amount), date_trunc('month', created_at), created_at::date AS day, extract(year from created_at), date_part('year', created_at), sum(quantity), 1 + 1 FROM orders GROUP BY 1, 5, 6, 7, 8")
	if d.Outcome != OutcomeRollup {
		t.Fatalf("%v", d.Reason)
	}
	want := []struct {
		name string
		oid  uint32
	}{{"status", pgtype.TextOID}, {"sum", pgtype.NumericOID}, {"count", pgtype.Int8OID}, {"min", pgtype.NumericOID}, {"date_trunc", pgtype.TimestamptzOID},
		{"day", pgtype.DateOID}, {"extract", pgtype.NumericOID}, {"date_part", pgtype.Float8OID}, {"sum", pgtype.Int8OID}, {"?column?", pgtype.Int4OID}}
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

// TestResultColumnOrigin: Postgres's parser drops a cast to the column's own
// type and modifier, so the result column is described like the plain
// column, with its table OID, attribute number and typmod; a cast that only
// drops the modifier, or changes the type, leaves no origin.
func TestResultColumnOrigin(t *testing.T) {
	cases := []struct {
		name   string
		sql    string
		types  map[string]string // column types replacing testTypes
		col    int               // the result column checked
		origin string            // the column whose table OID and attribute number describe it; "" for none
		typ    Type
	}{
		{name: "plain column", sql: "SELECT status, count(*) FROM orders GROUP BY 1", origin: "status", typ: plain(pgtype.TextOID)},
		{name: "tableau cast to text", sql: `SELECT CAST("orders"."status" AS TEXT) AS "status", SUM("orders"."amount") AS "sum:amount:ok" FROM "public"."orders" "orders" GROUP BY 1`, origin: "status", typ: plain(pgtype.TextOID)},
		{name: "cast to text grouped by the column", sql: "SELECT status::text, count(*) FROM orders GROUP BY status", origin: "status", typ: plain(pgtype.TextOID)},
		{name: "nested identity casts", sql: "SELECT status::text::text, count(*) FROM orders GROUP BY 1", origin: "status", typ: plain(pgtype.TextOID)},
		{name: "date cast to date", sql: "SELECT order_date::date, count(*) FROM orders GROUP BY 1", origin: "order_date", typ: plain(pgtype.DateOID)},
		{name: "int cast to int", sql: "SELECT count(*), quantity::int4::integer FROM orders GROUP BY 2", col: 1, origin: "quantity", typ: plain(pgtype.Int4OID)},
		{name: "int cast to bigint", sql: "SELECT quantity::int8, count(*) FROM orders GROUP BY 1", typ: plain(pgtype.Int8OID)},
		{name: "text cast to varchar", sql: "SELECT status::varchar, count(*) FROM orders GROUP BY 1", typ: plain(pgtype.VarcharOID)},
		{name: "varchar cast to text", sql: "SELECT status::text, count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.status": "varchar(20)"}, typ: plain(pgtype.TextOID)},
		{name: "varchar(n) cast to varchar", sql: "SELECT status::varchar, count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.status": "varchar(20)"}, typ: plain(pgtype.VarcharOID)},
		{name: "varchar(n) cast to varchar(n)", sql: "SELECT CAST(status AS varchar(20))::varchar(20), count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.status": "varchar(20)"}, origin: "status", typ: Type{pgtype.VarcharOID, 24}},
		{name: "numeric(p,s) cast to numeric", sql: "SELECT quantity::numeric, count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.quantity": "numeric(12,2)"}, typ: plain(pgtype.NumericOID)},
		{name: "numeric(p,s) cast to numeric twice", sql: "SELECT quantity::numeric::numeric, count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.quantity": "numeric(12,2)"}, typ: plain(pgtype.NumericOID)},
		{name: "numeric(p,s) cast to numeric(p,s)", sql: "SELECT quantity::numeric(12,2), count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.quantity": "numeric(12,2)"}, origin: "quantity", typ: Type{pgtype.NumericOID, (12<<16 | 2) + 4}},
		{name: "numeric(p,s) cast to another precision", sql: "SELECT quantity::numeric(14,2), count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.quantity": "numeric(12,2)"}, typ: Type{pgtype.NumericOID, (14<<16 | 2) + 4}},
		{name: "char(n) cast to char(n)", sql: "SELECT status::char(8), count(*) FROM orders GROUP BY 1", types: map[string]string{"public.orders.status": "char(8)"}, origin: "status", typ: Type{pgtype.BPCharOID, 12}},
		{name: "through a wrapping select", sql: `SELECT "s" FROM (SELECT CAST(status AS TEXT) AS "s" FROM orders GROUP BY 1) "x"`, origin: "status", typ: plain(pgtype.TextOID)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat := catalogOf(t, testConfig(), c.types)
			tb := cat.Tables["public.orders"]
			tb.OID = 16384
			for i := range tb.Columns {
				tb.Columns[i].AttNum = int16(i + 1)
			}
			d := decide(t, cat, Session{TimeZone: "UTC"}, c.sql)
			if d.Outcome != OutcomeRollup {
				t.Fatalf("want a rollup route: %v", d.Reason)
			}
			got := d.Columns[c.col]
			if got.Type != c.typ {
				t.Errorf("type %+v, want %+v", got.Type, c.typ)
			}
			switch {
			case c.origin == "" && (got.TableOID != 0 || got.AttNum != 0):
				t.Errorf("want no origin: %+v", got)
			case c.origin != "" && (got.TableOID != tb.OID || got.AttNum != tb.column(c.origin).AttNum):
				t.Errorf("want the origin of %s (attribute %d): %+v", c.origin, tb.column(c.origin).AttNum, got)
			}
		})
	}
}

func mustDay(s string) time.Time {
	v, _, ok := parseTimeText(s)
	if !ok {
		panic(s)
	}
	return v
}

// TestVarcharOperands: a varchar(n) column compared with a literal is
// compared as text with text in Postgres (varchar has no operators of its
// own), so the literal keeps its length; only a cast to varchar(n) cuts it.
// The Star Schema Benchmark's dimensions are varchar(n) (c_region = 'ASIA').
func TestVarcharOperands(t *testing.T) {
	varchar := map[string]string{"public.orders.status": "varchar(9)"}
	cases := []decideCase{
		{name: "equal", sql: "SELECT status, sum(amount) FROM orders WHERE status = 'completed' GROUP BY 1", rollup: "orders_daily", want: []string{"'completed'"}},
		{name: "literal first", sql: "SELECT sum(amount) FROM orders WHERE 'completed' = status", rollup: "orders_daily"},
		{name: "longer than the column", sql: "SELECT count(*) FROM orders WHERE status <> 'completed and more'", rollup: "orders_daily", want: []string{"'completed and more'"}},
		{name: "in", sql: "SELECT status, count(*) FROM orders WHERE status IN ('completed', 'shipped') GROUP BY 1", rollup: "orders_daily"},
		{name: "or of equalities", sql: "SELECT count(*) FROM orders WHERE (status = 'a' OR status = 'b')", rollup: "orders_daily"},
		{name: "between", sql: "SELECT count(*) FROM orders WHERE status BETWEEN 'a' AND 'm'", rollup: "orders_daily"},
		{name: "bound parameter", sql: "SELECT count(*) FROM orders WHERE status = $1", rollup: "orders_daily", params: []Param{{Type: pgtype.TextOID, Value: "completed"}}},
		{name: "literal cast to varchar(n)", sql: "SELECT count(*) FROM orders WHERE status = 'completed'::varchar(3)", reason: ReasonExpression},
		{name: "char(n) column", sql: "SELECT count(*) FROM orders WHERE status = 'completed'", reason: ReasonExpression, types: map[string]string{"public.orders.status": "char(9)"}},
	}
	for i := range cases {
		if cases[i].types == nil {
			cases[i].types = varchar
		}
	}
	runCases(t, cases)
}
