package e2e

// The scaled-out topology of DESIGN.md §1, as real processes: Postgres, an
// external nats-server with JetStream, MinIO, one `pgrollup serve
// --build-worker=false` and two pgrollup-workers that build the rollups into
// the bucket and answer the proxy's rollup queries from their caches of it.

import (
	"bufio"
	"bytes"
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

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/internal/minio"
)

// topologyQtyRollup is the topology's second rollup, so that there is more
// than one build to share between the workers.
const topologyQtyRollup = "items_monthly_by_qty"

// topologyStatements are answered by the topology's rollups: the first by
// opsRollup, the second by topologyQtyRollup. Each n gives different
// statements, whose answers no cache in the proxy can hold yet: what the
// test counts is who computes each answer.
func topologyStatements(n int) []string {
	return []string{
		fmt.Sprintf("SELECT category, sum(amount) FROM items WHERE category <> 'none-%d' GROUP BY category ORDER BY category", n),
		fmt.Sprintf("SELECT qty, count(*), sum(amount) FROM items WHERE qty <> %d GROUP BY qty ORDER BY qty", -n),
	}
}

// TestTopologyScaledOut starts the scaled-out topology and checks that the
// workers, not the proxy, build the rollups; that statements through the
// proxy are answered from the rollups by the workers with the warehouse's
// rows; that they still are with one worker SIGKILLed; and that with both
// killed the same statements fall back to the warehouse with the same rows.
func TestTopologyScaledOut(t *testing.T) {
	natsBin := requireNATSServer(t)
	ctx := testCtx(t, 150*time.Second)
	// A new directory per run: NATS's and MinIO's files must start empty
	// for the rollups to be built again.
	dir := t.TempDir()

	// MinIO starts while the worker binary builds. Its own deadline: MinIO
	// is built by scripts/deps.sh (make test), never here, but Start waits
	// for a build of it that is under way.
	type started struct {
		srv *minio.Server
		err error
	}
	minioc := make(chan started, 1)
	go func() {
		mctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		srv, err := minio.Start(mctx, filepath.Join(dir, "minio"))
		minioc <- started{srv, err}
	}()
	startedMinIO := sync.OnceValue(func() started { return <-minioc })
	// Registered before anything can fail: MinIO does not die with the test.
	t.Cleanup(func() {
		if m := startedMinIO(); m.srv != nil {
			m.srv.Stop()
			if t.Failed() {
				t.Logf("minio log:\n%s", tail([]byte(m.srv.Log()), 30))
			}
		}
	})
	workerBin := buildWorker(t)
	m := startedMinIO()
	if m.err != nil {
		t.Fatalf("starting MinIO: %v", m.err)
	}
	nats := startNATSServer(t, natsBin, filepath.Join(dir, "nats"))

	// One config for all three, as in docker-compose.yml; only the local
	// directories differ per process, so that two caches never share one.
	proxyPort, proxyAdmin := mustFreePort(t), mustFreePort(t)
	cfgFor := func(name string) string {
		cfg := map[string]any{
			"listen":    net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyPort)),
			"warehouse": map[string]any{"dsn": env.pg.DSN(dbMain)},
			"nats":      map[string]any{"url": nats.url},
			"data_dir":  filepath.Join(dir, name, "data"),
			"storage": map[string]any{
				"url": "s3://" + m.srv.Bucket + "/rollups",
				"s3": map[string]any{
					"endpoint": m.srv.Endpoint, "region": minio.Region, "force_path_style": true,
					"access_key": m.srv.AccessKey, "secret_key": m.srv.SecretKey,
				},
			},
			"worker": map[string]any{
				"cache_dir": filepath.Join(dir, name, "cache"), "concurrency": 1, "duckdb_memory_limit": "256MB",
			},
			"routing":        map[string]any{"worker_timeout": "5s", "answer_on": "workers", "verify_fraction": 0}, // verification would add worker queries of its own
			"admin":          map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyAdmin)), "token": adminTok},
			"build_timezone": "UTC",
			"tables":         []any{map[string]any{"name": "public.items"}},
			"rollups":        scaleRollups(),
		}
		text, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, text, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}

	var workers []*proxyProc
	for _, name := range []string{"worker-1", "worker-2"} {
		admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(mustFreePort(t)))
		workers = append(workers, startTopologyProc(t, name, workerBin, admin, 0,
			"--config", cfgFor(name), "--name", name, "--admin-listen", admin, "--log-level", "debug"))
	}
	proxyCfg := cfgFor("proxy")
	p := startTopologyProc(t, "proxy", env.bin, net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyAdmin)), proxyPort,
		"serve", "--config", proxyCfg, "--build-worker=false", "--log-level", "debug")
	for _, w := range append([]*proxyProc{p}, workers...) {
		waitReady(t, ctx, w)
	}
	o := &opsProc{proxyProc: p, cfgFile: proxyCfg, dir: dir}
	o.waitActive(t, ctx, opsRollup, "")
	o.waitActive(t, ctx, topologyQtyRollup, "")

	// The workers built both rollups; the proxy took no build job.
	t.Run("built by the workers", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			// A worker counts a build just after recording it in the catalog.
			// Which worker takes which job is JetStream's choice: the two
			// together must have built both rollups.
			built, timed := 0.0, 0.0
			for _, w := range workers {
				body := scrape(t, w)
				n, _ := metricSum(body, "pgrollup_builds_total", map[string]string{"result": "success"})
				d, _ := metricSum(body, "pgrollup_build_duration_seconds_count", nil)
				built, timed = built+n, timed+d
			}
			if built >= 2 && timed >= built {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the workers count %v successful builds and time %v, want at least 2 (one per rollup) and each timed", built, timed)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n, series := metricSum(scrape(t, p), "pgrollup_builds_total", nil); series != 0 {
			t.Errorf("the proxy with --build-worker=false counts %v builds", n)
		}
		if log := string(p.log.Bytes()); strings.Contains(log, `msg="worker started"`) || !strings.Contains(log, "--build-worker=false") {
			t.Errorf("the proxy's log does not say it runs no build worker:\n%s", tail(p.log.Bytes(), 40))
		}
	})

	t.Run("worker admin", func(t *testing.T) {
		for _, w := range workers {
			for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 401} {
				if code := getNoToken(t, w.admin, path); code != want {
					t.Errorf("%s: GET %s without the token: %d, want %d", w.name, path, code, want)
				}
			}
			body := scrape(t, w)
			for _, name := range []string{"pgrollup_worker_queries_total", "pgrollup_worker_rows_sent_total",
				"pgrollup_worker_cache_requests_total", "pgrollup_worker_cache_bytes", "go_goroutines"} {
				if _, n := metricSum(body, name, nil); n == 0 {
					t.Errorf("%s: /metrics has no %s", w.name, name)
				}
			}
		}
	})

	conn := connect(t, ctx, p.DSN(userScram, dbMain))
	direct := connect(t, ctx, directDSN(userScram, dbMain))
	const rounds = 3
	statements := float64(rounds * len(topologyStatements(0)))
	n := 0
	// run sends rounds of new statements, in both protocols, and checks the
	// rows against the warehouse's.
	run := func(t *testing.T) {
		t.Helper()
		for i := 0; i < rounds; i++ {
			mode := pgx.QueryExecModeSimpleProtocol
			if i%2 == 1 {
				mode = pgx.QueryExecModeCacheStatement
			}
			n++
			for _, sql := range topologyStatements(n) {
				want := queryText(t, direct, sql, mode)
				if got := queryText(t, conn, sql, mode); got != want {
					t.Errorf("%s (%v): through pgrollup\n%s\nwarehouse\n%s", sql, mode, got, want)
				}
			}
		}
	}
	// served runs the statements and returns how the proxy routed them and
	// how many the live workers answered.
	served := func(t *testing.T, live []*proxyProc) (rollup, passthrough, fallbacks, answered float64) {
		t.Helper()
		before, workersBefore := scrape(t, p), workerAnswers(t, live)
		run(t)
		after := scrape(t, p)
		counter := func(name string, labels map[string]string) float64 {
			a, _ := metricSum(after, name, labels)
			b, _ := metricSum(before, name, labels)
			return a - b
		}
		return counter("pgrollup_queries_total", map[string]string{"route": "rollup"}),
			counter("pgrollup_queries_total", map[string]string{"route": "passthrough"}),
			counter("pgrollup_rollup_fallbacks_total", nil),
			workerAnswers(t, live) - workersBefore
	}

	t.Run("two workers", func(t *testing.T) {
		rollup, passthrough, fallbacks, answered := served(t, workers)
		if rollup != statements || passthrough != 0 || fallbacks != 0 {
			t.Errorf("%v statements: %v from rollups, %v passed through, %v fallbacks; want all from rollups", statements, rollup, passthrough, fallbacks)
		}
		if answered != statements {
			t.Errorf("the workers answered %v rollup queries, want %v", answered, statements)
		}
	})

	t.Run("one worker killed", func(t *testing.T) {
		nats.killAndWait(t, workers[0])
		rollup, passthrough, fallbacks, answered := served(t, workers[1:])
		if rollup != statements || passthrough != 0 || fallbacks != 0 {
			t.Errorf("%v statements: %v from rollups, %v passed through, %v fallbacks; want all from rollups", statements, rollup, passthrough, fallbacks)
		}
		if answered != statements {
			t.Errorf("%s answered %v rollup queries, want %v", workers[1].name, answered, statements)
		}
	})

	t.Run("both workers killed", func(t *testing.T) {
		nats.killAndWait(t, workers[1])
		noWorker := map[string]string{"reason": "no_worker"}
		before, _ := metricSum(scrape(t, p), "pgrollup_rollup_fallbacks_total", noWorker)
		rollup, passthrough, fallbacks, _ := served(t, nil)
		if rollup != 0 || passthrough != statements || fallbacks != statements {
			t.Errorf("%v statements: %v from rollups, %v passed through, %v fallbacks; want all passed through as fallbacks", statements, rollup, passthrough, fallbacks)
		}
		body := scrape(t, p)
		if after, _ := metricSum(body, "pgrollup_rollup_fallbacks_total", noWorker); after-before != statements {
			t.Errorf("%v fallbacks for no_worker, want %v:\n%s", after-before, statements, grepMetric(body, "pgrollup_rollup_fallbacks_total"))
		}
	})
}

// TestTopologyBuildWorkerNeedsNATS: without nats.url no pgrollup-worker
// could reach the embedded server's queue, so --build-worker=false is refused.
func TestTopologyBuildWorkerNeedsNATS(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nlisten: 127.0.0.1:%d\nadmin: {listen: \"127.0.0.1:%d\"}\n",
		env.pg.DSN(dbMain), dir, mustFreePort(t), mustFreePort(t))
	file := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runPgrollup(t, "serve", "--config", file, "--build-worker=false")
	if code != 1 || !strings.Contains(stderr, "--build-worker=false needs nats.url") {
		t.Errorf("exit %d, want 1 with the reason:\n%s", code, stderr)
	}
	out, _, code := runPgrollup(t, "help")
	if code != 0 || !strings.Contains(out, "--build-worker=false") {
		t.Errorf("pgrollup help does not mention --build-worker=false (exit %d):\n%s", code, out)
	}
}

// requireNATSServer fails (never skips) without Debian's nats-server: the
// topology is only proven against the real, external server.
func requireNATSServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is not on PATH: install the Debian package nats-server (bash scripts/deps.sh)")
	}
	return bin
}

// natsServer is an external nats-server with JetStream and its monitoring
// port, which tells when it has noticed a client's death.
type natsServer struct {
	url     string
	monitor string // host:port
}

func startNATSServer(t *testing.T, bin, dir string) *natsServer {
	t.Helper()
	port, mon := mustFreePort(t), mustFreePort(t)
	s := &natsServer{url: "nats://127.0.0.1:" + strconv.Itoa(port), monitor: net.JoinHostPort("127.0.0.1", strconv.Itoa(mon))}
	log := &syncBuffer{}
	cmd := exec.Command(bin, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("nats-server log:\n%s", tail(log.Bytes(), 30))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + s.monitor + "/healthz?js-enabled-only=true"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("nats-server exited:\n%s", log.Bytes())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not ready after 20s:\n%s", log.Bytes())
		}
	}
}

// connections is how many clients the server has now.
func (s *natsServer) connections(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + s.monitor + "/connz")
	if err != nil {
		t.Fatalf("nats-server /connz: %v", err)
	}
	defer resp.Body.Close()
	var c struct {
		N int `json:"num_connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("nats-server /connz: %v", err)
	}
	return c.N
}

// killAndWait SIGKILLs a process and waits until the server has dropped its
// connection, so that no request is routed to a subscription that is gone.
func (s *natsServer) killAndWait(t *testing.T, p *proxyProc) {
	t.Helper()
	before := s.connections(t)
	p.kill()
	deadline := time.Now().Add(10 * time.Second)
	for s.connections(t) >= before {
		if time.Now().After(deadline) {
			t.Fatalf("nats-server still has %d connections 10s after %s was killed", before, p.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTopologyProc starts one process of the topology; it is stopped with
// SIGTERM, and must exit cleanly, when the test ends, unless it was killed.
func startTopologyProc(t *testing.T, name, bin, admin string, port int, args ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{name: name, host: "127.0.0.1", port: port, admin: admin, log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = cleanEnv()
	p.cmd.SysProcAttr = dieWithParent()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	killed := false
	t.Cleanup(func() {
		select {
		case <-p.exited:
			killed = true // by the test; a crash shows in its checks and the log
		default:
			if err := p.stop(20 * time.Second); err != nil {
				t.Errorf("%s did not stop cleanly: %v", name, err)
			}
		}
		if t.Failed() {
			t.Logf("%s log (killed by the test: %v):\n%s", name, killed, tail(p.log.Bytes(), 80))
		}
	})
	return p
}

// waitReady polls a process's /readyz until it answers 200.
func waitReady(t *testing.T, ctx context.Context, p *proxyProc) {
	t.Helper()
	for {
		if code, _, err := p.adminGet("/readyz"); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, tail(p.log.Bytes(), 40))
		case <-ctx.Done():
			t.Fatalf("%s not ready (GET /readyz)\n%s", p.name, tail(p.log.Bytes(), 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// workerAnswers is how many rollup queries the workers answered whole.
func workerAnswers(t *testing.T, workers []*proxyProc) float64 {
	t.Helper()
	total := 0.0
	for _, w := range workers {
		n, series := metricSum(scrape(t, w), "pgrollup_worker_queries_total", map[string]string{"result": "completed"})
		if series == 0 {
			t.Fatalf("%s: /metrics has no pgrollup_worker_queries_total{result=\"completed\"}", w.name)
		}
		total += n
	}
	return total
}

// metricSum adds up the samples of name whose labels include match, and
// says how many there were.
func metricSum(body []byte, name string, match map[string]string) (sum float64, series int) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			for _, kv := range splitLabels(rest[1:end]) {
				k, v, _ := strings.Cut(kv, "=")
				labels[k], _ = strconv.Unquote(v)
			}
			rest = rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer name with this prefix
		}
		matches := true
		for k, v := range match {
			matches = matches && labels[k] == v
		}
		fields := strings.Fields(rest)
		if !matches || len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum += v
			series++
		}
	}
	return sum, series
}

// grepMetric returns the sample lines of name, for messages.
func grepMetric(body []byte, name string) string {
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// getNoToken fetches an admin path without credentials and returns the status.
func getNoToken(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
