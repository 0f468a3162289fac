package e2e

// High availability end to end (issue 18): two proxies behind HAProxy (TCP
// mode, send-proxy-v2), two pgrollup-workers, an external nats-server with
// JetStream and MinIO, under load from pgbench and a BI-shaped client,
// through a proxy killed, a rolling restart of every process, a SIGHUP
// config change and a NATS outage.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/minio"
)

// requireHAProxy fails (never skips) without Debian's haproxy.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	t.Fatal("haproxy is not installed: install the Debian package haproxy (bash scripts/deps.sh haproxy)")
	return ""
}

// haNATS is an external nats-server that the test kills and starts again
// on the same port and store.
type haNATS struct {
	bin, dir  string
	port, mon int
	log       *syncBuffer
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (n *haNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *haNATS) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(n.bin, "-js", "-sd", n.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-m", strconv.Itoa(n.mon))
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.Env = cleanEnv()
	n.cmd.SysProcAttr = dieWithParent()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	n.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(n.cmd)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", n.mon)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("nats-server exited:\n%s", n.log.Bytes())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not ready after 20s:\n%s", n.log.Bytes())
		}
	}
}

func (n *haNATS) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// haPhase counts what the load saw in one phase.
type haPhase struct {
	name                                string
	biQueries, biErrors, biWrong        int64
	benchTx, benchFailedRuns, benchRuns int64
	hits                                float64
	seconds                             float64
	benchFailure                        atomic.Pointer[string] // the first failed run's output
	// running counts the pgbench runs and BI rounds that began in this
	// phase and have not ended: the next phase's disruption waits for
	// them, so that a run is never counted in a phase it outlived.
	running sync.WaitGroup
}

// haLoad runs the BI-shaped client and pgbench through the balancer until
// stopped, counting into the current phase.
type haLoad struct {
	addr    string // the balancer
	mu      sync.Mutex
	cur     *haPhase // guarded by mu
	stopped chan struct{}
	wg      sync.WaitGroup
}

// enter returns the current phase for a pgbench run or a BI round about
// to begin, which must call ph.running.Done when it ends.
func (l *haLoad) enter() *haPhase {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.running.Add(1)
	return l.cur
}

// switchTo makes ph the current phase, and waits for the runs and rounds
// that began in the previous one to end: a pgbench run lasts a second, and
// one that began in the steady phase would otherwise meet the next phase's
// killed proxy and be counted as a failure with every process up.
func (l *haLoad) switchTo(ph *haPhase) {
	l.mu.Lock()
	prev := l.cur
	l.cur = ph
	l.mu.Unlock()
	if prev != nil {
		prev.running.Wait()
	}
}

// bi is the BI-shaped client: it asks topologyStatements(n) for ever new n
// (a new text, which no result cache holds, with the same rows as want),
// alternating the simple and extended protocols, and reconnects on errors.
func (l *haLoad) bi(t *testing.T, want []string) {
	defer l.wg.Done()
	ctx := context.Background()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(ctx)
		}
	}()
	for n := 1; ; n++ {
		select {
		case <-l.stopped:
			return
		default:
		}
		ph := l.enter()
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := pgx.Connect(cctx, haDSN(l.addr))
			cancel()
			if err != nil {
				atomic.AddInt64(&ph.biErrors, 1)
				time.Sleep(50 * time.Millisecond)
				ph.running.Done()
				continue
			}
			conn = c
		}
		mode := pgx.QueryExecModeSimpleProtocol
		if n%2 == 1 {
			mode = pgx.QueryExecModeCacheStatement
		}
		for i, sql := range topologyStatements(n) {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := renderQuery(qctx, conn, sql, mode)
			cancel()
			atomic.AddInt64(&ph.biQueries, 1)
			if err != nil {
				atomic.AddInt64(&ph.biErrors, 1)
				conn.Close(ctx)
				conn = nil
				break
			}
			if got != want[i] {
				atomic.AddInt64(&ph.biWrong, 1)
				t.Errorf("phase %s: %s: through pgrollup\n%s\nwarehouse\n%s", ph.name, sql, got, want[i])
			}
		}
		ph.running.Done()
	}
}

// haServerEnded matches a tcplog line whose termination state says the
// server side ended or refused the connection.
var haServerEnded = regexp.MustCompile(` (SC|SD|SH|sC|sQ|sH|PC|RC|IC|KC) `)

// haTermination is a tcplog line's termination state.
var haTermination = regexp.MustCompile(` ([-A-Za-z]{2}) \d+/\d+/\d+/\d+/\d+ \d+/\d+`)

// haSilentClose matches a tcplog line of a connection whose server sent
// nothing before it closed normally (bytes_read 0, termination "--").
var haSilentClose = regexp.MustCompile(`\] pg proxies/\S+ \d+/\d+/\d+ 0 -- `)

// haSilent returns the balancer's log lines of connections a proxy closed
// without sending a byte: a proxy that ends a session without an
// ErrorResponse, or one that was killed.
func haSilent(log []byte) []string {
	var out []string
	for _, line := range strings.Split(string(log), "\n") {
		if haSilentClose.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

var haPgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)

// pgbench runs one-second pgbench runs, a new connection per transaction
// (-C) so that its clients reconnect through the balancer, of a rollup
// query.
func (l *haLoad) pgbench(t *testing.T, bin, script string) {
	defer l.wg.Done()
	host, port, _ := net.SplitHostPort(l.addr)
	for {
		select {
		case <-l.stopped:
			return
		default:
		}
		ph := l.enter()
		cmd := exec.Command(bin, "-n", "-C", "-c", "2", "-j", "1", "-T", "1", "-f", script,
			"-h", host, "-p", port, "-U", userScram, dbMain)
		cmd.Env = cleanEnv("PGPASSWORD="+passwords[userScram], "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=5")
		out, err := cmd.CombinedOutput()
		atomic.AddInt64(&ph.benchRuns, 1)
		if m := haPgbenchProcessed.FindSubmatch(out); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			atomic.AddInt64(&ph.benchTx, n)
		}
		if err != nil {
			var why []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "error") || strings.Contains(line, "FATAL") {
					why = append(why, line)
				}
			}
			msg := fmt.Sprintf("at %s, %v: %s", time.Now().UTC().Format("15:04:05.000"), err, strings.Join(why, "; "))
			ph.benchFailure.CompareAndSwap(nil, &msg)
			atomic.AddInt64(&ph.benchFailedRuns, 1)
			time.Sleep(50 * time.Millisecond)
		}
		ph.running.Done()
	}
}

func haDSN(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return dsn(host, p, userScram, passwords[userScram], dbMain, "disable") + "&connect_timeout=5"
}

// haHits adds up rollup-routed statements over the proxy processes that
// ran: a process's count is read last just before it is stopped.
type haHits struct {
	base    map[*proxyProc]float64
	retired float64
}

func hitsOf(t *testing.T, p *proxyProc) float64 {
	t.Helper()
	n, _ := metricSum(scrape(t, p), "pgrollup_queries_total", map[string]string{"route": "rollup"})
	return n
}

// TestHAScaledOut is issue 18's high-availability run. Each phase must give
// 0 wrong answers; errors are counted (a statement in flight on a killed
// proxy fails, its client reconnects) and logged with the hits, and every
// rollup keeps the one version built at the start: no phase builds again.
func TestHAScaledOut(t *testing.T) {
	natsBin, haproxyBin := requireNATSServer(t), requireHAProxy(t)
	pgbenchBin, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatal("pgbench is not on PATH: install the Debian package postgresql (bash scripts/deps.sh postgres)")
	}
	ctx := testCtx(t, 170*time.Second)
	dir := t.TempDir()
	started := time.Now()

	mctx, mcancel := context.WithTimeout(ctx, 60*time.Second)
	m, err := minio.Start(mctx, filepath.Join(dir, "minio"))
	mcancel()
	if err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	t.Cleanup(m.Stop)
	workerBin := buildWorker(t)
	nats := &haNATS{bin: natsBin, dir: filepath.Join(dir, "nats"), port: mustFreePort(t), mon: mustFreePort(t), log: &syncBuffer{}}
	nats.start(t)
	t.Cleanup(func() {
		if nats.cmd.ProcessState == nil {
			nats.kill()
		}
	})
	storage := map[string]any{
		"url": "s3://" + m.Bucket + "/rollups",
		"s3": map[string]any{
			"endpoint": m.Endpoint, "region": minio.Region, "force_path_style": true,
			"access_key": m.AccessKey, "secret_key": m.SecretKey,
		},
	}
	extra := map[string]any{
		// The balancer connects from 127.0.0.2 (its source below), so that
		// the test's own connections to a proxy, from 127.0.0.1, need no
		// header.
		"proxy_protocol": map[string]any{"trusted": []string{"127.0.0.2"}},
		"routing":        map[string]any{"worker_timeout": "5s"},
	}
	var cfgs []*scaleProc
	for _, name := range []string{"proxy-1", "proxy-2", "worker-1", "worker-2"} {
		cfgs = append(cfgs, writeScaleConfig(t, dir, name, nats.url(), storage, extra))
	}
	startWorker := func(s *scaleProc) *proxyProc {
		return startTopologyProc(t, s.name, workerBin, s.adminAddr(), 0,
			"--config", s.cfgFile, "--name", s.name, "--admin-listen", s.adminAddr())
	}
	procs := make([]*proxyProc, 4) // proxy-1, proxy-2, worker-1, worker-2
	for i, s := range cfgs {
		if i < 2 {
			procs[i] = s.startServe(t, "--build-worker=false")
		} else {
			procs[i] = startWorker(s)
		}
	}
	for _, p := range procs {
		waitReady(t, ctx, p)
	}
	versions := map[string]string{}
	for _, p := range procs[:2] {
		o := &opsProc{proxyProc: p, dir: dir}
		for _, r := range []string{opsRollup, topologyQtyRollup} {
			v := o.waitActive(t, ctx, r, "").Version
			if versions[r] != "" && versions[r] != v {
				t.Fatalf("the proxies serve versions %s and %s of %s", versions[r], v, r)
			}
			versions[r] = v
		}
	}

	// HAProxy in TCP mode sends each client's address in a PROXY v2
	// header and checks the proxies' /readyz.
	haPort := mustFreePort(t)
	haCfg := fmt.Sprintf(`global
  maxconn 200
  log stderr format raw local0
defaults
  log global
  option tcplog
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 2
  option redispatch
frontend pg
  bind 127.0.0.1:%d
  default_backend proxies
backend proxies
  balance roundrobin
  source 127.0.0.2
  option httpchk GET /readyz
  default-server send-proxy-v2 check inter 200ms fall 1 rise 2
  server p1 127.0.0.1:%d check port %d
  server p2 127.0.0.1:%d check port %d
`, haPort, cfgs[0].port, cfgs[0].admin, cfgs[1].port, cfgs[1].admin)
	haFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(haFile, []byte(haCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ha := startTopologyProc(t, "haproxy", haproxyBin, "", 0, "-db", "-f", haFile)
	haAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(haPort))
	waitPort(t, ctx, ha, haAddr)

	direct := connect(t, ctx, directDSN(userScram, dbMain))
	var want []string
	// Every n > 0 has these answers (no category 'none-n', no qty -n).
	for _, sql := range topologyStatements(1) {
		want = append(want, queryText(t, direct, sql, pgx.QueryExecModeSimpleProtocol))
	}
	script := filepath.Join(dir, "bench.sql")
	if err := os.WriteFile(script, []byte(topologyStatements(0)[0]+";\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	load := &haLoad{addr: haAddr, stopped: make(chan struct{})}
	hits := &haHits{base: map[*proxyProc]float64{}}
	var phases []*haPhase
	begin := func(name string) *haPhase {
		ph := &haPhase{name: name}
		load.switchTo(ph)
		phases = append(phases, ph)
		hits.retired = 0
		for _, p := range procs[:2] {
			hits.base[p] = hitsOf(t, p)
		}
		return ph
	}
	phaseStart := time.Now()
	end := func(ph *haPhase) {
		for _, p := range procs[:2] {
			hits.retired += hitsOf(t, p) - hits.base[p]
		}
		ph.hits = hits.retired
		ph.seconds = time.Since(phaseStart).Seconds()
		phaseStart = time.Now()
	}
	// retire reads a proxy's count just before it stops; its replacement
	// counts from zero.
	retire := func(i int) {
		p := procs[i]
		hits.retired += hitsOf(t, p) - hits.base[p]
		delete(hits.base, p)
	}
	replaced := func(i int, p *proxyProc) {
		procs[i] = p
		hits.base[p] = 0
	}
	settle := func() { time.Sleep(2 * time.Second) }

	ph := begin("steady")
	load.wg.Add(2)
	go load.bi(t, want)
	go load.pgbench(t, pgbenchBin, script)
	settle()
	end(ph)

	ph = begin("kill proxy-1")
	retire(0)
	procs[0].kill()
	settle()
	replaced(0, cfgs[0].startServe(t, "--build-worker=false"))
	waitReady(t, ctx, procs[0])
	settle()
	end(ph)

	ph = begin("rolling restart")
	for i := range procs {
		if i < 2 {
			retire(i)
		}
		if err := procs[i].stop(20 * time.Second); err != nil {
			t.Errorf("%s did not stop cleanly: %v", procs[i].name, err)
		}
		var p *proxyProc
		if i < 2 {
			p = cfgs[i].startServe(t, "--build-worker=false")
			replaced(i, p)
		} else {
			p = startWorker(cfgs[i])
			procs[i] = p
		}
		waitReady(t, ctx, p)
		// The balancer's check takes a restarted proxy back (rise 2 ×
		// 200ms) before the next one goes.
		time.Sleep(600 * time.Millisecond)
	}
	settle()
	end(ph)

	ph = begin("SIGHUP config change")
	extra["routing"] = map[string]any{"worker_timeout": "5s", "max_staleness": "24h"}
	for i := range 2 {
		cfgs[i].write(t, dir, nats.url(), storage, extra)
		if err := procs[i].cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs[:2] {
		waitLog(t, ctx, p, `msg="config reloaded"`)
	}
	settle()
	end(ph)

	ph = begin("NATS down and back")
	nats.kill()
	settle()
	nats.start(t)
	settle()
	end(ph)

	close(load.stopped)
	load.wg.Wait()
	ha.kill() // haproxy ends on a signal, which stop would take for a failure

	// Connections the balancer ended on the server's side (tcplog's
	// termination states), to tell why a client lost its connection.
	var serverSide []string
	states := map[string]int{}
	for _, line := range strings.Split(string(ha.log.Bytes()), "\n") {
		if m := haTermination.FindStringSubmatch(line); m != nil {
			states[m[1]]++
		}
		if haServerEnded.MatchString(line) {
			serverSide = append(serverSide, line)
		}
	}
	t.Logf("haproxy's connections by termination state %v; ended on the server's side: %d, the first: %q", states, len(serverSide), serverSide[:min(len(serverSide), 5)])
	for _, p := range procs[:2] {
		body := scrape(t, p)
		t.Logf("%s since its last start: %s", p.name, strings.Join(strings.Fields(grepMetric(body, "pgrollup_worker_fallbacks_total")), " "))
	}

	t.Logf("%-22s %6s %9s %7s %6s %9s %12s %7s", "phase", "secs", "bi_stmts", "bi_err", "wrong", "bench_tx", "bench_failed", "hits")
	for _, p := range phases {
		t.Logf("%-22s %6.1f %9d %7d %6d %9d %5d of %4d %7.0f", p.name, p.seconds, p.biQueries, p.biErrors, p.biWrong,
			p.benchTx, p.benchFailedRuns, p.benchRuns, p.hits)
		if f := p.benchFailure.Load(); f != nil {
			t.Logf("%s: a pgbench run failed: %s", p.name, *f)
		}
		if p.biWrong != 0 {
			t.Errorf("phase %s: %d wrong answers", p.name, p.biWrong)
		}
		if p.hits == 0 || p.biQueries == 0 || p.benchTx == 0 {
			t.Errorf("phase %s: %v hits, %d BI statements, %d pgbench transactions: the load did not get through", p.name, p.hits, p.biQueries, p.benchTx)
		}
	}
	// With every process up no connection may fail: each phase's
	// disruption waits for the runs that began before it (haLoad.switchTo).
	// In the later phases a pgbench run that meets a killed or restarted
	// proxy is logged above, not failed on.
	if phases[0].biErrors != 0 {
		t.Errorf("%d BI errors with every process up", phases[0].biErrors)
	}
	if n := phases[0].benchFailedRuns; n != 0 {
		t.Errorf("%d pgbench runs failed with every process up; the balancer's connections whose server sent nothing: %q", n, haSilent(ha.log.Bytes()))
	}
	// Every rollup still has the version built at the start: nothing was
	// built again by a restart, a reload or the NATS outage.
	for _, p := range procs[:2] {
		for _, r := range (&opsProc{proxyProc: p}).rollups(t) {
			if v, ok := versions[r.Name]; ok && (r.Version != v || r.Status != "active") {
				t.Errorf("%s: rollup %s is %s at version %s, want active at %s (built once)", p.name, r.Name, r.Status, r.Version, v)
			}
		}
	}
	t.Logf("whole run %s", time.Since(started).Round(time.Second))
}

// waitPort waits until addr accepts connections.
func waitPort(t *testing.T, ctx context.Context, p *proxyProc, addr string) {
	t.Helper()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.log.Bytes())
		case <-ctx.Done():
			t.Fatalf("%s: nothing listens on %s", p.name, addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLog waits until the process's log contains s.
func waitLog(t *testing.T, ctx context.Context, p *proxyProc, s string) {
	t.Helper()
	for !strings.Contains(string(p.log.Bytes()), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no %q in the log:\n%s", p.name, s, tail(p.log.Bytes(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
