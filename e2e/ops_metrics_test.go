package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// metricDeltas reads the named samples from two scrapes and returns how
// much each went up; a sample missing from either scrape fails the test.
type sample struct {
	name   string
	labels map[string]string
}

func (s sample) String() string {
	var parts []string
	for k, v := range s.labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

func deltas(t *testing.T, before, after []byte, samples []sample) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range samples {
		// A labelled series may appear only at its first increment: absent is 0.
		b, _ := metricValue(before, s.name, s.labels)
		a, _ := metricValue(after, s.name, s.labels)
		out[s.String()] = a - b
	}
	return out
}

func route(r string) sample {
	return sample{"pgrollup_queries_total", map[string]string{"route": r}}
}

func timed(r string) sample {
	return sample{"pgrollup_query_duration_seconds_count", map[string]string{"route": r}}
}

var (
	hitSample      = sample{"pgrollup_rollup_hits_total", map[string]string{"rollup": opsRollup, "mode": "duckdb"}}
	fallbackSample = sample{"pgrollup_rollup_fallbacks_total", map[string]string{"reason": "missing_file"}}
	cacheHitSample = sample{"pgrollup_result_cache_hits_total", nil}
)

// opsFreshHit is a statement the rollup answers that the metrics test asks
// first, while the rollup's file is gone, so that no answer of it was kept.
const opsFreshHit = "SELECT category, count(*) AS n FROM items GROUP BY 1 ORDER BY 1"

func missSample(reason string) sample {
	return sample{"pgrollup_rollup_misses_total", map[string]string{"reason": reason}}
}

// checkDeltas compares what the metrics say happened with what did.
func checkDeltas(t *testing.T, what string, got map[string]float64, want []expect) {
	t.Helper()
	for _, w := range want {
		if g := got[w.s.String()]; g != w.n {
			t.Errorf("%s: %s went up by %v, want %v", what, w.s, g, w.n)
		}
	}
}

// expect is how much a sample should have gone up.
type expect struct {
	s sample
	n float64
}

// TestOpsMetrics runs a known workload of hits, misses, other statements
// and fallbacks through pgrollup, in the simple and the extended protocol,
// and checks that every metric says exactly what happened: a hit counts as
// route rollup and a hit of its rollup, a miss as passthrough and a miss of
// its reason, a fallback as passthrough and a fallback and never as a hit,
// and each statement is timed once under its route.
func TestOpsMetrics(t *testing.T) {
	o := startOpsProxy(t, "metrics")
	ctx := testCtx(t, 2*time.Minute) // with two rebuilds
	proxied := connect(t, ctx, o.DSN(userScram, dbMain))
	direct := connect(t, ctx, directDSN(userScram, dbMain))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement}

	same := func(sql string, mode pgx.QueryExecMode) {
		t.Helper()
		want, got := queryText(t, direct, sql, mode), queryText(t, proxied, sql, mode)
		if got != want {
			t.Fatalf("%s (%v): through pgrollup\n%s\nwarehouse\n%s", sql, mode, got, want)
		}
	}

	samples := []sample{
		route("rollup"), route("passthrough"), route("admin"), route("error"),
		timed("rollup"), timed("passthrough"),
		hitSample, fallbackSample, missSample("not_a_dimension"), missSample("measure"), cacheHitSample,
	}
	n := float64(len(modes))

	// Take the file of the active version away: the statement that finds it
	// gone fails on the rollup path and falls back to the warehouse, with the
	// right answer, and a failed answer is never kept. The version is then out
	// of service and the rollup rebuilt (heal_test.go): once per mode, each
	// time with the version rebuilt after the previous one.
	files := filepath.Join(o.dir, "data", "rollups")
	before := scrape(t, o.proxyProc)
	version := ""
	for _, mode := range modes {
		version = o.waitRebuilt(t, ctx, version)
		if err := os.Remove(filepath.Join(files, o.activeFile(t))); err != nil {
			t.Fatal(err)
		}
		same(opsFreshHit, mode)
	}
	checkDeltas(t, "after fallbacks", deltas(t, before, scrape(t, o.proxyProc), samples), []expect{
		{route("passthrough"), n},
		{timed("passthrough"), n},
		{fallbackSample, n},
		{route("rollup"), 0},
		{timed("rollup"), 0},
		{hitSample, 0},
		{cacheHitSample, 0},
	})

	// Rebuilt, the rollup answers again.
	o.waitRebuilt(t, ctx, version)
	before = scrape(t, o.proxyProc)
	for _, mode := range modes {
		for _, sql := range opsHits {
			same(sql, mode)
		}
		for _, m := range opsMisses {
			same(m.sql, mode)
		}
		same(opsOther, mode)
	}
	hits, misses := n*float64(len(opsHits)), n*float64(len(opsMisses))
	checkDeltas(t, "after hits and misses", deltas(t, before, scrape(t, o.proxyProc), samples), []expect{
		{route("rollup"), hits},
		{timed("rollup"), hits},
		{hitSample, hits},
		{route("passthrough"), misses + n},
		{timed("passthrough"), misses + n},
		{missSample("not_a_dimension"), n},
		{missSample("measure"), n},
		{route("admin"), 0},
		{route("error"), 0},
		{fallbackSample, 0},
		// The first mode computes each hit; the others get the kept answer.
		{cacheHitSample, hits - float64(len(opsHits))},
	})

	// A kept answer needs no file: the version it came from is still active,
	// and nothing reads the file to find it gone.
	if err := os.Rename(files, files+".away"); err != nil {
		t.Fatal(err)
	}
	before = scrape(t, o.proxyProc)
	same(opsHits[0], pgx.QueryExecModeSimpleProtocol)
	checkDeltas(t, "a kept answer without the files", deltas(t, before, scrape(t, o.proxyProc), samples), []expect{
		{route("rollup"), 1},
		{hitSample, 1},
		{cacheHitSample, 1},
		{fallbackSample, 0},
	})
	if err := os.Rename(files+".away", files); err != nil {
		t.Fatal(err)
	}

	// One debug line per statement, with the route and the reason, and
	// nothing of the user's password.
	log := string(o.log.Bytes())
	for _, want := range []string{
		"msg=statement",
		"route=rollup",
		"route=passthrough reason=not_a_dimension",
		"route=passthrough reason=measure",
		"route=passthrough reason=answer_failed",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no line with %q", want)
		}
	}
	if strings.Contains(log, passwords[userScram]) {
		t.Errorf("the log holds %s's password", userScram)
	}
}

// activeFile is the storage key of the ops rollup's one file.
func (o *opsProc) activeFile(t *testing.T) string {
	t.Helper()
	d := (&healSide{p: o}).detail(t, opsRollup)
	if d.State.Active == nil || len(d.State.Active.Partitions) != 1 {
		t.Fatalf("%s: no active version of one file: %+v", opsRollup, d.rollupStatus)
	}
	return d.State.Active.Partitions[0].File
}

// waitRebuilt waits until the ops rollup serves a version other than not,
// through a failure (a broken file) and its rebuild, and returns it.
func (o *opsProc) waitRebuilt(t *testing.T, ctx context.Context, not string) string {
	t.Helper()
	for {
		for _, r := range o.rollups(t) {
			if r.Name == opsRollup && r.Status == "active" && r.Version != "" && r.Version != not {
				o.waitServed(t, ctx)
				return r.Version
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no version other than %q in time", opsRollup, not)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// queryText runs sql and renders its columns and rows, for comparing
// pgrollup's answer with the warehouse's.
func queryText(t *testing.T, conn *pgx.Conn, sql string, mode pgx.QueryExecMode) string {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	text, err := renderQuery(ctx, conn, sql, mode)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return text
}

// renderQuery runs sql and renders its columns and rows as queryText does.
func renderQuery(ctx context.Context, conn *pgx.Conn, sql string, mode pgx.QueryExecMode) (string, error) {
	rows, err := conn.Query(ctx, sql, mode)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for _, f := range rows.FieldDescriptions() {
		fmt.Fprintf(&b, "%s:%d ", f.Name, f.DataTypeOID)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "\n%v", vals)
	}
	return b.String(), rows.Err()
}
