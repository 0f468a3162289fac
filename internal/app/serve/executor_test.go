package serve

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/remote"
	"github.com/pgrollup/pgrollup/rollup"
)

// TestProxyExecutor: the configuration picks the executor and the file
// mapping that goes with it.
func TestProxyExecutor(t *testing.T) {
	nc := jobstest.Conn(t, jobstest.EmbeddedServer(t, t.TempDir()))
	// Nothing connects to the warehouse: the executors only read files.
	const dsn = "postgres://nobody@127.0.0.1:1/none"
	for _, c := range []struct {
		name, yaml string
		want       string
		keys       bool
	}{
		{"file", "", "*local.Executor", false},
		{"s3", `storage: {url: "s3://bucket/prefix", s3: {endpoint: "http://127.0.0.1:1", access_key: a, secret_key: b}}`, "*local.Executor", true},
		{"nats", `nats: {url: "nats://127.0.0.1:1"}`, "*serve.preferWorkers", true},
		{"nats workers", `nats: {url: "nats://127.0.0.1:1"}` + "\nrouting: {answer_on: workers}", "*serve.preferWorkers", true},
		{"nats local", `nats: {url: "nats://127.0.0.1:1"}` + "\nrouting: {answer_on: local}", "*local.Executor", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\n%s\n", dsn, dir, c.yaml)
			cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			p, err := newProxyExecutor(context.Background(), cfg, nc, nil, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := fmt.Sprintf("%T", p.Executor); got != c.want {
				t.Errorf("executor %s, want %s", got, c.want)
			}
			path, ok := p.LocalPath("r/id/v1/part.parquet")
			if !ok || (path == "r/id/v1/part.parquet") != c.keys {
				t.Errorf("LocalPath = %q, %v", path, ok)
			}
		})
	}
}

// TestAnswerOn: with nats.url set and no worker of this release, auto
// answers rollup queries in the proxy's DuckDB, workers lets them fall back
// to the warehouse; both count them, warn once and say so in /readyz's
// details. A worker of another release refuses the query, and auto still
// answers it.
func TestAnswerOn(t *testing.T) {
	srv := jobstest.EmbeddedServer(t, t.TempDir())
	nc := jobstest.Conn(t, srv)
	const dsn = "postgres://nobody@127.0.0.1:1/none"
	load := func(t *testing.T, dir, answerOn string) *config.Config {
		// nc is what the executor uses; the URL only selects the topology.
		y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nnats: {url: \"nats://127.0.0.1:1\"}\nrouting: {answer_on: %s}\n", dsn, dir, answerOn)
		cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const key = "r/id/v1/part.parquet"
	query := jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count")
	for _, c := range []struct {
		answerOn, by string
		answered     bool
	}{
		{"auto", "proxy", true},
		{"workers", "warehouse", false},
	} {
		t.Run(c.answerOn, func(t *testing.T) {
			dir := t.TempDir()
			cfg := load(t, dir, c.answerOn)
			path := filepath.Join(dir, "rollups", filepath.FromSlash(key))
			if err := jobstest.MkdirFor(path); err != nil {
				t.Fatal(err)
			}
			jobstest.WriteParquet(t, path, `SELECT i AS id FROM range(7) r(i)`)
			reg := prometheus.NewRegistry()
			var logs jobstest.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			p, err := newProxyExecutor(context.Background(), cfg, nc, nil, nil, reg, log)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if d := p.Details(); len(d) != 0 {
				t.Errorf("details before any query: %q", d)
			}
			for range 3 {
				rows, err := p.Query(context.Background(), query)
				if !c.answered {
					if jobstest.ReasonOf(err) != executor.FallbackNoWorker {
						t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackNoWorker)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if got, err := jobstest.Collect(rows); err != nil || len(got) != 1 || got[0][0] != int64(7) {
					t.Fatalf("rows %v, %v; want 7", got, err)
				}
			}
			if n := jobstest.Counter(t, reg, "pgrollup_worker_fallbacks_total", "reason", "no_worker", "answered_by", c.by); n != 3 {
				t.Errorf("pgrollup_worker_fallbacks_total{reason=no_worker,answered_by=%s} = %v, want 3", c.by, n)
			}
			if n := strings.Count(logs.String(), "no worker answered"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("%d warnings, want 1 (rate-limited):\n%s", n, logs.String())
			}
			if d := strings.Join(p.Details(), "\n"); !strings.Contains(d, "answered by the "+c.by) || !strings.Contains(d, "no_worker") {
				t.Errorf("details %q do not say who answered", d)
			}
			if !c.answered {
				return
			}
			// A worker of another release refuses; the proxy answers.
			wnc := jobstest.Conn(t, srv)
			f, err := app.OpenCachedFiles(cfg, mustStorage(t, cfg), nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx, cancel := context.WithCancel(context.Background())
			qs, err := remote.Serve(ctx, wnc, remote.ServerOptions{Cache: f.Cache, DuckDB: f.DB, Name: "old", Release: "another"})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			defer func() { cancel(); qs.Wait() }()
			rows, err := p.Query(context.Background(), query)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := jobstest.Collect(rows); err != nil || got[0][0] != int64(7) {
				t.Fatalf("rows %v, %v; want 7", got, err)
			}
			if n := jobstest.Counter(t, reg, "pgrollup_worker_fallbacks_total", "reason", "worker_release", "answered_by", "proxy"); n != 1 {
				t.Errorf("pgrollup_worker_fallbacks_total{reason=worker_release} = %v, want 1", n)
			}
			if qs.Stats().Refused == 0 || qs.Stats().Accepted != 0 {
				t.Errorf("the worker of another release: %+v", qs.Stats())
			}
		})
	}
}

func mustStorage(t *testing.T, cfg *config.Config) rollup.Storage {
	t.Helper()
	s, err := rollup.OpenStorage(context.Background(), cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
