package rewrite

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TestFinishCores finds the aggregate core a rollup answers in statements
// whose rest DuckDB cannot compute, and none in near misses.
func TestFinishCores(t *testing.T) {
	cat := testCatalog(t)
	cat.TextSortsBytewise = false // ORDER BY text needs the warehouse
	cases := []struct {
		name   string
		sql    string
		kind   string // "" : no core a rollup answers
		rollup string
		core   string   // substring of the core's SQL
		outer  []string // substrings of the finished statement
	}{
		{name: "malloy cte row_to_json",
			sql:  `WITH __stage0 AS (SELECT base."status" as "status", COALESCE(SUM(base."amount"),0) as "total" FROM orders as base GROUP BY 1 ORDER BY 2 desc NULLS LAST) SELECT row_to_json(finalStage) as row FROM __stage0 AS finalStage`,
			kind: "cte", rollup: "orders_daily", core: "COALESCE(sum(base.amount), 0) AS total",
			outer: []string{`WITH __stage0 AS (SELECT "pgrollup_v"."c1"::pg_catalog.text AS "status"`, "row_to_json(finalstage) AS \"row\" FROM __stage0 finalstage", `AS "pgrollup_v"("c1", "c2")`}},
		{name: "malloy cte ordered by text", sql: `WITH __stage0 AS (SELECT base."status" as "status", COUNT(1) as "n" FROM orders as base GROUP BY 1 ORDER BY 1 asc NULLS LAST) SELECT row_to_json(finalStage) as row FROM __stage0 AS finalStage`,
			kind: "cte split", rollup: "orders_daily", core: "GROUP BY base.status",
			outer: []string{"WITH __stage0 AS (SELECT pgrollup_k1 AS status, pgrollup_a1 AS n FROM (SELECT ", "ORDER BY 1 ASC NULLS LAST)"}},
		{name: "sequelize orders by the column qualified, groups by it bare", sql: `SELECT "status", SUM("amount") AS "revenue", COUNT(*) AS "n" FROM "orders" AS "orders" GROUP BY "status" ORDER BY "orders"."status" ASC`,
			kind: "split", rollup: "orders_daily", core: "GROUP BY status",
			outer: []string{"ORDER BY pgrollup_k1 ASC"}},
		{name: "qualified by the table's name and schema", sql: `SELECT status, count(*) FROM public.orders GROUP BY public.orders.status ORDER BY orders.status`,
			kind: "split", rollup: "orders_daily", core: "GROUP BY public.orders.status",
			outer: []string{"ORDER BY pgrollup_k1"}},
		// With an alias, the table's own name no longer qualifies its columns.
		{name: "qualified by the table's name under an alias", sql: `SELECT status, count(*) FROM orders o GROUP BY status ORDER BY orders.status`},
		{name: "metabase nested source", sql: `SELECT "source"."status" AS "status", "source"."sum" AS "sum" FROM (SELECT "public"."orders"."status" AS "status", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" GROUP BY "public"."orders"."status") AS "source" LIMIT 1048575`,
			kind: "subquery", rollup: "orders_daily", core: "sum(public.orders.amount) AS sum",
			outer: []string{"SELECT source.status AS status, source.sum AS sum FROM (SELECT ", ") source LIMIT 1048575"}},
		{name: "superset virtual dataset", sql: `SELECT status AS status, sum(total) AS "SUM(total)" FROM (SELECT status, sum(amount) AS total FROM orders GROUP BY status) AS virtual_table GROUP BY status ORDER BY "SUM(total)" DESC LIMIT 100`,
			kind: "subquery", rollup: "orders_daily", core: "sum(amount) AS total",
			outer: []string{"GROUP BY status ORDER BY \"SUM(total)\" DESC LIMIT 100"}},
		{name: "window over aggregate", sql: `SELECT status, sum(amount) AS total, rank() OVER (ORDER BY sum(amount) DESC) AS r FROM orders GROUP BY status`,
			kind: "split", rollup: "orders_daily", core: "sum(amount) AS pgrollup_a1",
			outer: []string{"rank() OVER (ORDER BY pgrollup_a1 DESC) AS r"}},
		{name: "having and to_char", sql: `SELECT status, to_char(sum(amount), 'FM999990.00') AS s FROM orders GROUP BY status HAVING count(*) > 1 ORDER BY s`,
			kind: "split", rollup: "orders_daily", core: "count(*) AS pgrollup_a2",
			outer: []string{"WHERE pgrollup_a2 > 1 ORDER BY s"}},
		{name: "order by text under the warehouse's collation", sql: `SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1`,
			kind: "split", rollup: "orders_daily", core: "GROUP BY status",
			outer: []string{"SELECT pgrollup_k1 AS status, pgrollup_a1 AS count FROM (SELECT ", " ORDER BY 1"}},
		{name: "text function over a dimension", sql: `SELECT upper(status) AS s, count(*) AS n FROM orders GROUP BY status ORDER BY 2 DESC`,
			kind: "split", rollup: "orders_daily", core: "GROUP BY status",
			outer: []string{"upper(pgrollup_k1) AS s"}},
		{name: "date_trunc bucket in a subquery, to_char outside", sql: `SELECT to_char(m, 'YYYY-MM') AS month, n FROM (SELECT date_trunc('month', created_at) AS m, count(*) AS n FROM orders GROUP BY 1) t ORDER BY 1`,
			kind: "subquery", rollup: "orders_daily", core: "date_trunc('month', created_at) AS m"},

		{name: "order by an output name that is also a column's", sql: `SELECT date_trunc('month', created_at) AS created_at, to_char(sum(amount), 'FM0') AS s FROM orders GROUP BY 1 ORDER BY created_at DESC`,
			kind: "split", rollup: "orders_daily", core: "GROUP BY date_trunc('month', created_at)",
			outer: []string{"SELECT pgrollup_k1 AS created_at", "ORDER BY created_at DESC"}},

		// Near misses.
		// Tableau's top-N: o.status is a column of orders, which Postgres
		// names as its origin; the finished statement could not.
		{name: "tableau top-n", sql: `SELECT o.status, sum(o.amount) FROM orders o INNER JOIN (SELECT status AS "$__alias__0", sum(amount) AS "$__alias__1" FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 5) t0 ON o.status = t0."$__alias__0" GROUP BY 1`},
		{name: "a star around the core", sql: `SELECT * FROM (SELECT status, sum(amount) FROM orders GROUP BY status) s`},
		{name: "a cast of a dimension that may keep its origin", sql: `SELECT CAST(s.status AS text) FROM (SELECT status, count(*) FROM orders GROUP BY 1) s`},
		{name: "split reads a column the core does not have", sql: `SELECT status, sum(amount), quantity FROM orders GROUP BY status ORDER BY 1`},
		{name: "window over a column that is not grouped", sql: `SELECT status, sum(amount), rank() OVER (ORDER BY quantity) FROM orders GROUP BY status`},
		{name: "volatile function in the core", sql: `SELECT s.status FROM (SELECT status, sum(amount) FROM orders WHERE random() < 0.5 GROUP BY status) s`},
		{name: "function that may aggregate around the core", sql: `SELECT status, myagg(sum(amount)) FROM orders GROUP BY status ORDER BY 1`},
		{name: "cte shadows the table the core reads", sql: `WITH orders AS (SELECT 'x'::text AS status, 1 AS amount) SELECT s.status FROM (SELECT status, sum(amount) FROM orders GROUP BY status) s`},
		{name: "no aggregate", sql: `SELECT s.status FROM (SELECT status FROM orders) s`},
		{name: "measure no rollup has", sql: `SELECT s.* FROM (SELECT status, sum(discount) FROM orders GROUP BY status) s`},
		{name: "group by a name that is an input column and an output alias", sql: `SELECT lower(status) AS status, count(*) AS n FROM orders GROUP BY status ORDER BY status DESC`},
		{name: "locking clause", sql: `SELECT s.* FROM (SELECT status, count(*) FROM orders GROUP BY status) s, customers c FOR UPDATE OF c`},
		{name: "select into", sql: `SELECT s.* INTO kept FROM (SELECT status, count(*) FROM orders GROUP BY status) s`},
		{name: "order by a position beyond the select-list", sql: `SELECT s.status FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s ORDER BY 2`},
		{name: "grouping sets", sql: `SELECT status, count(*) FROM orders GROUP BY ROLLUP (status) ORDER BY 1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			var got *FinishCore
			var d Decision
			for _, fc := range FinishCores(tree) {
				d = decide(t, cat, Session{TimeZone: "UTC"}, fc.SQL)
				if d.Outcome == OutcomeRollup {
					got = fc
					break
				}
			}
			if c.kind == "" {
				if got != nil {
					t.Fatalf("want no core, got %s core %q answered by %s", got.Kind, got.SQL, d.Rollup)
				}
				return
			}
			if got == nil {
				t.Fatalf("no core a rollup answers among %d", len(FinishCores(tree)))
			}
			if got.Kind != c.kind || d.Rollup != c.rollup || !strings.Contains(got.SQL, c.core) {
				t.Fatalf("got %s core %q by %s; want %s core with %q by %s", got.Kind, got.SQL, d.Rollup, c.kind, c.core, c.rollup)
			}
			rows := make([][]*string, 2)
			for i := range rows {
				rows[i] = make([]*string, len(d.Columns))
				for j := range rows[i] {
					v := "1"
					if isTextOID(d.Columns[j].Type.OID) {
						v = "it's"
					}
					rows[i][j] = &v
				}
			}
			sql, err := got.FinishStatement(d.Columns, rows)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pg_query.Parse(sql); err != nil {
				t.Fatalf("finished statement does not parse: %v\n%s", err, sql)
			}
			for _, w := range c.outer {
				if !strings.Contains(sql, w) {
					t.Errorf("finished statement lacks %q:\n%s", w, sql)
				}
			}
			if strings.Contains(sql, finishPlaceholder) {
				t.Errorf("placeholder left in:\n%s", sql)
			}
		})
	}
}

// TestFinishStatement checks the typed VALUES that replaces a core.
func TestFinishStatement(t *testing.T) {
	tree, err := pg_query.Parse(`SELECT s.status, s.sum FROM (SELECT status, sum(amount) FROM orders GROUP BY status) s`)
	if err != nil {
		t.Fatal(err)
	}
	cores := FinishCores(tree)
	if len(cores) == 0 || cores[0].Kind != "subquery" {
		t.Fatalf("cores: %+v", cores)
	}
	c := cores[0]
	str := func(s string) *string { return &s }
	cols := []ResultColumn{
		{Name: "status", Type: Type{OID: pgtype.VarcharOID, Typmod: 20 + 4}},
		{Name: "sum", Type: Type{OID: pgtype.NumericOID, Typmod: (12<<16 | 2) + 4}},
		{Name: "at", Type: Type{OID: pgtype.TimestamptzOID, Typmod: 3}},
		{Name: "x", Type: plain(pgtype.Float8OID)},
	}
	for _, tc := range []struct {
		name string
		rows [][]*string
		want string
	}{
		{"rows", [][]*string{{str(`it's \ "q"`), str("1.50"), str("2024-01-01 00:00:00+00"), str("0.1")}, {nil, nil, nil, nil}},
			`SELECT s.status, s.sum FROM (SELECT "pgrollup_v"."c1"::pg_catalog.varchar(20) AS "status", "pgrollup_v"."c2"::pg_catalog.numeric(12,2) AS "sum", "pgrollup_v"."c3"::pg_catalog.timestamptz(3) AS "at", "pgrollup_v"."c4"::pg_catalog.float8 AS "x" FROM (VALUES (E'it''s \\ "q"', E'1.50', E'2024-01-01 00:00:00+00', E'0.1'), (NULL, NULL, NULL, NULL)) AS "pgrollup_v"("c1", "c2", "c3", "c4")) s`},
		{"empty", nil,
			`SELECT s.status, s.sum FROM (SELECT NULL::pg_catalog.varchar(20) AS "status", NULL::pg_catalog.numeric(12,2) AS "sum", NULL::pg_catalog.timestamptz(3) AS "at", NULL::pg_catalog.float8 AS "x" WHERE false) s`},
	} {
		got, err := c.FinishStatement(cols, tc.rows)
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := c.FinishStatement([]ResultColumn{{Name: "u", Type: plain(pgtype.UUIDOID)}}, nil); err == nil {
		t.Error("a type pgrollup cannot write back was accepted")
	}
	if _, err := c.FinishStatement(cols, [][]*string{{nil}}); err == nil {
		t.Error("a short row was accepted")
	}
}

// BenchmarkFinishCores is what looking for a core costs a statement that
// no rollup answers whole.
func BenchmarkFinishCores(b *testing.B) {
	for name, sql := range map[string]string{
		"malloy":   `WITH __stage0 AS (SELECT base."status" as "status", COUNT(1) as "n" FROM orders as base GROUP BY 1 ORDER BY 1 asc NULLS LAST) SELECT row_to_json(finalStage) as row FROM __stage0 AS finalStage`,
		"metabase": `SELECT "source"."status" AS "status", "source"."sum" AS "sum" FROM (SELECT "public"."orders"."status" AS "status", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" GROUP BY "public"."orders"."status" ORDER BY "public"."orders"."status" ASC) AS "source" LIMIT 1048575`,
		"no core":  `SELECT id, status FROM orders WHERE id = 5`,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				FinishCores(tree)
			}
		})
	}
}

// TestFinishCoresWithParameters: statements with parameters are not
// finished, wherever the parameter is.
func TestFinishCoresWithParameters(t *testing.T) {
	for sql, want := range map[string]bool{
		`SELECT s.status FROM (SELECT status, count(*) FROM orders GROUP BY 1) s`:                   true,
		`SELECT s.status FROM (SELECT status, count(*) FROM orders WHERE status = $1 GROUP BY 1) s`: false,
		`SELECT s.status, $1::int FROM (SELECT status, count(*) FROM orders GROUP BY 1) s`:          false,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(FinishCores(tree)) > 0; got != want {
			t.Errorf("%s: cores %v, want %v", sql, got, want)
		}
	}
}
