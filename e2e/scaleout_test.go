package e2e

// Several pgrollup serve processes on one external NATS server, with and
// without pgrollup-workers (issue 18): who answers rollup queries, and
// that every rollup is still built once.

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// scaleProc is one process of a scaled-out topology: its config file and
// the ports written into it.
type scaleProc struct {
	name, cfgFile string
	port, admin   int
}

// scaleRollups are the rollups of the scaled-out topology tests:
// opsRollup and topologyQtyRollup, which topologyStatements read.
func scaleRollups() []any {
	return []any{
		map[string]any{
			"name": opsRollup, "table": "public.items", "dimensions": []string{"category"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"sum(amount)", "count(*)", "sum(qty)"}, "refresh": map[string]any{"every": "1h"},
		},
		map[string]any{
			"name": topologyQtyRollup, "table": "public.items", "dimensions": []string{"qty"},
			"time_dimension": "created_at", "granularity": "month",
			"measures": []string{"count(*)", "sum(amount)"}, "refresh": map[string]any{"every": "1h"},
		},
	}
}

// writeScaleConfig writes name's config under dir: the warehouse, NATS and
// storage shared by all, its own ports and local directories, and extra
// keys over those.
func writeScaleConfig(t *testing.T, dir, name, natsURL string, storage map[string]any, extra map[string]any) *scaleProc {
	t.Helper()
	p := &scaleProc{name: name, port: mustFreePort(t), admin: mustFreePort(t)}
	p.write(t, dir, natsURL, storage, extra)
	return p
}

// write writes the process's config again, on the same ports (a reload).
func (p *scaleProc) write(t *testing.T, dir, natsURL string, storage map[string]any, extra map[string]any) {
	t.Helper()
	name := p.name
	cfg := map[string]any{
		"listen":    net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		"warehouse": map[string]any{"dsn": env.pg.DSN(dbMain)},
		"nats":      map[string]any{"url": natsURL},
		"data_dir":  filepath.Join(dir, name, "data"),
		"storage":   storage,
		"worker": map[string]any{
			"cache_dir": filepath.Join(dir, name, "cache"), "concurrency": 2, "duckdb_memory_limit": "256MB",
		},
		"admin":          map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(p.admin)), "token": adminTok},
		"build_timezone": "UTC",
		"tables":         []any{map[string]any{"name": "public.items"}},
		"rollups":        scaleRollups(),
	}
	for k, v := range extra {
		cfg[k] = v
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.cfgFile = filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p.cfgFile, text, 0o600); err != nil {
		t.Fatal(err)
	}
}

// adminAddr is the process's admin listener.
func (s *scaleProc) adminAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.admin)) }

// startServe starts `pgrollup serve` with the process's config.
func (s *scaleProc) startServe(t *testing.T, args ...string) *proxyProc {
	t.Helper()
	return startTopologyProc(t, s.name, env.bin, s.adminAddr(), s.port,
		append([]string{"serve", "--config", s.cfgFile, "--log-level", "info"}, args...)...)
}

// successfulBuilds adds up the builds the processes recorded as successful.
func successfulBuilds(t *testing.T, procs []*proxyProc) float64 {
	t.Helper()
	total := 0.0
	for _, p := range procs {
		n, _ := metricSum(scrape(t, p), "pgrollup_builds_total", map[string]string{"result": "success"})
		total += n
	}
	return total
}

// TestScaleOutProxiesWithoutWorkers is issue 18's report: two pgrollup
// serve processes sharing an external nats-server and a file:// store, and
// no pgrollup-worker. With routing.answer_on at its default (auto) each
// proxy answers rollup queries in its own DuckDB, with the warehouse's
// rows, says so in /readyz and warns once; every rollup is built once.
func TestScaleOutProxiesWithoutWorkers(t *testing.T) {
	natsBin := requireNATSServer(t)
	ctx := testCtx(t, 120*time.Second)
	dir := t.TempDir()
	nats := startNATSServer(t, natsBin, filepath.Join(dir, "nats"))
	storage := map[string]any{"url": "file://" + filepath.Join(dir, "rollups")}
	var procs []*proxyProc
	// Continuous verification would re-run a sampled hit on the proxy's
	// own DuckDB too, and be counted with the statements.
	quiet := map[string]any{"routing": map[string]any{"verify_fraction": 0}}
	for _, name := range []string{"proxy-1", "proxy-2"} {
		procs = append(procs, writeScaleConfig(t, dir, name, nats.url, storage, quiet).startServe(t))
	}
	for _, p := range procs {
		waitReady(t, ctx, p)
		o := &opsProc{proxyProc: p, dir: dir}
		o.waitActive(t, ctx, opsRollup, "")
		o.waitActive(t, ctx, topologyQtyRollup, "")
	}
	direct := connect(t, ctx, directDSN(userScram, dbMain))
	n := 0
	for _, p := range procs {
		conn := connect(t, ctx, p.DSN(userScram, dbMain))
		before := scrape(t, p)
		statements := 0.0
		for i := range 4 {
			mode := pgx.QueryExecModeSimpleProtocol
			if i%2 == 1 {
				mode = pgx.QueryExecModeCacheStatement
			}
			n++
			for _, sql := range topologyStatements(n) {
				statements++
				want := queryText(t, direct, sql, mode)
				if got := queryText(t, conn, sql, mode); got != want {
					t.Errorf("%s: %s (%v): through pgrollup\n%s\nwarehouse\n%s", p.name, sql, mode, got, want)
				}
			}
		}
		after := scrape(t, p)
		diff := func(name string, labels map[string]string) float64 {
			a, _ := metricSum(after, name, labels)
			b, _ := metricSum(before, name, labels)
			return a - b
		}
		rollup := diff("pgrollup_queries_total", map[string]string{"route": "rollup"})
		fallbacks := diff("pgrollup_rollup_fallbacks_total", nil)
		local := diff("pgrollup_worker_fallbacks_total", map[string]string{"reason": "no_worker", "answered_by": "proxy"})
		t.Logf("%s: %v statements, %v from rollups, %v answered by the proxy for lack of workers, %v fallbacks to the warehouse", p.name, statements, rollup, local, fallbacks)
		if rollup != statements || fallbacks != 0 || local != statements {
			t.Errorf("%s: %v statements: %v from rollups, %v by the proxy for lack of workers, %v fallbacks; want all from rollups by the proxy",
				p.name, statements, rollup, local, fallbacks)
		}
		code, body, err := p.adminGet("/readyz")
		if err != nil || code != 200 || !strings.Contains(string(body), "rollup queries answered by the proxy: no worker answered") {
			t.Errorf("%s: /readyz %d %v:\n%s", p.name, code, err, body)
		}
		if log := string(p.log.Bytes()); strings.Count(log, "no worker answered") != 1 || !strings.Contains(log, "level=WARN") {
			t.Errorf("%s: want one warning that no worker answered:\n%s", p.name, tail(p.log.Bytes(), 30))
		}
	}
	if built := successfulBuilds(t, procs); built != 2 {
		t.Errorf("%v successful builds for 2 rollups, want each built once", built)
	}
}
