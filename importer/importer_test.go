package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgrollup/pgrollup/config"
)

// read loads test files from testdata.
func read(t *testing.T, paths ...string) []Source {
	t.Helper()
	var srcs []Source
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Name: p, Data: data})
	}
	return srcs
}

// loads appends doc to a config with a warehouse and loads it as pgrollup
// serve would.
func loads(t *testing.T, doc []byte) *config.Config {
	t.Helper()
	cfg, err := config.ParseWithEnv(append([]byte("warehouse: {dsn: postgres://u@localhost/db}\n"), doc...), "pgrollup.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("the imported document does not load: %v\n%s", err, doc)
	}
	return cfg
}

// TestTranslates imports the test models and checks that everything is
// translated, that the document loads and validates through config, and
// what some rollups became.
func TestTranslates(t *testing.T) {
	cases := []struct {
		name    string
		run     func() (*Result, error)
		tables  int
		rollups map[string]func(config.Rollup) bool
		notes   []string
	}{
		{
			name:   "cube",
			run:    func() (*Result, error) { return Cube(read(t, "cube/orders.yml", "cube/customers.yml")) },
			tables: 1,
			rollups: map[string]func(config.Rollup) bool{
				"orders_by_status_country": func(r config.Rollup) bool {
					return strings.Join(r.Dimensions, ",") == "status,customers.country" && r.TimeDimension == "created_at" &&
						r.Granularity == config.Day && r.PartitionGranularity == config.Month &&
						strings.Join(r.Measures, ",") == "count(*),sum(amount),avg(amount)" && r.Refresh.Every.String() == "1h"
				},
				"orders_recent_daily": func(r config.Rollup) bool {
					return r.Refresh.Incremental && r.Refresh.UpdateWindow.String() == "7 days" && r.BuildRange != nil &&
						r.BuildRange.Start == "SELECT date_trunc('month', now()) - interval '3 months'" && r.BuildRange.End == "SELECT now()"
				},
				"orders_monthly": func(r config.Rollup) bool {
					return r.Refresh.SQL == "SELECT max(updated_at) FROM public.orders" && r.Granularity == config.Month &&
						contains(r.Measures, "count(CASE WHEN status = 'completed' THEN 1 END)") && contains(r.Measures, "count(DISTINCT customer_id)")
				},
				"orders_completed_by_region": func(r config.Rollup) bool {
					return r.Dimensions[0] == "regions.name" && r.Filters[0] == "status = 'completed'" && r.Refresh.Cron == "0 6 * * *"
				},
			},
			notes: []string{"cube/orders.yml:82: cube orders, pre-aggregation by_status_country: indexes are ignored"},
		},
		{
			name: "lightdash",
			run:  func() (*Result, error) { return Lightdash(read(t, "lightdash/schema.yml"), "shop") },
			rollups: map[string]func(config.Rollup) bool{
				"orders_daily_by_status": func(r config.Rollup) bool {
					return r.Table == "shop.orders" && r.Filters[0] == "created_at >= date_trunc('day', now()) - interval '52 weeks'" &&
						strings.Join(r.Measures, ",") == "sum(amount),avg(amount),count(id)" && r.Refresh.Cron == "5 0 * * *"
				},
				"orders_monthly_customers": func(r config.Rollup) bool {
					return r.MaxRows == 100000 && r.Granularity == config.Month &&
						contains(r.Measures, "count(CASE WHEN status IN ('completed') THEN amount ELSE NULL END)") &&
						r.Filters[0] == "(status NOT IN ('cancelled') OR status IS NULL)"
				},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.run()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Untranslated) > 0 {
				t.Fatalf("not translated: %v", res.Untranslated)
			}
			doc := res.YAML()
			cfg := loads(t, doc)
			if len(cfg.Tables) != c.tables || len(cfg.Rollups) != len(c.rollups) {
				t.Fatalf("%d tables and %d rollups, want %d and %d:\n%s", len(cfg.Tables), len(cfg.Rollups), c.tables, len(c.rollups), doc)
			}
			for name, ok := range c.rollups {
				r := cfg.Rollup(name)
				if r == nil || !ok(*r) {
					t.Errorf("rollup %s is not as expected:\n%s", name, doc)
				}
			}
			for _, want := range c.notes {
				if !hasProblem(res.Notes, want) {
					t.Errorf("no note %q in %v", want, res.Notes)
				}
			}
			if !strings.Contains(string(doc), "# "+res.Rollups[0].at.File+":") {
				t.Errorf("comments do not name the source file:\n%s", doc)
			}
		})
	}
}

func hasProblem(ps []Problem, want string) bool {
	for _, p := range ps {
		if strings.Contains(p.String(), want) {
			return true
		}
	}
	return false
}

// TestUntranslated: what has no pgrollup equivalent is reported at its line
// with why, and the rest is still translated and loads.
func TestUntranslated(t *testing.T) {
	res, err := Cube(read(t, "cube/untranslatable.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cube/untranslatable.yml:32: cube events, pre-aggregation raw: not translated: type original_sql",
		"cube/untranslatable.yml:34: cube events, pre-aggregation joined: not translated: type rollup_join",
		"cube/untranslatable.yml:37: cube events, pre-aggregation lambda: not translated: type rollup_lambda",
		"cube/untranslatable.yml:41: cube events, pre-aggregation by_kind: measure approx_users: not translated: an approximate distinct count",
		"cube/untranslatable.yml:41: cube events, pre-aggregation by_kind: measure rolling_count: not translated: a rolling_window measure",
		"cube/untranslatable.yml:41: cube events, pre-aggregation by_kind: measure ratio: not translated: type number",
		"cube/untranslatable.yml:47: cube events, pre-aggregation by_upper_kind: dimension kind_upper: not translated",
		"cube/untranslatable.yml:51: cube events, pre-aggregation per_minute: granularity: not translated: granularity minute",
		"cube/untranslatable.yml:59: cube sessions, pre-aggregation main: not translated: cube sessions reads custom SQL",
	} {
		if !hasProblem(res.Untranslated, want) {
			t.Errorf("not reported: %s\nreported:\n%s", want, Errors(res.Untranslated))
		}
	}
	if len(res.Untranslated) != 9 {
		t.Errorf("%d items reported, want 9:\n%s", len(res.Untranslated), Errors(res.Untranslated))
	}
	cfg := loads(t, res.YAML())
	if len(cfg.Rollups) != 1 || strings.Join(cfg.Rollups[0].Measures, ",") != "count(*)" {
		t.Errorf("the rest: %+v", cfg.Rollups)
	}
}

// TestBadInput: each kind of bad input is an error at its file and line,
// and nothing is translated.
func TestBadInput(t *testing.T) {
	const orders = "cubes:\n  - name: orders\n    sql_table: public.orders\n"
	cases := []struct {
		name, kind, text, want string
	}{
		{"malformed YAML", "cube", "cubes:\n  - name: a\n   bad: [\n", "m.yml:1: malformed YAML"},
		{"unknown measure type", "cube", orders + "    measures:\n      - name: m\n        sql: x\n        type: median\n", `m.yml:7: measure orders.m: unknown measure type "median"`},
		{"missing cube", "cube", orders + "    joins:\n      - name: nowhere\n        relationship: many_to_one\n        sql: \"{CUBE}.a = {nowhere}.id\"\n", "m.yml:5: cube orders joins nowhere, which no file defines"},
		{"missing member", "cube", orders + "    measures:\n      - name: count\n        type: count\n    pre_aggregations:\n      - name: p\n        measures: [count]\n        dimensions: [status]\n", "m.yml:10: cube orders, pre-aggregation p: dimension status: status: cube orders has no member status"},
		{"missing column in join", "cube", orders + "    joins:\n      - name: c\n        relationship: many_to_one\n        sql: \"{CUBE.customer_id} = {c}.id\"\n    pre_aggregations:\n      - name: p\n        dimensions: [c.country]\n  - name: c\n    sql_table: c\n    dimensions:\n      - name: country\n        sql: country\n        type: string\n",
			"m.yml:5: cube orders, pre-aggregation p: join orders.c: cube orders has no member customer_id"},
		{"join cycle", "cube", "cubes:\n  - name: a\n    sql_table: a\n    joins:\n      - name: b\n        relationship: many_to_one\n        sql: \"{CUBE}.b = {b}.id\"\n  - name: b\n    sql_table: b\n    joins:\n      - name: a\n        relationship: belongs_to\n        sql: \"{CUBE}.a = {a}.id\"\n", "m.yml:11: join cycle: a → b → a"},
		{"unknown relationship", "cube", orders + "    joins:\n      - name: orders\n        relationship: sideways\n        sql: \"{CUBE}.a = {orders}.id\"\n", `m.yml:5: join orders.orders: unknown relationship "sideways"`},
		{"unknown pre-aggregation type", "cube", orders + "    pre_aggregations:\n      - name: p\n        type: autorollup\n", `m.yml:6: cube orders, pre-aggregation p: unknown pre-aggregation type "autorollup"`},
		{"lightdash malformed", "lightdash", "models:\n  - name: x\n    columns: [\n", "m.yml:3: malformed YAML"},
		{"lightdash unknown metric type", "lightdash", "models:\n  - name: o\n    columns:\n      - name: a\n        meta:\n          metrics:\n            m:\n              type: mode\n", `m.yml:8: metric o.m: unknown metric type "mode"`},
		{"lightdash missing column", "lightdash", "models:\n  - name: o\n    meta:\n      pre_aggregates:\n        - name: p\n          dimensions: [nope]\n          metrics: []\n", "m.yml:6: model o, pre-aggregate p: dimension nope: model o has no column nope"},
		{"lightdash missing metric", "lightdash", "models:\n  - name: o\n    meta:\n      pre_aggregates:\n        - name: p\n          metrics: [nope]\n", "m.yml:6: model o, pre-aggregate p: metric nope: model o has no metric nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := importText(c.kind, c.text, "")
			if err == nil {
				t.Fatalf("no error; translated %+v", res)
			}
			if res != nil && len(res.Rollups) > 0 {
				t.Errorf("rollups with the error: %+v", res.Rollups)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

// TestSelectStar: a cube whose sql only selects a table's rows is that
// table, and its columns are the table's.
func TestSelectStar(t *testing.T) {
	const model = `cubes:
  - name: orders
    sql: "SELECT * FROM shop.orders ;"
    measures:
      - name: revenue
        sql: "{CUBE}.price * {CUBE}.qty"
        type: sum
    dimensions:
      - name: at
        sql: at
        type: time
    pre_aggregations:
      - name: total
        measures: [revenue]
        build_range_start:
          sql: SELECT now() - interval '1 year'
`
	res, err := Cube([]Source{{Name: "m.yml", Data: []byte(model)}})
	if err == nil || !strings.Contains(err.Error(), "m.yml:13: cube orders, pre-aggregation total: build_range_start and build_range_end need a time_dimension") {
		t.Fatalf("a build range without time dimension: %v %v", res, err)
	}
	res, err = Cube([]Source{{Name: "m.yml", Data: []byte(model + "        time_dimension: at\n        granularity: year\n")}})
	if err != nil || len(res.Untranslated) > 0 {
		t.Fatal(err, res.Untranslated)
	}
	cfg := loads(t, res.YAML())
	r := cfg.Rollups[0]
	if r.Table != "shop.orders" || r.Measures[0] != "sum(price * qty)" || r.BuildRange.End != "SELECT max(at) FROM shop.orders" {
		t.Errorf("%+v %+v", r, r.BuildRange)
	}
}

// TestEdgeCases: single translations and refusals, each checked in the
// printed document or in what is reported.
func TestEdgeCases(t *testing.T) {
	const cube = "cubes:\n  - name: o\n    sql_table: o\n    measures:\n      - name: c\n        type: count\n" +
		"    dimensions:\n      - name: at\n        sql: at\n        type: time\n    pre_aggregations:\n      - name: p\n        measures: [c]\n"
	const model = "models:\n  - name: orders\n    config:\n      alias: fct_orders\n      meta:\n        pre_aggregates:\n" +
		"          - name: p\n            metrics: [n]\n            dimensions: [status]\n"
	const columns = "    columns:\n      - name: status\n      - name: id\n        config:\n          meta:\n            metrics:\n              n: {type: count}\n"
	const additional = "        meta:\n          additional_dimensions:\n            id_text:\n              type: string\n              sql: \"${TABLE}.id::text\"\n" +
		"            id_copy:\n              type: number\n              sql: \"${id}\"\n"
	cases := []struct {
		name, kind, text  string
		out, untranslated string // parts of the document and of the reports ("": none)
	}{
		{"config refuses a partition finer than the grain", "cube", cube + "        time_dimension: at\n        granularity: month\n        partition_granularity: day\n", "",
			"m.yml:12: cube o, pre-aggregation p: not translated: pgrollup refuses it: rollups[0].partition_granularity"},
		{"every with months", "cube", cube + "        refresh_key:\n          every: 1 month\n", "", `m.yml:15: cube o, pre-aggregation p: refresh_key.every: not translated: "1 month" is neither`},
		{"every as cron with seconds, which pgrollup refuses", "cube", cube + "        refresh_key:\n          every: \"0 */5 * * * *\"\n", "", "refresh.cron: invalid cron schedule"},
		{"one of two build range bounds", "cube", cube + "        time_dimension: at\n        granularity: day\n        build_range_end:\n          sql: SELECT now()\n", "start: SELECT min(at) FROM o", ""},
		{"time_dimensions of one", "cube", cube + "        time_dimensions:\n          - dimension: at\n            granularity: hour\n", "granularity: hour", ""},
		{"time_dimensions of two", "cube", cube + "        time_dimensions:\n          - dimension: at\n            granularity: hour\n          - dimension: at\n            granularity: day\n", "", "a pgrollup rollup has one time dimension"},
		{"dbt 1.10 config.meta and alias", "lightdash", model + columns, "table: analytics.fct_orders", ""},
		{"lightdash joined field", "lightdash", model + "            filters:\n              - customers.country: DE\n" + columns, "", "customers.country is a field of model customers; joined models are not translated"},
		{"lightdash inTheNext", "lightdash", model + "            filters:\n              - status: inTheNext 3 days\n" + columns, "", `"inTheNext 3 days" has no pgrollup rollup filter`},
		{"lightdash completed weeks", "lightdash", model + "            filters:\n              - status: inThePast 2 completed weeks\n" + columns,
			"status >= date_trunc('week', now()) - interval '2 weeks' AND status < date_trunc('week', now())", ""},
		{"lightdash additional dimension", "lightdash", strings.Replace(model, "[status]", "[id_copy]", 1) + columns + additional, "dimensions: [id]", ""},
		{"lightdash additional dimension of an expression", "lightdash", strings.Replace(model, "[status]", "[id_text]", 1) + columns + additional, "",
			"dimension id_text is the expression id::text, not a plain column"},
		{"lightdash median", "lightdash", strings.Replace(model+columns, "{type: count}", "{type: median}", 1), "", "a median is not a measure pgrollup stores"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := importText(c.kind, c.text, "analytics")
			if err != nil {
				t.Fatal(err)
			}
			doc := res.YAML()
			loads(t, doc)
			if c.untranslated == "" && len(res.Untranslated) > 0 || c.untranslated != "" && !hasProblem(res.Untranslated, c.untranslated) {
				t.Errorf("reported:\n%s\nwant: %q", Errors(res.Untranslated), c.untranslated)
			}
			if !strings.Contains(string(doc), c.out) {
				t.Errorf("document lacks %q:\n%s", c.out, doc)
			}
		})
	}
}

// TestBadInputPartial: bad input in one cube leaves out the pre-aggregations
// that read it, and the rest is still translated for --partial.
func TestBadInputPartial(t *testing.T) {
	res, err := Cube([]Source{{Name: "m.yml", Data: []byte(`cubes:
  - name: a
    sql_table: a
    measures:
      - name: good
        type: count
      - name: broken
        sql: x
        type: mode
    pre_aggregations:
      - name: uses_broken
        measures: [broken]
      - name: fine
        measures: [good]
  - name: b
    sql_table: b
    joins:
      - name: nowhere
        relationship: many_to_one
        sql: "{CUBE}.n = {nowhere}.id"
    measures:
      - name: total
        sql: v
        type: sum
    pre_aggregations:
      - name: fine
        measures: [total]
`)}})
	want := "m.yml:9: measure a.broken: unknown measure type \"mode\"\nm.yml:18: cube b joins nowhere, which no file defines"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	cfg := loads(t, res.YAML())
	if len(cfg.Rollups) != 2 || cfg.Rollups[0].Name != "a_fine" || cfg.Rollups[1].Name != "b_fine" || len(res.Untranslated) != 0 {
		t.Errorf("translated %+v, untranslated %v", cfg.Rollups, res.Untranslated)
	}
}

// importText imports one file m.yml of text, as Cube's ("cube") or
// Lightdash's, with schema for Lightdash.
func importText(kind, text, schema string) (*Result, error) {
	srcs := []Source{{Name: "m.yml", Data: []byte(text)}}
	if kind == "cube" {
		return Cube(srcs)
	}
	return Lightdash(srcs, schema)
}
