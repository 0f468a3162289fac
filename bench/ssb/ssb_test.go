package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app/serve"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

// TestSSB runs the benchmark at a tiny scale against a real Postgres and a
// whole pgrollup in this process: the generator loads, the declared rollups
// build, and all 13 queries give Postgres's answers through pgrollup, in a
// database of collation C, under which pgrollup orders text itself and
// every query is answered from a rollup, and in one of
// C.UTF-8, as a default installation has, where the queries that order by
// text are finished by the warehouse around the rollup's groups, and Q2.2,
// which ranges over text inside the aggregate, passes through (reason
// collation); every answer is still Postgres's.
func TestSSB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		pgcluster.Unavailable(t, err)
	}
	defer cluster.Stop()
	if cluster.External {
		t.Skip("PGROLLUP_TEST_DSN names an external server; this test creates a role and databases of its own")
	}
	t.Run("C", func(t *testing.T) {
		results := runTiny(t, ctx, cluster, "ssb_c", "C")
		for _, r := range results {
			if !r.served() {
				t.Errorf("%s is not answered from a rollup: %s", r.q.id, r.status())
			}
		}
	})
	t.Run("C.UTF-8", func(t *testing.T) {
		results := runTiny(t, ctx, cluster, "ssb_c_utf8", "C.UTF-8")
		for _, r := range results {
			// Q2.2 ranges over text inside the aggregate: only the
			// warehouse's collation can. The others that order by text
			// are finished by the warehouse around the rollup's groups.
			if served := r.served(); served != (r.q.id != "Q2.2") {
				t.Errorf("%s: answered from a rollup %v: %s", r.q.id, served, r.status())
			}
		}
	})
}

// runTiny loads database db of locale at a tiny scale, runs a pgrollup in
// front of it in this process, runs the 13 queries once and checks that
// every answer is Postgres's and has rows (an empty answer would compare
// equal whatever pgrollup did).
func runTiny(t *testing.T, ctx context.Context, cluster *pgcluster.Cluster, db, locale string) []result {
	var progress strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&progress, format+"\n", args...) }
	if got, err := prepare(ctx, cluster, db, []string{locale}, 0.002, logf); err != nil {
		t.Fatal(err)
	} else if got != locale {
		t.Fatalf("locale %s, want %s", got, locale)
	}
	dir := t.TempDir()
	ports, err := proc.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	listen, admin := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	path := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(path, []byte(pgrollupConfig(cluster, db, listen, admin, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the benchmark's config: %v", err)
	}
	var logs jobstest.Buffer
	runCtx, stop := context.WithCancel(ctx)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if err := serve.Run(runCtx, cfg, serve.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), ShutdownTimeout: 10 * time.Second, BuildWorker: true}); err != nil {
			logf("serve.Run: %v", err)
		}
	}()
	defer func() {
		stop()
		<-exited
		if t.Failed() {
			t.Logf("progress:\n%s\npgrollup's log:\n%s", progress.String(), logs.String())
		}
	}()
	ep := endpointsFor(cluster, db, listen, admin)
	if err := proc.WaitRollups(ctx, ep.adminURL, exited, 2*time.Minute, logf); err != nil {
		t.Fatal(err)
	}
	results, err := runQueries(ctx, ep, 1, logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 13 {
		t.Fatalf("%d results, want 13", len(results))
	}
	nonEmpty := 0
	for _, r := range results {
		if r.diff != "" {
			t.Errorf("%s: pgrollup's answer differs from Postgres's: %s", r.q.id, r.diff)
		}
		if r.rows > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < 11 {
		t.Errorf("only %d of 13 answers have rows at this scale", nonEmpty)
	}
	var table bytes.Buffer
	printTable(&table, results)
	t.Logf("database locale %s:\n%s", locale, table.String())
	return results
}

// TestSizes checks the scale factor's row counts against dbgen's at scale
// 1 and the floors of tiny scales.
func TestSizes(t *testing.T) {
	for _, c := range []struct {
		sf   float64
		want sizes
	}{
		{1, sizes{customers: 30_000, suppliers: 2_000, parts: 200_000, orders: 1_500_000}},
		{4, sizes{customers: 120_000, suppliers: 8_000, parts: 600_000, orders: 6_000_000}},
		{0.1, sizes{customers: 3_000, suppliers: 200, parts: 20_000, orders: 150_000}},
		{0.0001, sizes{customers: 300, suppliers: 100, parts: 1_000, orders: 150}},
	} {
		if got := sizesOf(c.sf); got != c.want {
			t.Errorf("sizesOf(%g) = %+v, want %+v", c.sf, got, c.want)
		}
	}
}

// TestGenerator checks the values the queries select on, in the forms of
// dbgen, and that a scale gives the same rows on every run.
func TestGenerator(t *testing.T) {
	collect := func() map[string][][]any {
		out := map[string][][]any{}
		for _, tb := range newGenerator(0.001).tables() {
			for row := tb.next(); row != nil; row = tb.next() {
				out[tb.name] = append(out[tb.name], row)
			}
		}
		return out
	}
	a, b := collect(), collect()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("two generators of one scale differ")
	}
	if n := len(a["dwdate"]); n != 2557 {
		t.Errorf("%d days, want 2557 (1992 to 1998)", n)
	}
	first := a["dwdate"][0]
	if fmt.Sprint(first[:7]...) != fmt.Sprint(int32(19920101), "January 1, 1992", "Wednesday", "January", 1992, 199201, "Jan1992") {
		t.Errorf("first day %v", first[:7])
	}
	seen := map[string]bool{}
	for _, row := range a["part"] {
		seen[row[2].(string)+" "+row[3].(string)[:7]+" "+row[4].(string)[:7]] = true
		if !strings.HasPrefix(row[3].(string), row[2].(string)) || !strings.HasPrefix(row[4].(string), row[3].(string)) || len(row[4].(string)) != 9 {
			t.Fatalf("part %v: brand, category and manufacturer do not nest", row)
		}
	}
	if !seen["MFGR#1 MFGR#12 MFGR#12"] {
		t.Error("no part of category MFGR#12")
	}
	cities := map[string]bool{}
	for _, row := range a["customer"] {
		cities[row[3].(string)] = true
	}
	if !cities["UNITED KI1"] && !cities["UNITED KI5"] {
		t.Errorf("no customer in UNITED KI1 or UNITED KI5 among %d cities", len(cities))
	}
	for _, row := range a["lineorder"] {
		ext, disc, rev := row[9].(int), row[11].(int), row[12].(int)
		if rev != ext*(100-disc)/100 || disc < 0 || disc > 10 || row[8].(int) < 1 || row[8].(int) > 50 {
			t.Fatalf("lineorder %v", row)
		}
	}
}

// TestCompare holds the answer check to what it must catch: another value,
// row count, column name or type, and rows out of the ORDER BY's order,
// while rows tied on the ORDER BY may come in either order.
func TestCompare(t *testing.T) {
	field := func(name string, oid uint32) pgconn.FieldDescription {
		return pgconn.FieldDescription{Name: name, DataTypeOID: oid, TypeModifier: -1}
	}
	fields := []pgconn.FieldDescription{field("d_year", 23), field("revenue", 20)}
	res := func(fs []pgconn.FieldDescription, rows ...string) *pgconn.Result {
		r := &pgconn.Result{FieldDescriptions: fs}
		for _, row := range rows {
			var vals [][]byte
			for _, v := range strings.Split(row, ",") {
				if v == "NULL" {
					vals = append(vals, nil)
				} else {
					vals = append(vals, []byte(v))
				}
			}
			r.Rows = append(r.Rows, vals)
		}
		return r
	}
	want := res(fields, "1992,30", "1992,20", "1993,10")
	for _, c := range []struct {
		name string
		got  *pgconn.Result
		keys []int
		ok   bool
	}{
		{"same", res(fields, "1992,30", "1992,20", "1993,10"), []int{0, 1}, true},
		{"ties on the ORDER BY swapped", res(fields, "1992,20", "1992,30", "1993,10"), []int{0}, true},
		{"no ORDER BY, any order", res(fields, "1993,10", "1992,20", "1992,30"), nil, true},
		{"out of the ORDER BY's order", res(fields, "1992,20", "1992,30", "1993,10"), []int{0, 1}, false},
		{"out of order", res(fields, "1993,10", "1992,30", "1992,20"), []int{0}, false},
		{"another value", res(fields, "1992,30", "1992,21", "1993,10"), nil, false},
		{"NULL for a value", res(fields, "1992,30", "1992,NULL", "1993,10"), nil, false},
		{"a row less", res(fields, "1992,30", "1993,10"), nil, false},
		{"a row twice", res(fields, "1992,30", "1992,30", "1992,20", "1993,10"), nil, false},
		{"another name", res([]pgconn.FieldDescription{field("d_year", 23), field("sum", 20)}, "1992,30", "1992,20", "1993,10"), nil, false},
		{"another type", res([]pgconn.FieldDescription{field("d_year", 23), field("revenue", 1700)}, "1992,30", "1992,20", "1993,10"), nil, false},
	} {
		if diff := compare(want, c.got, c.keys); (diff == "") != c.ok {
			t.Errorf("%s: compare says %q", c.name, diff)
		}
	}
}
