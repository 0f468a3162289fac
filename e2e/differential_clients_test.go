package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The same comparison through psql and pgjdbc, for a subset of the
// statements the pgx comparison already ran: those whose client output is
// determined (a total ORDER BY, or at most one row; pgjdbc's side sorts
// unordered rows itself), mostly rollup hits.

type diffPicked struct {
	st  diffStmt
	out diffOutcome
}

// total reports whether st's ORDER BY fixes the order of its output.
func (p diffPicked) total() bool {
	return p.st.Order != nil && len(p.st.Order.Keys) == len(p.out.fields)
}

// diffSubset picks up to n statements, three quarters of them rollup hits,
// spread over the whole run.
func diffSubset(picked []diffPicked, n int, unorderedOK bool) []diffPicked {
	var hits, misses []diffPicked
	for _, p := range picked {
		if p.st.Compare != diffCmpAll || len(p.st.Params) > 0 || p.out.directErr || len(p.out.diffs) > 0 || p.out.executed == 0 {
			continue
		}
		if p.st.Limit > 0 && int64(p.out.rows) >= p.st.Limit {
			continue
		}
		if !p.total() && p.out.rows > 1 && !unorderedOK {
			continue
		}
		float := false
		for _, f := range p.out.fields {
			float = float || isFloatOID(f.DataTypeOID)
		}
		if float && !unorderedOK {
			continue // psql prints every bit of a float
		}
		if p.out.hitAll() {
			hits = append(hits, p)
		} else {
			misses = append(misses, p)
		}
	}
	spread := func(list []diffPicked, k int) []diffPicked {
		if len(list) <= k {
			return list
		}
		out := make([]diffPicked, 0, k)
		for i := 0; i < k; i++ {
			out = append(out, list[i*len(list)/k])
		}
		return out
	}
	nh := n * 3 / 4
	return append(spread(hits, nh), spread(misses, n-min(nh, len(hits)))...)
}

func diffExpectedHits(stmts []diffPicked) int {
	n := 0
	for _, p := range stmts {
		if p.out.hitAll() {
			n++
		}
	}
	return n
}

// diffPsql runs the statements with psql on both sides: each first
// with \gdesc (Parse and Describe, no execution), then executed.
func diffPsql(t *testing.T, ctx context.Context, fx *diffFixture, stmts []diffPicked) {
	requireTool(t, "psql")
	if len(stmts) < 20 {
		t.Fatalf("only %d statements qualify for the psql comparison", len(stmts))
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("\\pset null '<null>'\n")
	zone := ""
	for i, p := range stmts {
		if p.st.Zone != zone {
			zone = p.st.Zone
			fmt.Fprintf(&b, "SET TIME ZONE '%s';\n", zone)
		}
		sql := strings.Join(strings.Fields(p.st.SQL), " ")
		fmt.Fprintf(&b, "\\echo '== %d %s'\n%s \\gdesc\n%s;\n", i+1, strings.ReplaceAll(p.st.Name, "'", ""), sql, sql)
	}
	script := filepath.Join(dir, "differential.sql")
	if err := os.WriteFile(script, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var outs [2]string
	var hits float64
	for i, tg := range []target{fx.direct, fx.via} {
		before, err := diffScrape(fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "psql", "-X", "-v", "ON_ERROR_STOP=0", "-f", script)
		cmd.Env = libpqEnv(tg, userScram, diffDB)
		out, err := cmd.CombinedOutput()
		outs[i] = fmt.Sprintf("exit: %v\n%s", err, out)
		if last, died := fx.crashed(ctx, t); died {
			t.Errorf("pgrollup CRASHED during the psql run (it was restarted):\n%s", last)
			return
		}
		after, err := diffScrape(fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		if tg.name == "proxy" {
			hits = after.sum("pgrollup_rollup_hits_total") - before.sum("pgrollup_rollup_hits_total")
		}
	}
	requireSame(t, "psql \\gdesc and results", outs[0], outs[1])
	mustContain(t, "psql", outs[0], "exit: <nil>", " Column ", "== 1 ")
	if strings.Contains(outs[0], "ERROR") {
		t.Errorf("psql reported an error running statements that ran without one through pgx:\n%s", tail([]byte(outs[0]), 40))
	}
	want := diffExpectedHits(stmts)
	t.Logf("psql: %d statements (%d rollup hits through pgx), %d answered from a rollup through psql", len(stmts), want, int(hits))
	if int(hits) < want {
		t.Errorf("through psql only %d statements were answered from a rollup; through pgx %d of the same were", int(hits), want)
	}
}

// diffJDBCSame compares two outputs of Differential.java: equal lines, except
// that floating-point values (Double:..., Float:...) compare with the
// tolerance of DESIGN §4.
func diffJDBCSame(a, b string) bool {
	if a == b {
		return true
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al) != len(bl) {
		return false
	}
	for i := range al {
		if al[i] == bl[i] {
			continue
		}
		at, bt := strings.Split(al[i], " | "), strings.Split(bl[i], " | ")
		if len(at) != len(bt) {
			return false
		}
		for j := range at {
			if at[j] == bt[j] {
				continue
			}
			x, okx := diffJDBCFloat(at[j])
			y, oky := diffJDBCFloat(bt[j])
			if !okx || !oky || !diffFloatsClose(x, y) {
				return false
			}
		}
	}
	return true
}

func diffJDBCFloat(tok string) (float64, bool) {
	for _, p := range []string{"Double:", "Float:"} {
		if v, ok := strings.CutPrefix(tok, p); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// diffLastJDBCStatement names the statement the Java program was running when
// it lost its connection (or stopped).
func diffLastJDBCStatement(out string, stmts []diffPicked) string {
	if j := strings.Index(out, "\nerror 08"); j >= 0 {
		out = out[:j]
	}
	i := strings.LastIndex(out, "\n== ")
	if i < 0 {
		return ""
	}
	var n int
	var zone string
	if _, err := fmt.Sscanf(out[i+1:], "== %d %s", &n, &zone); err != nil || n < 1 || n > len(stmts) {
		return ""
	}
	st := stmts[n-1].st
	return fmt.Sprintf("\nthe last statement (%s %s, TimeZone %s, flavor %q): %s", st.Kind, st.Name, st.Zone, st.Flavor, st.SQL)
}

// diffJDBC runs testdata/differential/Differential.java on both sides.
func diffJDBC(t *testing.T, ctx context.Context, fx *diffFixture, stmts []diffPicked) {
	requireTool(t, "javac", "java", jdbcJar)
	if len(stmts) < 20 {
		t.Fatalf("only %d statements qualify for the pgjdbc comparison", len(stmts))
	}
	dir := t.TempDir()
	var b strings.Builder
	for _, p := range stmts {
		ordered := "0"
		if p.total() {
			ordered = "1"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", p.st.Zone, ordered, base64.StdEncoding.EncodeToString([]byte(p.st.SQL)))
	}
	list := filepath.Join(dir, "statements.txt")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	javac := exec.CommandContext(ctx, "javac", "-nowarn", "-cp", jdbcJar, "-d", dir, "testdata/differential/Differential.java")
	if out, err := javac.CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	var outs [2]string
	var hits, fallbacks float64
	crashed := false
	for i, tg := range []target{fx.direct, fx.via} {
		before, err := diffScrape(fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("jdbc:postgresql://%s/%s", tg.addr(), diffDB)
		cmd := exec.CommandContext(ctx, "java", "-Duser.timezone=UTC", "-Duser.language=en", "-Xshare:auto",
			"-XX:TieredStopAtLevel=1", "-cp", jdbcJar+string(os.PathListSeparator)+dir, "Differential", url, userScram, passwords[userScram], list)
		cmd.Env = cleanEnv()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		// If pgrollup dies under the program, start a new one at once: the
		// program reconnects and goes on, so the rest is still compared.
		done := make(chan struct{})
		watched := make(chan []string)
		go func() {
			var crashes []string
			defer func() { watched <- crashes }()
			for {
				select {
				case <-done:
					return
				case <-fx.proxy.exited:
					last, _, err := fx.restartIfDead(ctx, t)
					if err != nil {
						crashes = append(crashes, "and it did not come back: "+err.Error())
						return
					}
					crashes = append(crashes, last)
				}
			}
		}()
		runErr := cmd.Run()
		close(done)
		crashes := <-watched
		if len(crashes) > 0 {
			t.Errorf("pgrollup CRASHED %d time(s) during the pgjdbc run (restarted each time); the first:\n%s%s", len(crashes), crashes[0], diffLastJDBCStatement(stdout.String(), stmts))
			keep := filepath.Join(os.TempDir(), "pgrollup-differential-jdbc.txt")
			if err := os.WriteFile(keep, []byte(b.String()), 0o644); err == nil {
				t.Logf("the pgjdbc statements are in %s (zone, total order, base64 SQL)", keep)
			}
		}
		if err := runErr; err != nil {
			t.Errorf("%s: java Differential: %v\nstderr:\n%s\nstdout:\n%s%s", tg.name, err, stderr.String(), tail([]byte(stdout.String()), 40), diffLastJDBCStatement(stdout.String(), stmts))
		}
		outs[i] = stdout.String()
		if len(crashes) > 0 {
			crashed = true
			continue // the counters started again with the new process
		}
		after, err := diffScrape(fx.proxy)
		if err != nil {
			t.Fatal(err)
		}
		if tg.name == "proxy" {
			hits = after.sum("pgrollup_rollup_hits_total") - before.sum("pgrollup_rollup_hits_total")
			fallbacks = after.sum("pgrollup_rollup_fallbacks_total") - before.sum("pgrollup_rollup_fallbacks_total")
		}
		t.Logf("pgjdbc %s: %s", tg.name, time.Since(start).Round(time.Millisecond))
	}
	if !diffJDBCSame(outs[0], outs[1]) {
		keep := filepath.Join(os.TempDir(), "pgrollup-differential-jdbc")
		_ = os.WriteFile(keep+".txt", []byte(b.String()), 0o644)
		_ = os.WriteFile(keep+"-direct.out", []byte(outs[0]), 0o644)
		_ = os.WriteFile(keep+"-proxy.out", []byte(outs[1]), 0o644)
		t.Logf("the pgjdbc statements are in %s.txt (zone, total order, base64 SQL), the outputs in %[1]s-direct.out and %[1]s-proxy.out", keep)
	}
	if !diffJDBCSame(outs[0], outs[1]) {
		t.Errorf("pgjdbc: pgrollup differs from Postgres:\n%s", lineDiff(outs[0], outs[1]))
	}
	mustContain(t, "pgjdbc", outs[0], "== end "+strconv.Itoa(len(stmts)), "prepared, execution 1:")
	if strings.Contains(outs[0], "\nerror ") {
		t.Errorf("pgjdbc reported an error running statements that ran without one through pgx")
	}
	// Each statement runs seven times: once as a Statement, six times prepared.
	want := 7 * diffExpectedHits(stmts)
	if crashed {
		t.Logf("pgjdbc: %d statements; pgrollup was restarted during the run, so what answered them is not known", len(stmts))
		return
	}
	t.Logf("pgjdbc: %d statements, %d executions expected from a rollup, %d answered from one, %d fell back to the warehouse", len(stmts), want, int(hits), int(fallbacks))
	// A fallback still gives Postgres's answer; the known case "float
	// column in text after SET extra_float_digits" tracks the hits that
	// pgjdbc sessions lose.
	if int(hits+fallbacks) < want {
		t.Errorf("through pgjdbc %d executions were answered from a rollup (%d more fell back); the same statements through pgx were hits, so %d were expected", int(hits), int(fallbacks), want)
	}
}
