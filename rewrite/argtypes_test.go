package rewrite

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
)

// measureTypes are the columns of the measure tests' table, typed as the
// warehouse's catalog spells them. mo is left out: a column of a type
// pgrollup does not read (money) keeps OID 0.
var measureTypes = map[string]string{
	"public.m.g": "text", "public.m.h": "integer",
	"public.m.i2": "smallint", "public.m.i4": "integer", "public.m.j4": "integer", "public.m.i8": "bigint",
	"public.m.n": "numeric(12,2)", "public.m.n3": "numeric(10,3)", "public.m.nn": "numeric",
	"public.m.wide": "numeric(30,2)", "public.m.huge": "numeric(40,2)",
	"public.m.f4": "real", "public.m.f8": "double precision",
	"public.m.d": "date", "public.m.d2": "date", "public.m.t": "text",
}

// measureCatalog is a serving catalog (column types known) with one rollup
// per measure, named m0, m1, ..., each grouped by g and h.
func measureCatalog(t *testing.T, measures ...string) *Catalog {
	t.Helper()
	cfg := &config.Config{BuildTimezone: "UTC"}
	for i, m := range measures {
		cfg.Rollups = append(cfg.Rollups, config.Rollup{
			Name: "m" + itoa(i), Table: "public.m", Dimensions: []string{"g", "h"}, Measures: []string{m},
		})
	}
	cat, err := NewOfflineCatalog(cfg, measureTypes)
	if err != nil {
		t.Fatal(err)
	}
	cat.PartialColumns = false
	cat.TextSortsBytewise = true
	return cat
}

// TestTypeOfMeasureArgs checks the types, numeric display scales and digit
// bounds of measure arguments against what Postgres 15 gives the same
// expressions (pg_typeof, RowDescription's typmod and the text of a value).
func TestTypeOfMeasureArgs(t *testing.T) {
	numeric := func(scale, digits int) argInfo {
		return argInfo{typ: plain(pgtype.NumericOID), scale: scale, digits: digits}
	}
	typed := func(oid uint32) argInfo { return columnInfo(plain(oid)) }
	tests := []struct {
		arg  string
		want argInfo
		err  string // substring of the error; "" for none
	}{
		{arg: "i4", want: typed(pgtype.Int4OID)},
		{arg: "n", want: argInfo{typ: Type{pgtype.NumericOID, (12<<16 | 2) + 4}, scale: 2, digits: 12}},
		{arg: "i4 * j4", want: typed(pgtype.Int4OID)},
		{arg: "i4 - j4", want: typed(pgtype.Int4OID)},
		{arg: "i4 + j4", want: typed(pgtype.Int4OID)},
		{arg: "i2 * i2", want: typed(pgtype.Int2OID)},
		{arg: "i2 + i4", want: typed(pgtype.Int4OID)},
		{arg: "i4 * i8", want: typed(pgtype.Int8OID)},
		{arg: "i4 / j4", want: typed(pgtype.Int4OID)},
		{arg: "i4 % j4", want: typed(pgtype.Int4OID)},
		{arg: "i2 / i2", want: typed(pgtype.Int2OID)},
		{arg: "i4 * 3000000000", want: typed(pgtype.Int8OID)},
		{arg: "i4::numeric", want: numeric(0, 10)},
		{arg: "CAST(i4 AS numeric)", want: numeric(0, 10)},
		{arg: "i4 * 1.5", want: numeric(1, 12)},
		{arg: "i4 * 1.50", want: numeric(2, 13)},
		{arg: "i4 * 1e3", want: numeric(0, 14)},
		{arg: "i4 * 1.5e-1", want: numeric(2, 12)},
		{arg: "i4 * -1.5", want: numeric(1, 12)},
		{arg: "n * i4", want: numeric(2, 22)},
		{arg: "n * n3", want: numeric(5, 22)},
		{arg: "n - n3", want: numeric(3, 14)},
		{arg: "n + 1", want: numeric(2, 13)},
		{arg: "-n", want: numeric(2, 12)},
		{arg: "'2.50'::numeric * i4", want: numeric(2, 13)},
		{arg: "n / i4", want: numeric(-1, -1)},
		{arg: "n % i4", want: numeric(-1, -1)},
		{arg: "nn", want: numeric(-1, -1)},
		{arg: "nn::numeric", want: numeric(-1, -1)},
		{arg: "f8::numeric", want: numeric(-1, -1)},
		{arg: "n::numeric(14,1)", want: argInfo{typ: Type{pgtype.NumericOID, (14<<16 | 1) + 4}, scale: 1, digits: 14}},
		{arg: "(n * i4)::numeric(20,4)", want: argInfo{typ: Type{pgtype.NumericOID, (20<<16 | 4) + 4}, scale: 4, digits: 20}},
		{arg: "i4 * f8", want: typed(pgtype.Float8OID)},
		{arg: "i4 * f4", want: typed(pgtype.Float8OID)},
		{arg: "f4 * f4", want: typed(pgtype.Float4OID)},
		{arg: "n * f8", want: typed(pgtype.Float8OID)},
		{arg: "n * f4", want: typed(pgtype.Float8OID)},
		{arg: "i4::float8", want: typed(pgtype.Float8OID)},
		{arg: "i4::real", want: typed(pgtype.Float4OID)},
		{arg: "i4::bigint * i4", want: typed(pgtype.Int8OID)},
		{arg: "d - d2", want: typed(pgtype.Int4OID)},
		{arg: "d + i4", want: typed(pgtype.DateOID)},
		{arg: "CASE WHEN h > 0 THEN i4 ELSE 0 END", want: typed(pgtype.Int4OID)},
		{arg: "CASE WHEN h > 0 THEN i2 ELSE 0 END", want: typed(pgtype.Int4OID)},
		{arg: "CASE WHEN h > 0 THEN n ELSE 0.00 END", want: numeric(2, 12)},
		{arg: "CASE WHEN h > 0 THEN n ELSE n END", want: argInfo{typ: Type{pgtype.NumericOID, (12<<16 | 2) + 4}, scale: 2, digits: 12}},
		{arg: "CASE WHEN h > 0 THEN n END", want: numeric(2, 12)},
		{arg: "CASE WHEN h > 0 THEN n ELSE 0 END", want: numeric(-1, -1)},
		{arg: "CASE WHEN h > 0 THEN i4 ELSE f4 END", want: typed(pgtype.Float4OID)},
		{arg: "COALESCE(n, 0.00)", want: numeric(2, 12)},
		{arg: "COALESCE(i8, 0)", want: typed(pgtype.Int8OID)},
		{arg: "COALESCE(f4, 0)", want: typed(pgtype.Float4OID)},
		{arg: "COALESCE(i4, f8)", want: typed(pgtype.Float8OID)},
		{arg: "t", want: typed(pgtype.TextOID)},
		{arg: "mo::float8", want: typed(pgtype.Float8OID)},
		{arg: "abs(i4)", err: "function abs() is not typed"},
		{arg: "i4 * '2'", err: "string literal"},
		{arg: "i4 ^ j4", err: "operator ^ is not typed"},
		{arg: "t || t", err: "operator || is not typed"},
		{arg: "f8 % f8", err: "not an operator in Postgres"},
		{arg: "d - i8", err: "date - bigint is not typed"},
		{arg: "i4 * NULL", err: "NULL"},
		{arg: "CASE WHEN h > 0 THEN i4 ELSE t END", err: "CASE of integer and text"},
		{arg: "mo", err: "column mo has a type pgrollup does not know"},
		{arg: "mo * 2", err: "column mo has a type pgrollup does not know"},
	}
	var measures []string
	for _, tt := range tests {
		measures = append(measures, "min("+tt.arg+")")
	}
	cat := measureCatalog(t, measures...)
	for i, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			cr := cat.rollups()[i]
			if cr.err != nil {
				t.Fatalf("rollup does not compile: %v", cr.err)
			}
			if len(cr.parts) != 1 {
				t.Fatalf("want one stored part, got %v", cr.parts)
			}
			for _, p := range cr.parts {
				if tt.err != "" {
					if p.argErr == nil || !strings.Contains(p.argErr.msg, tt.err) {
						t.Fatalf("want an error with %q, got %+v (%v)", tt.err, p, p.argErr)
					}
					return
				}
				if p.argErr != nil {
					t.Fatalf("not typed: %v", p.argErr)
				}
				got := argInfo{typ: p.argType, scale: p.scale, digits: p.digits}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

// TestMeasureDecisions decides a statement over each measure form the config
// validator accepts: a rollup answers it with the type Postgres gives the
// aggregate, and DuckDB runs the rewritten SQL over a file in the builder's
// layout; or it passes through by decision, with a reason naming the measure.
func TestMeasureDecisions(t *testing.T) {
	tests := []struct {
		measure string // stored by the rollup
		query   string // the aggregate asked for; the measure itself when ""
		want    Type   // the result column's type when answered
		duck    string // the DuckDB type promised for it; "" for any
		reason  string // substring of the reason when the statement passes through
		exact   bool   // grouped by every dimension, as a stored count(distinct) needs
	}{
		{measure: "sum(i4 * j4)", want: plain(pgtype.Int8OID)},
		{measure: "sum(i4 - j4)", want: plain(pgtype.Int8OID)},
		{measure: "sum(i4 + j4)", want: plain(pgtype.Int8OID)},
		{measure: "sum(i2 * i2)", want: plain(pgtype.Int8OID)},
		{measure: "sum(i4 / j4)", want: plain(pgtype.Int8OID)},
		{measure: "sum(i4 * i8)", want: plain(pgtype.NumericOID)},
		{measure: "sum(i8)", want: plain(pgtype.NumericOID)},
		{measure: "sum(i4::numeric)", want: plain(pgtype.NumericOID)},
		{measure: "sum(i4 * 1.5)", want: plain(pgtype.NumericOID)},
		{measure: "sum(n * i4)", want: plain(pgtype.NumericOID)},
		{measure: "sum(n * n3)", want: plain(pgtype.NumericOID)},
		{measure: "sum(n - n3)", want: plain(pgtype.NumericOID)},
		{measure: "sum((n * i4)::numeric(20,4))", want: plain(pgtype.NumericOID)},
		{measure: "sum(COALESCE(n, 0.00))", want: plain(pgtype.NumericOID)},
		{measure: "sum(CASE WHEN h > 0 THEN i4 ELSE 0 END)", want: plain(pgtype.Int8OID)},
		{measure: "sum(wide)", want: plain(pgtype.NumericOID)},
		{measure: "sum(i4 * f8)", want: plain(pgtype.Float8OID)},
		{measure: "sum(i4 * f4)", want: plain(pgtype.Float8OID)},
		{measure: "sum(f4 * f4)", want: plain(pgtype.Float4OID)},
		{measure: "sum(f4)", want: plain(pgtype.Float4OID)},
		{measure: "sum(n * f8)", want: plain(pgtype.Float8OID)},
		{measure: "sum(i4::float8)", want: plain(pgtype.Float8OID)},
		{measure: "sum(d - d2)", want: plain(pgtype.Int8OID)},
		{measure: "min(i4 * j4)", want: plain(pgtype.Int4OID)},
		{measure: "max(i4 * i8)", want: plain(pgtype.Int8OID)},
		{measure: "min(n * i4)", want: plain(pgtype.NumericOID), duck: "DECIMAL"},
		{measure: "max(i4 * 1.5)", want: plain(pgtype.NumericOID), duck: "DECIMAL"},
		{measure: "max(n)", want: plain(pgtype.NumericOID), duck: "DECIMAL"},
		{measure: "min(i4 * f4)", want: plain(pgtype.Float8OID)},
		{measure: "max(f4)", want: plain(pgtype.Float4OID)},
		{measure: "max(d + i4)", want: plain(pgtype.DateOID)},
		{measure: "avg(i4 * j4)", want: plain(pgtype.NumericOID), duck: "VARCHAR"},
		{measure: "avg(i4 * i8)", want: plain(pgtype.NumericOID), duck: "VARCHAR"},
		{measure: "avg(n * i4)", want: plain(pgtype.NumericOID), duck: "VARCHAR"},
		{measure: "avg(i4::numeric)", want: plain(pgtype.NumericOID), duck: "VARCHAR"},
		{measure: "avg(i4 * f8)", want: plain(pgtype.Float8OID)},
		{measure: "avg(f8)", want: plain(pgtype.Float8OID)},
		{measure: "count(i4 * j4)", want: plain(pgtype.Int8OID)},
		{measure: "count(n / i4)", want: plain(pgtype.Int8OID)},
		{measure: "count(mo)", want: plain(pgtype.Int8OID)},
		{measure: "count(*)", want: plain(pgtype.Int8OID)},
		{measure: "count(distinct i4)", want: plain(pgtype.Int8OID), exact: true},
		{measure: "sum(i4 * j4)", query: "avg(i4 * j4)", reason: "avg(the expression) needs sum(the expression) and count(the expression)"},

		{measure: "sum(n / i4)", reason: "its own numeric scale"},
		{measure: "sum(nn)", reason: "its own numeric scale"},
		{measure: "sum(f8::numeric)", reason: "its own numeric scale"},
		{measure: "min(n % i4)", reason: "its own numeric scale"},
		{measure: "sum(CASE WHEN h > 0 THEN n ELSE 0 END)", reason: "its own numeric scale"},
		{measure: "avg(nn)", reason: "its own numeric scale"},
		{measure: "sum(huge)", reason: "more digits than the 38"},
		{measure: "sum(wide * wide)", reason: "more digits than the 38"},
		{measure: "avg(f4)", reason: "adds avg of real in double precision"},
		{measure: "avg(f4 * f4)", reason: "adds avg of real in double precision"},
		{measure: "sum(abs(i4))", reason: "measure sum(abs(i4)): pgrollup cannot type its expression"},
		{measure: "sum(i4 * '2')", reason: "string literal"},
		{measure: "min(i4 ^ j4)", reason: "operator ^ is not typed"},
		{measure: "sum(mo)", reason: "column mo has a type pgrollup does not know"},
		{measure: "max(mo * 2)", reason: "column mo has a type pgrollup does not know"},
	}
	var measures []string
	for _, tt := range tests {
		measures = append(measures, tt.measure)
	}
	cat := measureCatalog(t, measures...)
	db := openDuck(t)
	writeEmptyRollups(t, db, cat, t.TempDir())
	for i, tt := range tests {
		agg := tt.query
		if agg == "" {
			agg = tt.measure
		}
		name := "m" + itoa(i)
		t.Run(tt.measure+" as "+agg, func(t *testing.T) {
			only(cat, name)
			defer func() {
				for _, r := range cat.Rollups {
					r.Status, r.Version = StatusActive, "offline"
				}
			}()
			// Grouped by g only: the rollup's h groups are re-aggregated.
			sqls := []string{"SELECT g, " + agg + " FROM m GROUP BY g", "SELECT " + agg + " FROM m"}
			if tt.exact {
				sqls = []string{"SELECT g, h, " + agg + " FROM m GROUP BY g, h"}
			}
			for _, sql := range sqls {
				d := decide(t, cat, Session{TimeZone: "UTC"}, sql)
				if tt.reason != "" {
					if d.Outcome != OutcomePassthrough {
						t.Fatalf("%s: want a passthrough, got rollup %s", sql, d.Rollup)
					}
					var got *Reason
					for _, c := range d.Candidates {
						if c.Rollup == name {
							got = &c.Reason
						}
					}
					if got == nil || got.Code != ReasonMeasure || !strings.Contains(got.Message, tt.reason) {
						t.Fatalf("%s: want rollup %s rejected for %q, got %v", sql, name, tt.reason, got)
					}
					t.Logf("%s: %s", sql, got)
					continue
				}
				if d.Outcome != OutcomeRollup || d.Rollup != name {
					t.Fatalf("%s: want rollup %s, got %s %v (candidates %+v)", sql, name, d.Outcome, d.Reason, d.Candidates)
				}
				c := d.Columns[len(d.Columns)-1]
				if c.Type != tt.want {
					t.Fatalf("%s: result typed %+v, want %+v", sql, c.Type, tt.want)
				}
				if tt.duck != "" && c.DuckType != tt.duck {
					t.Fatalf("%s: DuckDB type %q, want %q", sql, c.DuckType, tt.duck)
				}
				duckAccepts(t, db, d)
			}
		})
	}
}

// TestUnknownResultTypeIsRefused: at serving time a result column whose type
// is not known is refused by the decision, since the answer path could only
// fail converting its values; the offline explain, which may not know the
// types, still decides without them.
func TestUnknownResultTypeIsRefused(t *testing.T) {
	cfg := &config.Config{BuildTimezone: "UTC", Rollups: []config.Rollup{{
		Name: "by_mo", Table: "public.m", Dimensions: []string{"mo"}, Measures: []string{"count(*)"},
	}}}
	for _, partial := range []bool{false, true} {
		cat, err := NewOfflineCatalog(cfg, measureTypes)
		if err != nil {
			t.Fatal(err)
		}
		cat.PartialColumns = partial
		d := decide(t, cat, Session{TimeZone: "UTC"}, "SELECT mo, count(*) FROM m GROUP BY mo")
		if partial && d.Outcome != OutcomeRollup {
			t.Fatalf("offline: want the rollup route, got %v", d.Reason)
		}
		if !partial && (d.Outcome != OutcomePassthrough || d.Reason.Code != ReasonExpression || !strings.Contains(d.Reason.Message, "result column 1 (mo)")) {
			t.Fatalf("serving: want a passthrough naming the column, got %s %v", d.Outcome, d.Reason)
		}
	}
}
