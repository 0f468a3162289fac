package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/remote"
)

const testToken = "worker-test-token"

// TestAdmin runs the worker against a NATS server of its own, as the
// proxies' would be, and probes its admin listener.
func TestAdmin(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, _ := jobstest.NATSServer(t)
	cfg := loadConfig(t, writeConfig(t, dir, url))
	addr := jobstest.FreeAddr(t)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- RunWorker(wctx, cfg, WorkerOptions{Name: "w1", Admin: addr, AdminFromFlag: true}, testLog(t))
	}()

	waitFor(t, "GET /readyz 200", func() bool { code, _ := get(t, addr, "/readyz", ""); return code == http.StatusOK })
	if code, _ := get(t, addr, "/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz: %d", code)
	}
	if code, _ := get(t, addr, "/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d, want 401", code)
	}
	if code, _ := get(t, addr, "/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong token: %d, want 401", code)
	}
	code, body := get(t, addr, "/metrics", testToken)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`pgrollup_worker_queries_total{result="completed"} 0`,
		`pgrollup_worker_queries_total{result="busy"} 0`,
		"pgrollup_worker_queries_running 0",
		"pgrollup_worker_rows_sent_total 0",
		`pgrollup_worker_cache_requests_total{result="hit"} 0`,
		`pgrollup_worker_cache_downloads_total{result="error"} 0`,
		"pgrollup_worker_cache_bytes 0",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	// The build metrics appear with the first build (e2e/ops_topology_test.go
	// checks them); the catalog gauges are the proxies' to export.
	if strings.Contains(body, "pgrollup_rollup_rows") {
		t.Error("/metrics exports pgrollup_rollup_rows")
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the admin listener still answers after the worker stopped")
	}
}

// TestAdminBeforeNATS: the probes answer while NATS is unreachable, /readyz
// with 503, and a stop before NATS was reached is a clean exit.
func TestAdminBeforeNATS(t *testing.T) {
	dir := t.TempDir()
	cfg := loadConfig(t, writeConfig(t, dir, "nats://"+jobstest.FreeAddr(t)))
	addr := jobstest.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- RunWorker(ctx, cfg, WorkerOptions{Admin: addr, AdminFromFlag: true}, testLog(t)) }()
	waitFor(t, "GET /healthz 200", func() bool { code, _ := get(t, addr, "/healthz", ""); return code == http.StatusOK })
	if code, _ := get(t, addr, "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz without NATS: %d, want 503", code)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}

// TestListenAdmin: a taken address is an error, except the built-in default
// that a proxy on the same host holds.
func TestListenAdmin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := listenAdmin(l.Addr().String(), false); err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Errorf("taken address: %v, %v", got, err)
	}
	if got, err := listenAdmin(l.Addr().String(), true); got != nil || err != nil {
		t.Errorf("taken default address: %v, %v; want neither", got, err)
	}
	if _, err := listenAdmin("127.0.0.1:notaport", true); err == nil {
		t.Error("a bad address is not an error")
	}
}

func TestQueryCollector(t *testing.T) {
	c := newQueryCollector(
		func() remote.ServerStats {
			return remote.ServerStats{Completed: 5, Failed: 1, Cancelled: 2, Busy: 3, Refused: 4, Active: 1, Rows: 70}
		},
		func() cache.Stats {
			return cache.Stats{Hits: 9, Misses: 2, Waits: 1, Downloads: 2, Failures: 1, Evictions: 1, Files: 1, Bytes: 4096}
		})
	want := `
# HELP pgrollup_worker_cache_bytes Bytes of the Parquet files in this worker's cache.
# TYPE pgrollup_worker_cache_bytes gauge
pgrollup_worker_cache_bytes 4096
# HELP pgrollup_worker_queries_running Rollup queries this worker is answering now.
# TYPE pgrollup_worker_queries_running gauge
pgrollup_worker_queries_running 1
# HELP pgrollup_worker_rows_sent_total Rows this worker sent to proxies in answers.
# TYPE pgrollup_worker_rows_sent_total counter
pgrollup_worker_rows_sent_total 70
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"pgrollup_worker_cache_bytes", "pgrollup_worker_queries_running", "pgrollup_worker_rows_sent_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "pgrollup_worker_queries_total"); n != 5 {
		t.Errorf("%d series of pgrollup_worker_queries_total, want 5", n)
	}
	if n := testutil.CollectAndCount(c); n != 15 {
		t.Errorf("%d series in all, want 15", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// writeConfig writes a worker config with no rollups under dir.
func writeConfig(t *testing.T, dir, natsURL string) string {
	t.Helper()
	y := fmt.Sprintf("warehouse: {dsn: \"postgres://nobody@127.0.0.1:1/none\"}\ndata_dir: %q\nnats: {url: %q}\n"+
		"worker: {concurrency: 1, duckdb_memory_limit: 256MB}\nadmin: {token: %q}\n", dir, natsURL, testToken)
	path := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// get fetches path from the admin listener at addr; code 0 means no answer.
func get(t *testing.T, addr, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
