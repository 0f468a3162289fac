package rewrite

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
)

// lambdaCatalog is testCatalog with orders_daily a lambda rollup whose
// version holds the rows below cutoff.
func lambdaCatalog(t *testing.T, cutoff time.Time) *Catalog {
	t.Helper()
	cfg := testConfig()
	cfg.Rollups[0].Lambda = &config.Lambda{Column: "created_at"}
	cfg.Rollups = cfg.Rollups[:1]
	cfg.Rollups[0].Measures = append(cfg.Rollups[0].Measures, "count(amount)", "count(quantity)")
	cat := catalogOf(t, cfg, nil)
	cat.Rollups[0].LambdaCutoff = cutoff
	return cat
}

// TestLambdaStatement checks the statements a lambda answer sends the
// warehouse: the partial core the rollup answers, and the combination of
// its rows with the warehouse's above the cutoff, with Postgres's types.
func TestLambdaStatement(t *testing.T) {
	cutoff := time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC)
	cat := lambdaCatalog(t, cutoff)
	cases := []struct {
		name    string
		sql     string
		partial string   // substring of the partial core
		want    []string // substrings of the statement
		none    bool     // no partial core is answered
	}{
		{name: "sum count avg min max by status", sql: `SELECT status, sum(amount), count(*), avg(amount), min(amount), max(amount) FROM orders GROUP BY status ORDER BY status`,
			partial: "sum(amount) AS pgrollup_p1, count(*) AS pgrollup_p2, sum(amount) AS pgrollup_p3, count(amount) AS pgrollup_p4",
			want: []string{
				`CAST(pg_catalog.sum("pgrollup_p1") AS pg_catalog.numeric) AS "pgrollup_a1"`,
				`CAST(COALESCE(pg_catalog.sum("pgrollup_p2"), 0) AS pg_catalog.int8) AS "pgrollup_a2"`,
				`CAST(pg_catalog.sum("pgrollup_p3") AS pg_catalog.numeric) / CAST(NULLIF(pg_catalog.sum("pgrollup_p4"), 0) AS pg_catalog.numeric) AS "pgrollup_a3"`,
				`pg_catalog.min("pgrollup_p5") AS "pgrollup_a4"`,
				`UNION ALL SELECT status AS pgrollup_k1`,
				`WHERE "orders"."created_at" >= '2024-03-15 00:00:00+00'::pg_catalog.timestamptz OR "orders"."created_at" IS NULL GROUP BY status`,
				`) AS "pgrollup_l" GROUP BY "pgrollup_k1"`,
				"ORDER BY status",
			}},
		{name: "sum of integers is bigint", sql: `SELECT sum(quantity) AS q, avg(quantity) FROM orders o WHERE status = 'paid'`,
			partial: "sum(quantity) AS pgrollup_p1",
			want: []string{`CAST(pg_catalog.sum("pgrollup_p1") AS pg_catalog.int8) AS "pgrollup_a1"`,
				`WHERE status = 'paid' AND ("o"."created_at" >= '2024-03-15 00:00:00+00'::pg_catalog.timestamptz OR "o"."created_at" IS NULL)`}},
		{name: "count distinct of a dimension groups both parts by it", sql: `SELECT date_trunc('day', created_at) AS d, count(DISTINCT status) FROM orders GROUP BY 1`,
			partial: "status AS pgrollup_d1",
			want:    []string{`pg_catalog.count(DISTINCT "pgrollup_d1") AS "pgrollup_a1"`, `GROUP BY date_trunc('day', created_at), status`}},
		{name: "a filter on the aggregate is kept in the parts", sql: `SELECT status, count(*) FILTER (WHERE quantity > 2) FROM orders GROUP BY status`,
			partial: "count(*) FILTER (WHERE quantity > 2) AS pgrollup_p1"},
		{name: "an aggregate that does not combine", sql: `SELECT status, string_agg(status, ',') FROM orders GROUP BY status`, none: true},
		{name: "sum distinct", sql: `SELECT status, sum(DISTINCT amount) FROM orders GROUP BY status`, none: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			var got *LambdaCore
			var d Decision
			for _, l := range LambdaCores(FinishCores(tree)) {
				if d = decide(t, cat, Session{}, l.SQL); d.Outcome == OutcomeRollup {
					got = l
					break
				}
			}
			if c.none {
				if got != nil {
					t.Fatalf("want no partial core, got %q", got.SQL)
				}
				return
			}
			if got == nil {
				t.Fatalf("no partial core answered")
			}
			if !strings.Contains(got.SQL, c.partial) {
				t.Errorf("partial core %q lacks %q", got.SQL, c.partial)
			}
			column, cutoffLit, notNull, ok := cat.LambdaCutoff(cat.Rollups[0])
			if !ok {
				t.Fatal("no cutoff")
			}
			one := "1"
			row := make([]*string, len(d.Columns))
			for i := range row {
				row[i] = &one
			}
			for _, rows := range [][][]*string{nil, {row}} {
				sql, err := got.LambdaStatement(d.Columns, rows, "public.orders", column, cutoffLit, notNull)
				checkStatement(t, sql, err, c.want)
			}
		})
	}
}

// checkStatement requires that a statement for the warehouse was written,
// parses, and contains every one of want.
func checkStatement(t *testing.T, sql string, err error, want []string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg_query.Parse(sql); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, sql)
	}
	for _, w := range want {
		if !strings.Contains(sql, w) {
			t.Errorf("statement lacks %q:\n%s", w, sql)
		}
	}
}

// TestLambdaNotNull: over a NOT NULL time column the warehouse part reads
// one range of it, which an index on it serves.
func TestLambdaNotNull(t *testing.T) {
	cat := lambdaCatalog(t, time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC))
	cat.Tables["public.orders"].column("created_at").NotNull = true
	l, d := answeredPartial(t, cat, `SELECT status, count(*) FROM orders WHERE status <> 'x' GROUP BY status`)
	column, cutoff, notNull, ok := cat.LambdaCutoff(cat.Rollups[0])
	if !ok || !notNull {
		t.Fatalf("cutoff %v, not null %v", ok, notNull)
	}
	sql, err := l.LambdaStatement(d.Columns, nil, "public.orders", column, cutoff, notNull)
	checkStatement(t, sql, err, []string{`WHERE status <> 'x' AND "orders"."created_at" >= '2024-03-15 00:00:00+00'::pg_catalog.timestamptz GROUP BY status`})
	if strings.Contains(sql, "IS NULL") {
		t.Errorf("reads NULL times of a NOT NULL column:\n%s", sql)
	}
}

// TestLambdaCutoffInsideBucket: a cutoff inside a bucket (the build holds
// that bucket's rows below it) is written to the microsecond, and a
// statement grouping by the buckets still combines both parts of that
// bucket by its keys. A date column's cutoff is a day.
func TestLambdaCutoffInsideBucket(t *testing.T) {
	cat := lambdaCatalog(t, time.Date(2024, 3, 15, 10, 17, 42, 123456000, time.UTC))
	l, d := answeredPartial(t, cat, `SELECT date_trunc('day', created_at) AS d, status, count(*), sum(amount) FROM orders WHERE created_at >= '2024-03-01' GROUP BY 1, 2`)
	column, cutoff, notNull, ok := cat.LambdaCutoff(cat.Rollups[0])
	if !ok {
		t.Fatal("no cutoff")
	}
	sql, err := l.LambdaStatement(d.Columns, nil, "public.orders", column, cutoff, notNull)
	checkStatement(t, sql, err, []string{
		`"orders"."created_at" >= '2024-03-15 10:17:42.123456+00'::pg_catalog.timestamptz OR "orders"."created_at" IS NULL`,
		`GROUP BY date_trunc('day', created_at), status`,
		`) AS "pgrollup_l" GROUP BY "pgrollup_k1", "pgrollup_k2"`,
	})
	below, err := l.BelowCutoff("public.orders", column, cutoff)
	checkStatement(t, below, err, []string{`"orders"."created_at" < '2024-03-15 10:17:42.123456+00'::pg_catalog.timestamptz`})

	col := cat.Tables["public.orders"].column("created_at")
	col.Type = plain(pgtype.DateOID)
	if _, lit, _, ok := cat.LambdaCutoff(cat.Rollups[0]); ok {
		t.Errorf("a date column's cutoff inside a day: %s", lit)
	}
	cat.Rollups[0].LambdaCutoff = time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC)
	if _, lit, _, ok := cat.LambdaCutoff(cat.Rollups[0]); !ok || lit != `'2024-03-15'::pg_catalog.date` {
		t.Errorf("a date column's cutoff: %s %v", lit, ok)
	}
}

// answeredPartial is the first partial core of sql that cat answers, and
// its decision.
func answeredPartial(t *testing.T, cat *Catalog, sql string) (*LambdaCore, Decision) {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range LambdaCores(FinishCores(tree)) {
		if d := decide(t, cat, Session{}, l.SQL); d.Outcome == OutcomeRollup {
			return l, d
		}
	}
	t.Fatalf("no partial core of %s answered", sql)
	return nil, Decision{}
}

// TestLambdaIDs: a lambda rollup on an id column splits at its id cutoff,
// a bigint literal; its time dimension plays no part in the split.
func TestLambdaIDs(t *testing.T) {
	cat := lambdaCatalog(t, time.Time{})
	st := cat.Rollups[0]
	st.Def.Lambda = &config.Lambda{Column: "id", LateIDs: 10}
	cut := int64(-42)
	st.LambdaCutoffID = &cut
	cases := []struct {
		name    string
		sql     string
		notNull bool
		want    []string
		below   []string // substrings of the statement of the rows below the cutoff
	}{
		{name: "nullable id", sql: `SELECT status, sum(amount) FROM orders o WHERE status <> 'x' GROUP BY status`,
			want:  []string{`WHERE status <> 'x' AND ("o"."id" >= '-42'::pg_catalog.int8 OR "o"."id" IS NULL) GROUP BY status`},
			below: []string{`SELECT status AS pgrollup_k1, sum(amount) AS pgrollup_p1 FROM orders o WHERE status <> 'x' AND "o"."id" < '-42'::pg_catalog.int8 GROUP BY status`}},
		{name: "not null id: one range", sql: `SELECT count(*), avg(quantity) FROM orders`, notNull: true,
			want:  []string{`FROM orders WHERE "orders"."id" >= '-42'::pg_catalog.int8`},
			below: []string{`FROM orders WHERE "orders"."id" < '-42'::pg_catalog.int8`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat.Tables["public.orders"].column("id").NotNull = c.notNull
			column, cutoff, notNull, ok := cat.LambdaCutoff(st)
			if !ok || column != "id" || notNull != c.notNull {
				t.Fatalf("cutoff of the id column: %q %q %v %v", column, cutoff, notNull, ok)
			}
			l, d := answeredPartial(t, cat, c.sql)
			sql, err := l.LambdaStatement(d.Columns, nil, "public.orders", column, cutoff, notNull)
			checkStatement(t, sql, err, c.want)
			if c.notNull && strings.Contains(sql, "IS NULL") {
				t.Errorf("reads NULL ids of a NOT NULL column:\n%s", sql)
			}
			// What verification runs: the partial core below the cutoff.
			below, err := l.BelowCutoff("public.orders", column, cutoff)
			checkStatement(t, below, err, c.below)
			if strings.Contains(below, "UNION") || strings.Contains(below, "IS NULL") {
				t.Errorf("the rows below the cutoff:\n%s", below)
			}
		})
	}
	// An id column of another type has no cutoff literal.
	cat.Tables["public.orders"].column("id").Type = plain(pgtype.NumericOID)
	if _, _, _, ok := cat.LambdaCutoff(st); ok {
		t.Error("a numeric id column has a cutoff")
	}
}
