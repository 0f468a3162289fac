package rewrite

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// avgRow is one row of the avg test table: group g, sub-group h (the rollup
// keeps h, the queries drop it, so every average is re-aggregated), and one
// value per type; nil is NULL.
type avgRow struct {
	g, h int
	i    *int32  // integer
	b    *int64  // bigint
	n    *string // numeric(12,2)
	n4   *string // numeric(20,4)
	s    *int16  // smallint
}

// avgRows are groups chosen for select_div_scale's corners, then random ones.
func avgRows() []avgRow {
	var rows []avgRow
	i32 := func(v int32) *int32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	i16 := func(v int16) *int16 { return &v }
	add := func(g int, i *int32, b *int64, n, n4 *string, s *int16) {
		rows = append(rows, avgRow{g: g, h: len(rows) % 3, i: i, b: b, n: n, n4: n4, s: s})
	}
	// 0: avg(1, 2) = 1.5000000000000000, the example of DESIGN.md §4.
	add(0, i32(1), i64(1), str("1.00"), str("1.0000"), i16(1))
	add(0, i32(2), i64(2), str("2.00"), str("2.0000"), i16(2))
	// 1: equal first digits (sum 5, count 5): the quotient's weight is
	// assumed one less, 20 decimals.
	for k := 0; k < 5; k++ {
		add(1, i32(1), i64(1), str("1.00"), str("1.0000"), i16(1))
	}
	// 2: only NULLs: count 0, avg NULL.
	add(2, nil, nil, nil, nil, nil)
	add(2, nil, nil, nil, nil, nil)
	// 3: a large count and a tiny sum.
	for k := 0; k < 3000; k++ {
		add(3, i32(0), i64(0), str("0.00"), str("0.0000"), i16(0))
	}
	add(3, i32(1), i64(1), str("0.01"), str("0.0001"), i16(1))
	// 4: negative halves.
	add(4, i32(-7), i64(-7), str("-7.00"), str("-7.0000"), i16(-7))
	add(4, i32(-8), i64(-8), str("-8.00"), str("-8.0000"), i16(-8))
	// 5: sums beyond bigint; an odd last digit makes a half at the last
	// place, rounded away from zero.
	add(5, i32(2147483647), i64(4611686018427387904), str("9999999999.99"), str("1234567890123456.0001"), i16(32767))
	add(5, i32(2147483646), i64(4611686018427387905), str("9999999999.98"), str("-0.0000"), i16(32766))
	add(5, i32(2147483647), i64(4611686018427387906), str("9999999999.99"), str("0.0000"), i16(32767))
	// 6: the same, negative.
	add(6, i32(-2147483647), i64(-4611686018427387904), str("-9999999999.99"), str("-1234567890123456.0001"), i16(-32767))
	add(6, i32(-2147483648), i64(-4611686018427387905), str("-9999999999.99"), str("0.0000"), i16(-32768))
	// 7: zeros: avg 0 with 20 decimals.
	add(7, i32(0), i64(0), str("0.00"), str("0.0000"), i16(0))
	add(7, i32(0), i64(0), str("-0.00"), str("0.0000"), i16(0))
	// 8: a sum of zero from opposite values.
	add(8, i32(5), i64(5), str("5.55"), str("5.5555"), i16(5))
	add(8, i32(-5), i64(-5), str("-5.55"), str("-5.5555"), i16(-5))
	// 9: a single value (count 1) of each magnitude.
	add(9, i32(123456789), i64(1000000000000000000), str("0.01"), str("9999999999999999.9999"), i16(9999))
	// 10-99: random values of random magnitudes and signs, some NULL.
	r := rand.New(rand.NewSource(42))
	for g := 10; g < 100; g++ {
		n := 1 + r.Intn(40)
		mag := r.Intn(10)
		for k := 0; k < n; k++ {
			sign := int64(1)
			if r.Intn(3) == 0 {
				sign = -1
			}
			v := sign * r.Int63n(pow10(mag)+1)
			var iv *int32
			var sv *int16
			if r.Intn(10) > 0 {
				iv = i32(int32(v % 2147483647))
				sv = i16(int16(v % 32767))
			}
			var nv, n4v *string
			if r.Intn(10) > 0 {
				nv = str(fmt.Sprintf("%d.%02d", v%10000000000, r.Intn(100)))
				if v < 0 && v%10000000000 == 0 {
					nv = str(fmt.Sprintf("-0.%02d", r.Intn(100)))
				}
				n4v = str(fmt.Sprintf("%d.%04d", v, r.Intn(10000)))
				if v < 0 && v == 0 {
					n4v = str("0.0000")
				}
			}
			add(g, iv, i64(v*int64(1+r.Intn(1000))), nv, n4v, sv)
		}
	}
	return rows
}

func pow10(n int) int64 {
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// avgMatchesPostgres checks AVG of smallint, integer, bigint, numeric(12,2)
// and numeric(20,4) re-aggregated from rollup rows against Postgres,
// character for character in Postgres's text output.
func avgMatchesPostgres(t *testing.T, ctx context.Context, pg *pgx.Conn) {
	rows := avgRows()
	if _, err := pg.Exec(ctx, `CREATE TABLE avgt (g int, h int, i int, b bigint, n numeric(12,2), n4 numeric(20,4), s smallint)`); err != nil {
		t.Fatal(err)
	}
	src := make([][]any, len(rows))
	for k, r := range rows {
		src[k] = []any{r.g, r.h, r.i, r.b, r.n, r.n4, r.s}
	}
	if _, err := pg.CopyFrom(ctx, pgx.Identifier{"avgt"}, []string{"g", "h", "i", "b", "n", "n4", "s"}, pgx.CopyFromRows(src)); err != nil {
		t.Fatal(err)
	}

	db := openDuck(t)
	var vals []string
	lit := func(p any) string {
		switch v := p.(type) {
		case *int32:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *int64:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *int16:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *string:
			if v != nil {
				return *v
			}
		}
		return "NULL"
	}
	for _, r := range rows {
		vals = append(vals, fmt.Sprintf("(%d, %d, %s, %s, %s, %s, %s)", r.g, r.h, lit(r.i), lit(r.b), lit(r.n), lit(r.n4), lit(r.s)))
	}
	for _, q := range []string{
		`CREATE TABLE avgt (g INTEGER, h INTEGER, i INTEGER, b BIGINT, n DECIMAL(12,2), n4 DECIMAL(20,4), s SMALLINT)`,
		`INSERT INTO avgt VALUES ` + strings.Join(vals, ", "),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.200s: %v", q, err)
		}
	}

	cfg := &config.Config{BuildTimezone: "UTC", Rollups: []config.Rollup{{
		Name: "avg_gh", Table: "public.avgt", Dimensions: []string{"g", "h"},
		Measures: []string{"avg(i)", "avg(b)", "avg(n)", "avg(n4)", "avg(s)"},
	}}}
	types := map[string]string{
		"public.avgt.g": "integer", "public.avgt.h": "integer", "public.avgt.i": "integer", "public.avgt.b": "bigint",
		"public.avgt.n": "numeric(12,2)", "public.avgt.n4": "numeric(20,4)", "public.avgt.s": "smallint",
	}
	cat, err := NewOfflineCatalog(cfg, types)
	if err != nil {
		t.Fatal(err)
	}
	cat.PartialColumns = false
	// The rollup as the builder stores it (rollup/plan.go's storage types).
	f := filepath.Join(t.TempDir(), "avg_gh.parquet")
	build := `SELECT g AS d0, h AS d1,
		CAST(sum(i) AS BIGINT) AS m0_sum, count(i) AS m0_count,
		CAST(sum(b) AS DECIMAL(38,0)) AS m1_sum, count(b) AS m1_count,
		CAST(sum(n) AS DECIMAL(38,2)) AS m2_sum, count(n) AS m2_count,
		CAST(sum(n4) AS DECIMAL(38,4)) AS m3_sum, count(n4) AS m3_count,
		CAST(sum(s) AS BIGINT) AS m4_sum, count(s) AS m4_count
		FROM avgt GROUP BY g, h`
	if _, err := db.Exec("COPY (" + build + ") TO " + sqlquote.Literal(f) + " (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	got := rollupLayout(t, cat.rollups()[0])
	want := []layoutColumn{{"d0", "INTEGER"}, {"d1", "INTEGER"}, {"m0_count", "BIGINT"}, {"m0_sum", "BIGINT"}, {"m1_count", "BIGINT"}, {"m1_sum", "DECIMAL(38,0)"},
		{"m2_count", "BIGINT"}, {"m2_sum", "DECIMAL(38,2)"}, {"m3_count", "BIGINT"}, {"m3_sum", "DECIMAL(38,4)"}, {"m4_count", "BIGINT"}, {"m4_sum", "BIGINT"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the test's build does not have the rollup layout:\n%v\n%v", got, want)
	}
	cat.Rollups[0].Partitions = []Partition{{Files: []string{f}}}

	for _, q := range []string{
		"SELECT g, avg(i), avg(b), avg(n), avg(n4), avg(s) FROM avgt GROUP BY g",
		"SELECT avg(i), avg(b), avg(n), avg(n4), avg(s) FROM avgt",
		"SELECT avg(i), avg(b), avg(n), avg(n4), avg(s) FROM avgt WHERE g = 2",
		"SELECT avg(i), avg(n) FROM avgt WHERE g > 1000",
		"SELECT g, avg(i) FILTER (WHERE h = 1), avg(n4) FILTER (WHERE h <> 1) FROM avgt GROUP BY g",
		"SELECT h, avg(b) AS mean, avg(n) FROM avgt WHERE g BETWEEN 3 AND 9 GROUP BY h",
		`SELECT "source"."g", "source"."avg" FROM (SELECT g, avg(n) AS "avg" FROM avgt GROUP BY g) AS "source" ORDER BY "source"."g" LIMIT 50`,
	} {
		t.Run(q, func(t *testing.T) {
			d := decide(t, cat, Session{TimeZone: "UTC"}, q)
			if d.Outcome != OutcomeRollup {
				t.Fatalf("expected a rollup route: %v", d.Reason)
			}
			for _, c := range d.Columns {
				if c.Name == "avg" && (c.Type != plain(pgtype.NumericOID) || c.DuckType != "VARCHAR") {
					t.Errorf("avg column described as %+v", c)
				}
			}
			want := pgRows(t, ctx, pg, q)
			got := duckRows(t, db, d, "UTC")
			if !strings.Contains(q, "ORDER BY") {
				sort.Strings(want)
				sort.Strings(got)
			}
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Fatalf("results differ\nSQL: %s\npostgres:\n%s\nduckdb:\n%s", d.SQL, strings.Join(want, "\n"), strings.Join(got, "\n"))
			}
		})
	}
}
