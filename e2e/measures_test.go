package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// measuresDB is the measure suite's own database in the shared cluster.
const measuresDB = "e2e_measures"

// measuresFixtureSQL is a fact table with a column of every number type the
// rewriter types (and a money column it does not), NULLs in each, negative
// values, and two dates. g is the dimension statements group by; h is a
// second dimension, re-aggregated away when a statement groups by g only.
// Floats are multiples of 1/8 small enough that their sums are exact in
// real and in double precision whatever the order of additions, so that
// every answer compares exactly.
const measuresFixtureSQL = `
CREATE TABLE facts (
	id int PRIMARY KEY,
	g text NOT NULL,
	h int NOT NULL,
	i2 int2, i4 int4, j4 int4, i8 int8,
	n numeric(12,2), n3 numeric(10,3), nn numeric,
	f4 real, f8 double precision,
	d date, d2 date,
	mo money
);
INSERT INTO facts
SELECT x,
	(ARRAY['north','south','east','west','center'])[1 + x % 5],
	x % 4,
	CASE WHEN x % 11 = 0 THEN NULL ELSE (x % 300 - 150)::int2 END,
	CASE WHEN x % 13 = 0 THEN NULL ELSE (x * 37) % 20000 - 5000 END,
	CASE WHEN x % 17 = 0 THEN NULL ELSE (x * 53) % 3000 - 700 END,
	CASE WHEN x % 19 = 0 THEN NULL ELSE (x::int8 * 7919 * 1000003) % 1000000000000 - 400000000000 END,
	CASE WHEN x % 7 = 0 THEN NULL ELSE round((x * 7.31) % 2000 - 900, 2) END,
	CASE WHEN x % 9 = 0 THEN NULL ELSE round((x * 3.137) % 500 - 100, 3) END,
	CASE WHEN x % 5 = 0 THEN NULL ELSE x / 7.0 END,
	CASE WHEN x % 23 = 0 THEN NULL ELSE ((x % 97) - 40) * 0.25 END,
	CASE WHEN x % 29 = 0 THEN NULL ELSE ((x * 31) % 1601 - 800) / 8.0 END,
	date '2024-01-01' + x % 400,
	date '2023-06-01' + (x * 7) % 300,
	(x % 1000) * 1.25
FROM generate_series(1, 3000) x;
ANALYZE facts;
`

// measureCase is one measure form the config validator accepts, stored alone
// in its own rollup.
type measureCase struct {
	measure string
	dims    []string // the rollup's dimensions; g and h when nil
	query   string   // the aggregate the statements ask for; the measure when ""
	// anyRollup: the aggregate is computed from dimensions, so any rollup
	// grouped by them may answer.
	anyRollup bool
	// reject is part of the reason EXPLAIN (ROLLUP) gives for the rollup:
	// the statement passes through by decision.
	reject string
}

var measureCases = []measureCase{
	{measure: "count(*)"},
	{measure: "count(i4)"},
	{measure: "count(i4 * j4)"},
	{measure: "count(nn / 3)"},
	{measure: "count(distinct h)", dims: []string{"g"}},
	{measure: "count(*)", query: "count(distinct h)", anyRollup: true},
	{measure: "sum(i2)"},
	{measure: "sum(i4)"},
	{measure: "sum(i8)"},
	{measure: "sum(n)"},
	{measure: "sum(f4)"},
	{measure: "sum(f8)"},
	{measure: "sum(i4 * j4)"},
	{measure: "sum(i4 - j4)"},
	{measure: "sum(i4 + j4)"},
	{measure: "sum(i2 * i2)"},
	{measure: "sum(i4 / 3)"},
	{measure: "sum(i4 * i8)"},
	{measure: "sum(i8 - i4)"},
	{measure: "sum(i4::bigint)"},
	{measure: "sum(i4::numeric)"},
	{measure: "sum(i4 * 1.5)"},
	{measure: "sum(n * i4)"},
	{measure: "sum(n * n3)"},
	{measure: "sum(n - n3)"},
	{measure: "sum(n + i8)"},
	{measure: "sum(-n)"},
	{measure: "sum((n * i4)::numeric(20,4))"},
	{measure: "sum(coalesce(n, 0.00))"},
	{measure: "sum(CASE WHEN h > 1 THEN i4 ELSE 0 END)"},
	{measure: "sum(i4::double precision)"},
	{measure: "sum(i4 * f8)"},
	{measure: "sum(i4 * f4)"},
	{measure: "sum(f4 * f4)"},
	{measure: "sum(n * f8)"},
	{measure: "sum(d - d2)"},
	{measure: "min(i4)"},
	{measure: "max(i8)"},
	{measure: "min(n)"},
	{measure: "max(n3)"},
	{measure: "min(f4)"},
	{measure: "max(f8)"},
	{measure: "max(d)"},
	{measure: "min(i4 * j4)"},
	{measure: "max(n * i4)"},
	{measure: "min(i4 * 1.5)"},
	{measure: "max(i4 * f4)"},
	{measure: "min(d + i4 / 100)"},
	{measure: "avg(i2)"},
	{measure: "avg(i4)"},
	{measure: "avg(i8)"},
	{measure: "avg(n)"},
	{measure: "avg(f8)"},
	{measure: "avg(i4 * j4)"},
	{measure: "avg(i8 * i4)"},
	{measure: "avg(n * i4)"},
	{measure: "avg(i4::numeric)"},
	{measure: "avg(i4 * 1.5)"},
	{measure: "avg(i4 * f8)"},

	{measure: "sum(nn)", reject: "its own numeric scale"},
	{measure: "sum(n / 7)", reject: "its own numeric scale"},
	{measure: "sum(f8::numeric)", reject: "its own numeric scale"},
	{measure: "sum(CASE WHEN h > 1 THEN n ELSE 0 END)", reject: "its own numeric scale"},
	{measure: "max(nn)", reject: "its own numeric scale"},
	{measure: "avg(nn)", reject: "its own numeric scale"},
	{measure: "avg(f4)", reject: "adds avg of real in double precision"},
	{measure: "sum(abs(i4))", reject: "function abs() is not typed"},
	{measure: "sum(i4 ^ 2)", reject: "operator ^ is not typed"},
	{measure: "sum(mo)", reject: "column mo has a type pgrollup does not know"},
}

func (c measureCase) agg() string {
	if c.query != "" {
		return c.query
	}
	return c.measure
}

func (c measureCase) dimensions() []string {
	if c.dims == nil {
		return []string{"g", "h"}
	}
	return c.dims
}

// measureRollup names case i's rollup.
func measureRollup(i int) string { return fmt.Sprintf("measure_%02d", i) }

// servedBy lists the rollups that may answer case i's aggregate: its own,
// and any other storing the parts it needs (avg(x) stores sum(x) and
// count(x)) over the same dimensions. Rule 10 picks among them by size.
func servedBy(i int) map[string]bool {
	c := measureCases[i]
	out := map[string]bool{measureRollup(i): true}
	for j, o := range measureCases {
		if o.reject != "" || strings.Join(o.dimensions(), ",") != strings.Join(c.dimensions(), ",") {
			continue
		}
		if arg, ok := strings.CutPrefix(o.measure, "avg("); ok {
			if c.agg() == "sum("+arg || c.agg() == "count("+arg {
				out[measureRollup(j)] = true
			}
		}
		if o.measure == c.agg() {
			out[measureRollup(j)] = true
		}
	}
	return out
}

// TestMeasures builds one rollup per measure form the config validator
// accepts and runs statements over each through pgrollup and directly on
// Postgres, in text and binary and in both protocols: answers must be
// equal (rows, column names, type OIDs and modifiers, tags). Every measure
// the rewriter types must be answered from a rollup that EXPLAIN (ROLLUP)
// chose, with no fallback; every other one must pass through by decision,
// with EXPLAIN (ROLLUP) naming the reason, never by a failure after it.
func TestMeasures(t *testing.T) {
	ctx := testCtx(t, 6*time.Minute)
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + measuresDB + " WITH (FORCE)",
		"CREATE DATABASE " + measuresDB + " OWNER " + userScram,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	owner := connect(t, ctx, directDSN(userScram, measuresDB))
	if _, err := owner.Exec(ctx, measuresFixtureSQL); err != nil {
		t.Fatalf("fixture: %v", err)
	}

	p := startMeasuresProxy(t, ctx)
	states, err := waitRollupsActive(ctx, p, len(measureCases))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollups: %s", states)

	open := func(tg target) *pgconn.PgConn {
		conn := connect(t, ctx, tg.DSN(userScram, measuresDB))
		return conn.PgConn()
	}
	direct := open(target{name: "direct", host: env.pg.Host, port: env.pg.Port})
	via := open(target{name: "proxy", host: p.host, port: p.port})
	modes := []diffMode{diffModeSimpleText, diffModeExtBinary, diffModeExtText}

	metrics, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range measureCases {
		name := measureRollup(i)
		agg := c.agg()
		sqls := []string{"SELECT g, " + agg + " FROM facts GROUP BY g"}
		if c.reject == "" && c.dims == nil {
			sqls = append(sqls,
				"SELECT "+agg+" FROM facts",
				// No rows: count is 0 and the others NULL, in one row.
				"SELECT "+agg+" FROM facts WHERE g = 'nowhere'")
		}
		for _, sql := range sqls {
			t.Run(name+" "+c.measure+": "+sql, func(t *testing.T) {
				st := &diffStmt{Kind: "measures", Name: name, SQL: sql}
				rows := measuresExplain(t, ctx, via, sql)
				chosen := ""
				for _, r := range rows {
					if r[1] == "chosen" {
						chosen = r[0]
					}
				}
				compareModes(t, ctx, direct, via, st, modes)
				after, err := diffScrape(p)
				if err != nil {
					t.Fatal(err)
				}
				hits := after.deltaByLabel(metrics, "pgrollup_rollup_hits_total", "rollup")
				fallbacks := after.sum("pgrollup_rollup_fallbacks_total") - metrics.sum("pgrollup_rollup_fallbacks_total")
				metrics = after
				if fallbacks != 0 {
					t.Errorf("%v execution(s) fell back to the warehouse after the decision:\n%s", fallbacks, tail(p.log.Bytes(), 20))
				}
				explained := measuresRender(rows)
				if c.reject != "" {
					if chosen != "" || len(hits) > 0 {
						t.Fatalf("must pass through, but rollup %q was chosen and %v answered:\n%s", chosen, hits, explained)
					}
					for _, r := range rows {
						if r[0] == name && r[1] == "reject" && strings.Contains(r[2], "measure: ") && strings.Contains(r[2], c.reject) {
							return
						}
					}
					t.Fatalf("EXPLAIN (ROLLUP) does not reject %s for %q:\n%s", name, c.reject, explained)
				}
				if chosen == "" || (!c.anyRollup && !servedBy(i)[chosen]) {
					t.Fatalf("EXPLAIN (ROLLUP) chose %q, want one of %v:\n%s", chosen, measuresKeys(servedBy(i)), explained)
				}
				if len(hits) != 1 || hits[chosen] != float64(len(modes)) {
					t.Fatalf("answered from rollups %v, want %s %d times", hits, chosen, len(modes))
				}
			})
		}
	}
}

// startMeasuresProxy starts a pgrollup over the measures database with one
// rollup per case.
func startMeasuresProxy(t *testing.T, ctx context.Context) *proxyProc {
	t.Helper()
	var rollups []map[string]any
	for i, c := range measureCases {
		rollups = append(rollups, map[string]any{
			"name": measureRollup(i), "table": "public.facts",
			"dimensions": c.dimensions(), "measures": []string{c.measure},
		})
	}
	p, _ := startTestProxy(t, ctx, "measures", filepath.Join(env.tmp, "proxy-measures"), env.pg.DSN(measuresDB), map[string]any{
		"worker":  map[string]any{"concurrency": 2, "duckdb_memory_limit": "1GB"},
		"rollups": rollups,
	}, "info")
	return p
}

// measuresExplain returns EXPLAIN (ROLLUP)'s rows: rollup, decision, reason.
func measuresExplain(t *testing.T, ctx context.Context, conn *pgconn.PgConn, sql string) [][3]string {
	t.Helper()
	results, err := conn.Exec(ctx, "EXPLAIN (ROLLUP) "+sql).ReadAll()
	if err != nil || len(results) != 1 || results[0].Err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v %v", err, results)
	}
	var out [][3]string
	for _, row := range results[0].Rows {
		out = append(out, [3]string{string(row[0]), string(row[1]), string(row[2])})
	}
	return out
}

func measuresRender(rows [][3]string) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s %s: %s\n", r[0], r[1], r[2])
	}
	return b.String()
}

func measuresKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
