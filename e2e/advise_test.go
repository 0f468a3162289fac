package e2e

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// adviseTools are the BI tools whose dashboards TestAdvise replays: the
// corpus's Metabase, Superset and Grafana statements (e2e/testdata/corpus,
// whose README says where each came from).
var adviseTools = map[string]bool{"metabase": true, "superset": true, "grafana": true}

// TestAdvise: a dashboard's worth of statements goes through a pgrollup
// with declared tables and no rollups; pgrollup advise reads what the
// warehouse answered (GET /api/misses) and proposes rollups; appended to
// the config and loaded with SIGHUP, they are built, and then at least 80%
// of the statements are answered from them, every answer equal to
// Postgres's.
func TestAdvise(t *testing.T) {
	entries, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	var dashboard []*diffStmt
	for _, e := range entries {
		// The statements a rollup can answer exactly, as the tools send
		// them without bound parameters, in UTC sessions.
		if !adviseTools[e.Tool] || !e.Answerable || len(e.Params) > 0 || e.Session != "" || (e.Zone != "" && e.Zone != "UTC") {
			continue
		}
		st := &diffStmt{Kind: "advise", Name: e.ID, Zone: "UTC", SQL: e.SQL}
		if ok, why := diffPrepare(st); !ok {
			t.Fatalf("%s: the suite cannot run it: %s", e.ID, why)
		}
		dashboard = append(dashboard, st)
	}
	if len(dashboard) < 20 {
		t.Fatalf("only %d dashboard statements in the corpus", len(dashboard))
	}
	ctx := testCtx(t, 5*time.Minute)
	fx := startDiffFixtureWith(t, "advise", nil, "")
	p := fx.proxy
	// The router records statements over the declared tables once it has
	// read them: /readyz.
	for {
		code, _, err := p.adminGet("/readyz")
		if err == nil && code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("pgrollup not ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
	r := newDiffRunner(t, fx)
	modes := []diffMode{diffModeSimpleText, diffModeExtBinary}
	for _, st := range dashboard {
		if out := r.run(t, ctx, st, modes); len(out.hits) > 0 {
			t.Fatalf("%s answered from a rollup before any was declared", st.Name)
		}
	}

	// GET /api/misses follows the admin token rules of /api/.
	req, err := http.NewRequest(http.MethodGet, "http://"+p.admin+"/api/misses", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/misses without the token: %s, want 401", resp.Status)
	}

	advice, stderr, code := runPgrollup(t, "advise", "--config", fx.cfgFile, "--admin", "http://"+p.admin, "--token", adminTok)
	if code != 0 {
		t.Fatalf("pgrollup advise exited %d:\n%s", code, stderr)
	}
	t.Logf("advice:\n%s", advice)
	proposals := strings.Count(advice, "\n  - name: ")
	if proposals == 0 || !strings.Contains(advice, "\nrollups:\n") {
		t.Fatalf("no rollups advised:\n%s", advice)
	}
	text, err := os.ReadFile(fx.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.cfgFile, append(append(text, '\n'), advice...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	states, err := waitRollupsActive(ctx, p, proposals)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("advised rollups built %s after SIGHUP: %s", time.Since(start).Round(time.Millisecond), states)

	// The router follows the catalog a moment after the builds are
	// recorded: wait until a statement the advice says it serves is.
	served := 0
	for deadline := time.Now().Add(30 * time.Second); ; {
		served = 0
		for _, st := range dashboard {
			if out := r.run(t, ctx, st, modes); out.hitAll() {
				served++
			}
		}
		if served*10 >= len(dashboard)*8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("after advise: %d of %d dashboard statements answered from the advised rollups", served, len(dashboard))
	if served*10 < len(dashboard)*8 {
		t.Fatalf("only %d of %d dashboard statements answered from the advised rollups, want at least 80%%", served, len(dashboard))
	}
	if r.failures > 0 {
		t.Fatalf("%d answers differ from Postgres's", r.failures)
	}
}
