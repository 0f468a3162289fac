package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// adminDo sends a request to the admin listener with the given bearer token
// ("" sends none).
func adminDo(t *testing.T, o *opsProc, method, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+o.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// TestOpsAdminAPI checks the admin HTTP API as DESIGN.md §2 specifies it,
// and that the admin token guards everything but the health probes.
func TestOpsAdminAPI(t *testing.T) {
	o := startOpsProxy(t, "api")
	ctx := testCtx(t, 60*time.Second)

	// Without the token, or with a wrong one: 401, and nothing happens.
	guarded := []struct{ method, path string }{
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/api/rollups"},
		{http.MethodGet, "/api/rollups/" + opsRollup},
		{http.MethodPost, "/api/rollups/" + opsRollup + "/refresh"},
	}
	before := o.rollups(t)[0]
	for _, token := range []string{"", "not-" + adminTok} {
		for _, g := range guarded {
			code, header, body := adminDo(t, o, g.method, g.path, token)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401\n%s", g.method, g.path, token, code, body)
			}
			if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", g.method, g.path)
			}
			if strings.Contains(string(body), adminTok) {
				t.Errorf("%s %s: the answer holds the admin token", g.method, g.path)
			}
		}
	}
	// Orchestrators probe health without credentials.
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, body := adminDo(t, o, http.MethodGet, path, ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, code, body)
		}
	}

	// GET /api/rollups: an array of objects with at least the contract's fields.
	code, _, body := adminDo(t, o, http.MethodGet, "/api/rollups", adminTok)
	if code != http.StatusOK {
		t.Fatalf("GET /api/rollups: %d %s", code, body)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 1 {
		t.Fatalf("GET /api/rollups: %v\n%s", err, body)
	}
	for _, field := range []string{"name", "status", "version", "rows", "bytes", "built_at", "last_error"} {
		if _, ok := raw[0][field]; !ok {
			t.Errorf("GET /api/rollups: no field %q in %s", field, body)
		}
	}
	st := o.rollups(t)[0]
	if st.Name != opsRollup || st.Status != "active" || st.Version != before.Version || st.Rows <= 0 || st.Bytes <= 0 || st.BuiltAt == nil || st.LastError != nil {
		t.Errorf("GET /api/rollups: %+v (a rejected refresh must not have changed it from %+v)", st, before)
	}

	code, _, body = adminDo(t, o, http.MethodGet, "/api/rollups/"+opsRollup, adminTok)
	if code != http.StatusOK || !strings.Contains(string(body), `"name": "`+opsRollup+`"`) {
		t.Errorf("GET /api/rollups/%s: %d %s", opsRollup, code, body)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		path := "/api/rollups/no_such_rollup"
		if m == http.MethodPost {
			path += "/refresh"
		}
		if code, _, body := adminDo(t, o, m, path, adminTok); code != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %s: %d %s, want 404 with an error", m, path, code, body)
		}
	}

	// SHOW ROLLUPS through the proxy tells the same as the API.
	conn := connect(t, ctx, o.DSN(userScram, dbMain))
	var name, status, version string
	var rows, size int64
	if err := conn.QueryRow(ctx, "SHOW ROLLUPS").Scan(&name, &status, &version, &rows, &size, new(*time.Time), new(*string), new(*string)); err != nil {
		t.Fatal(err)
	}
	if name != st.Name || status != st.Status || version != st.Version || rows != st.Rows || size != st.Bytes {
		t.Errorf("SHOW ROLLUPS: %s %s %s %d %d; the API says %+v", name, status, version, rows, size, st)
	}

	// POST refresh with the token queues a build that replaces the version.
	code, _, body = adminDo(t, o, http.MethodPost, "/api/rollups/"+opsRollup+"/refresh", adminTok)
	if code != http.StatusAccepted || !strings.Contains(string(body), `"job"`) {
		t.Fatalf("POST refresh: %d %s", code, body)
	}
	o.waitActive(t, ctx, opsRollup, st.Version)
}

// TestOpsCLI runs the pgrollup command line against a running instance and
// its config, as an operator would.
func TestOpsCLI(t *testing.T) {
	o := startOpsProxy(t, "cli")
	adminURL := "http://" + o.admin

	// validate: ok, and a broken copy names the file and the line.
	out, errOut, code := runPgrollup(t, "validate", "--config", o.cfgFile)
	if code != 0 || !strings.Contains(out, "ok (1 tables, 1 rollups)") {
		t.Errorf("validate: exit %d\n%s%s", code, out, errOut)
	}
	text, err := os.ReadFile(o.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(text), "granularity: day", "granularity: fortnight", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runPgrollup(t, "validate", "--config", broken)
	if code != 1 || !regexp.MustCompile(`broken\.yaml:\d+`).MatchString(errOut) || !strings.Contains(errOut, "granularity") {
		t.Errorf("validate of a bad config: exit %d, want 1 with file:line and the field\n%s%s", code, out, errOut)
	}

	// explain: offline, from the config alone.
	out, errOut, code = runPgrollup(t, "explain", "--config", o.cfgFile, opsHits[0])
	if code != 0 || !strings.Contains(out, "route: rollup "+opsRollup) || !strings.Contains(out, "sql: ") {
		t.Errorf("explain of a hit: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runPgrollup(t, "explain", "--config", o.cfgFile, "--json", opsMisses[0].sql)
	var ex struct {
		Route      string  `json:"route"`
		Rollup     *string `json:"rollup"`
		Reason     string  `json:"reason"`
		Candidates []struct {
			Rollup, Decision, Reason string
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(out), &ex); code != 0 || err != nil {
		t.Fatalf("explain --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if ex.Route != "passthrough" || ex.Rollup != nil || !strings.HasPrefix(ex.Reason, opsMisses[0].reason) ||
		len(ex.Candidates) != 1 || ex.Candidates[0].Decision != "reject" {
		t.Errorf("explain --json of a miss: %+v", ex)
	}

	// status: needs the token, from the flag or the environment.
	out, errOut, code = runPgrollup(t, "status", "--admin", adminURL)
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "--token") {
		t.Errorf("status without a token: exit %d, want 1 saying how to pass one\n%s%s", code, out, errOut)
	}
	out, errOut, code = runPgrollup(t, "status", "--admin", adminURL, "--token", adminTok)
	if code != 0 || !regexp.MustCompile(`(?m)^`+opsRollup+`\s+active\s+v\S+\s+\d+`).MatchString(out) {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runPgrollupEnv(t, []string{"PGROLLUP_ADMIN_TOKEN=" + adminTok}, "status", "--admin", adminURL, "--json")
	var list []rollupStatus
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0].Status != "active" {
		t.Errorf("status --json with PGROLLUP_ADMIN_TOKEN: exit %d, %v\n%s%s", code, err, out, errOut)
	}

	// refresh --wait: queues a build and returns once a new version is active.
	before := o.rollups(t)[0].Version
	out, errOut, code = runPgrollup(t, "refresh", "--wait", "--timeout", "40s", "--poll", "200ms", "--admin", adminURL, "--token", adminTok, opsRollup)
	if code != 0 || !strings.Contains(out, opsRollup+": refresh queued") || !strings.Contains(out, opsRollup+": done: version ") {
		t.Fatalf("refresh --wait: exit %d\n%s%s", code, out, errOut)
	}
	after := o.rollups(t)[0]
	if after.Version == before || after.Status != "active" || !strings.Contains(out, after.Version) {
		t.Errorf("refresh --wait returned with version %s active (before: %s)\n%s", after.Version, before, out)
	}
	_, errOut, code = runPgrollup(t, "refresh", "--admin", adminURL, "--token", adminTok, "no_such_rollup")
	if code != 1 || !strings.Contains(errOut, "no_such_rollup") {
		t.Errorf("refresh of an unknown rollup: exit %d\n%s", code, errOut)
	}
}
