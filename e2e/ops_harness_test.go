package e2e

// The operations tests (ops_*_test.go) run pgrollup with a rollup over the
// items fixture and look at it the way an operator would: metrics, the admin
// API, the CLI, Prometheus, and the files in deploy/.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// opsRollup is the rollup every ops test serves from: items by category
// and day. Its measures answer sum(amount), count(*) and sum(qty) by
// category; max(amount) or a GROUP BY qty it cannot answer.
const opsRollup = "items_daily"

// opsHits are statements the rollup answers; opsMisses are statements over
// items it cannot answer, each with the reason pgrollup gives; opsOther
// mentions no table with a rollup. Statements with a time bucket are left
// out on purpose: whether they match depends on the session's TimeZone.
var (
	opsHits = []string{
		"SELECT category, sum(amount) FROM items GROUP BY category ORDER BY category",
		"SELECT count(*) FROM items",
		"SELECT category, sum(qty) AS q FROM items WHERE category IN ('books', 'games') GROUP BY 1 ORDER BY 1",
	}
	opsMisses = []struct{ sql, reason string }{
		{"SELECT qty, count(*) FROM items GROUP BY qty ORDER BY qty", "not_a_dimension"},
		{"SELECT category, max(amount) FROM items GROUP BY category ORDER BY 1", "measure"},
	}
	opsOther = "SELECT 41 + 1 AS answer"
)

// opsProc is a pgrollup with the ops config, and where that config is.
type opsProc struct {
	*proxyProc
	cfgFile string
	dir     string
}

// startOpsProxy starts pgrollup over the main database with one rollup on
// items and an admin token, and waits until the rollup's first build is
// active. It is stopped when the test ends.
func startOpsProxy(t *testing.T, name string) *opsProc {
	t.Helper()
	ctx := testCtx(t, 90*time.Second)
	dir := filepath.Join(env.tmp, "ops-"+name)
	p, cfgFile := startTestProxy(t, ctx, "ops-"+name, dir, env.pg.DSN(dbMain), opsRollupConfig(), "debug")
	o := &opsProc{proxyProc: p, cfgFile: cfgFile, dir: dir}
	o.waitActive(t, ctx, opsRollup, "")
	return o
}

// startTestProxy writes a config (writeProxyConfig) and starts pgrollup
// with it at logLevel; it is stopped, and its log shown if the test failed
// or it did not stop cleanly, when the test ends. It returns the process
// and its config file.
func startTestProxy(t *testing.T, ctx context.Context, name, dir, dsn string, rest map[string]any, logLevel string) (*proxyProc, string) {
	t.Helper()
	cfgFile, text, p, err := writeProxyConfig(name, dir, dsn, rest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.start(ctx, cfgFile, text, logLevel); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := p.stop(10 * time.Second)
		if err != nil {
			t.Errorf("pgrollup (%s) did not shut down cleanly on SIGTERM: %v", name, err)
		}
		if t.Failed() || err != nil {
			t.Logf("===== pgrollup log (%s) =====\n%s", name, tail(p.log.Bytes(), 150))
		}
	})
	return p, cfgFile
}

// opsRollupConfig is the config's tables and rollups of the ops tests: one
// daily rollup over items.
func opsRollupConfig() map[string]any {
	return map[string]any{
		"tables": []any{map[string]any{"name": "public.items"}},
		"rollups": []any{map[string]any{
			"name":           opsRollup,
			"table":          "public.items",
			"dimensions":     []string{"category"},
			"time_dimension": "created_at",
			"granularity":    "day",
			"measures":       []string{"sum(amount)", "count(*)", "sum(qty)"},
			"refresh":        map[string]any{"every": "1h"},
		}},
	}
}

// writeProxyConfig writes the configuration of a new pgrollup into dir:
// fresh listen and admin ports (the admin API with the tests' token), the
// warehouse at dsn, data, rollups and cache under dir, build_timezone UTC,
// one build worker with 256MB for DuckDB, and what rest adds or replaces
// (tables, rollups, worker, auth, ...). It returns the file, its text and
// the process to start with them.
func writeProxyConfig(name, dir, dsn string, rest map[string]any) (string, []byte, *proxyProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	cfg := map[string]any{
		"listen":         net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"warehouse":      map[string]any{"dsn": dsn},
		"data_dir":       filepath.Join(dir, "data"),
		"storage":        map[string]any{"url": "file://" + filepath.Join(dir, "data", "rollups")},
		"worker":         map[string]any{"cache_dir": filepath.Join(dir, "data", "cache"), "concurrency": 1, "duckdb_memory_limit": "256MB"},
		"admin":          map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)), "token": adminTok},
		"build_timezone": "UTC",
		// Continuous verification re-runs sampled hits through the same
		// executor and result cache, which tests count; verify_test.go and
		// tests that set routing themselves have it on.
		"routing": map[string]any{"verify_fraction": 0},
	}
	for k, v := range rest {
		cfg[k] = v
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		return "", nil, nil, err
	}
	cfgFile := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgFile, text, 0o600); err != nil {
		return "", nil, nil, err
	}
	p := &proxyProc{
		name:   name,
		host:   "127.0.0.1",
		port:   port,
		admin:  net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		log:    &syncBuffer{},
		exited: make(chan struct{}),
	}
	return cfgFile, text, p, nil
}

// rollupStatus is the part of GET /api/rollups the tests read.
type rollupStatus struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Version   string     `json:"version"`
	Rows      int64      `json:"rows"`
	Bytes     int64      `json:"bytes"`
	BuiltAt   *time.Time `json:"built_at"`
	LastError *string    `json:"last_error"`
}

// rollups reads GET /api/rollups.
func (o *opsProc) rollups(t *testing.T) []rollupStatus {
	t.Helper()
	code, body, err := o.adminGet("/api/rollups")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/rollups: %d %v\n%s", code, err, body)
	}
	var list []rollupStatus
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /api/rollups: %v\n%s", err, body)
	}
	return list
}

// waitActive waits until the rollup has an active version other than
// notVersion, and until the proxy's catalog serves it: SHOW ROLLUPS through
// the proxy is read from the same catalog the router follows.
func (o *opsProc) waitActive(t *testing.T, ctx context.Context, name, notVersion string) rollupStatus {
	t.Helper()
	for {
		var last rollupStatus
		for _, r := range o.rollups(t) {
			if r.Name == name {
				last = r
			}
		}
		if last.Status == "active" && last.Version != "" && last.Version != notVersion {
			o.waitServed(t, ctx)
			return last
		}
		if last.Status == "failed" {
			t.Fatalf("rollup %s failed to build: %v", name, deref(last.LastError))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rollup %s not active in time; last status %+v", name, last)
		case <-o.exited:
			t.Fatalf("pgrollup exited: %v", o.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitServed waits until a statement the rollup answers is routed to it:
// the router switches catalogs a moment after the build is recorded.
func (o *opsProc) waitServed(t *testing.T, ctx context.Context) {
	t.Helper()
	conn := connect(t, ctx, o.DSN(userScram, dbMain))
	defer conn.Close(ctx)
	for {
		var route string
		rows, err := conn.Query(ctx, "EXPLAIN (ROLLUP) "+opsHits[0])
		if err != nil {
			t.Fatalf("EXPLAIN (ROLLUP): %v", err)
		}
		text := ""
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			text += fmt.Sprintln(vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("EXPLAIN (ROLLUP): %v", err)
		}
		if strings.Contains(text, " chosen ") {
			return
		}
		route = text
		select {
		case <-ctx.Done():
			t.Fatalf("the rollup is active but does not answer %q:\n%s", opsHits[0], route)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// workerBin builds pgrollup-worker once, for the tests that run or inspect it.
var workerBin = struct {
	once sync.Once
	path string
	err  error
}{}

func buildWorker(t *testing.T) string {
	t.Helper()
	workerBin.once.Do(func() {
		workerBin.path = filepath.Join(env.tmp, "pgrollup-worker")
		cmd := exec.Command("go", "build", "-o", workerBin.path, "./cmd/worker")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			workerBin.err = fmt.Errorf("go build ./cmd/worker: %v\n%s", err, out)
		}
	})
	if workerBin.err != nil {
		t.Fatal(workerBin.err)
	}
	return workerBin.path
}

// runPgrollup runs the pgrollup binary with args and returns its output and exit code.
func runPgrollup(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runPgrollupEnv(t, nil, args...)
}

// runPgrollupEnv is runPgrollup with extra environment variables.
func runPgrollupEnv(t *testing.T, extraEnv []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, env.bin, args...)
	cmd.Env = cleanEnv(extraEnv...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("pgrollup %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}
