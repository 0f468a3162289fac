package advise

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/routing"
)

func TestChoose(t *testing.T) {
	// Four statements; their warehouse seconds.
	secs := []float64{10, 5, 1, 0}
	sts := make([]*Statement, len(secs))
	for i, s := range secs {
		sts[i] = &Statement{Miss: routing.Miss{WarehouseSeconds: s, Count: 1}}
	}
	cands := []*candidate{
		{key: "a", rows: 100, serves: []int{0}},            // 0.1 s/row
		{key: "b", rows: 10, serves: []int{1}},             // 0.5 s/row
		{key: "ab", rows: 1000, serves: []int{0, 1, 2}},    // 0.016 s/row
		{key: "c", rows: 1, serves: []int{2}},              // 1 s/row
		{key: "d", rows: 1_000_000, serves: []int{3}},      // only the count
		{key: "none", rows: 1, serves: nil},                // serves nothing
		{key: "a-big", rows: 100_000, serves: []int{0}},    // a, larger
		{key: "b-again", rows: 10, serves: []int{1}},       // ties with b: b wins by key
		{key: "abc", rows: 1_000_000, serves: []int{0, 1}}, // everything, huge
	}
	cases := []struct {
		max  int
		want string
	}{
		{1, "c"},
		{2, "c b"},
		{3, "c b a"},
		{0, "c b a d"}, // no limit: until nothing new is served
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.max), func(t *testing.T) {
			var got []string
			for _, ch := range choose(cands, sts, c.max) {
				got = append(got, ch.key)
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("chose %v, want %s", got, c.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	cases := []struct {
		needs []*rewrite.Need
		want  string
	}{
		{[]*rewrite.Need{
			{Table: "public.orders", Dimensions: []string{"status"}, TimeColumn: "created_at", Grain: config.Month, Measures: []string{"sum(amount)"}},
			{Table: "public.orders", Dimensions: []string{"customers.country"}, TimeColumn: "created_at", Grain: config.Week, Measures: []string{"count(*)", "sum(amount)"}},
		}, "public.orders|customers.country,status|created_at/day|count(*),sum(amount)"},
		{[]*rewrite.Need{
			{Table: "public.orders", TimeColumn: "created_at", Grain: config.Day},
			{Table: "public.orders", TimeColumn: "shipped_at", Grain: config.Month, Dimensions: []string{"created_at"}},
		}, "public.orders|shipped_at|created_at/day|count(*)"},
		{[]*rewrite.Need{{Table: "public.orders"}, {Table: "public.items"}}, "mixed"},
	}
	for _, c := range cases {
		r, ok := merge(c.needs)
		got := defKey(r)
		if !ok {
			got = "mixed"
		}
		if got != c.want {
			t.Errorf("merge = %s, want %s", got, c.want)
		}
	}
}

// shopConfig is the configuration advise reads: orders with a declared
// join to customers, and one rollup already configured.
const shopConfig = `warehouse:
  dsn: postgres://svc@db:5432/shop
tables:
  - name: public.orders
    joins:
      - table: public.customers
        on: orders.customer_id = customers.id
rollups:
  - name: existing_by_status
    table: public.orders
    dimensions: [status]
    measures: [count(*)]
`

func col(name, typ string, n int16) rewrite.Column {
	t, ok := rewrite.ParseType(typ)
	if !ok {
		panic(typ)
	}
	return rewrite.Column{Name: name, Type: t, AttNum: n}
}

var shopTables = map[string]*rewrite.Table{
	"public.orders": {Name: "public.orders", OID: 16400, Columns: []rewrite.Column{
		col("id", "integer", 1), col("customer_id", "integer", 2), col("status", "text", 3),
		col("amount", "numeric(12,2)", 4), col("created_at", "timestamp with time zone", 5),
	}},
	"public.customers": {Name: "public.customers", OID: 16401, Columns: []rewrite.Column{
		col("id", "integer", 1), col("country", "text", 2),
	}},
}

// TestPlanLoadsAsConfig: a dashboard's misses become rollups that the
// replay says answer them, and the YAML appended to the config loads.
func TestPlanLoadsAsConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(shopConfig), "pgrollup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	misses := []routing.Miss{
		{SQL: "SELECT date_trunc('month', created_at) AS m, sum(amount) FROM orders WHERE created_at >= '2024-01-01' GROUP BY 1 ORDER BY 1", Count: 20, WarehouseSeconds: 40},
		{SQL: `SELECT "public"."customers"."country" AS "country", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" LEFT JOIN "public"."customers" ON "public"."orders"."customer_id" = "public"."customers"."id" GROUP BY "public"."customers"."country" ORDER BY "public"."customers"."country" ASC`, Count: 10, WarehouseSeconds: 30},
		{SQL: "SELECT status, count(*), avg(amount) FROM orders WHERE status <> 'cancelled' GROUP BY status", Count: 5, WarehouseSeconds: 10},
		{SQL: "SELECT status, count(*) FROM orders GROUP BY status", Count: 3, WarehouseSeconds: 1},
		{SQL: "SELECT count(DISTINCT customer_id) FROM orders", Count: 1, WarehouseSeconds: 50},
		{SQL: "SELECT * FROM orders ORDER BY id DESC LIMIT 10", Count: 9, WarehouseSeconds: 2},
		{SQL: "SELECT status, count(*) FROM orders WHERE created_at >= $1 GROUP BY status", Count: 4, WarehouseSeconds: 3},
	}
	// Sizes as a warehouse with 5 statuses, 30 countries, two years of
	// orders and 10,000 orders would give them.
	rows := func(_ context.Context, r config.Rollup) (int64, error) {
		n := int64(1)
		for _, d := range r.Dimensions {
			n *= map[string]int64{"status": 5, "customers.country": 30}[d]
		}
		if r.TimeDimension != "" {
			n *= map[config.Granularity]int64{config.Day: 730, config.Month: 24}[r.Granularity]
		}
		return min(n, 10000), nil
	}
	a, err := Plan(context.Background(), misses, Options{
		Config: cfg, Tables: shopTables, TextSortsBytewise: true, Rows: rows, Max: 5, MinStatements: 2, Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := a.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	appended, err := config.Parse([]byte(shopConfig+out.String()), "pgrollup.yaml")
	if err != nil {
		t.Fatalf("the advice does not load appended to the config: %v\n%s", err, out.String())
	}
	if len(appended.Rollups) != 1+len(a.Proposals) || len(a.Proposals) == 0 {
		t.Fatalf("%d rollups after appending %d proposals", len(appended.Rollups), len(a.Proposals))
	}
	// The three shapes seen at least twice that no configured rollup
	// answers are served by proposals; the configured rollup keeps its
	// own; the single count(DISTINCT) is below --min-statements and
	// SELECT * is no aggregate.
	served := map[string]string{}
	for _, st := range a.Statements {
		served[st.SQL[:20]] = st.Served
	}
	for i, st := range a.Statements {
		want := "advised"
		switch i {
		case 3:
			want = "existing_by_status"
		case 4, 5, 6:
			want = ""
		}
		if !strings.HasPrefix(st.Served, want) || (want == "" && st.Served != "") {
			t.Errorf("statement %d served by %q, want %s...", i, st.Served, want)
		}
	}
	if a.Served != 35 || a.Existing != 3 || a.Total != 52 {
		t.Errorf("served %d, existing %d, total %d", a.Served, a.Existing, a.Total)
	}
	if !strings.Contains(out.String(), "# no rollup can answer (9 statements): no_aggregate") || !strings.Contains(out.String(), "(4 statements): its parameters' values were not recorded") {
		t.Errorf("the statement no rollup answers is not named:\n%s", out.String())
	}
}
