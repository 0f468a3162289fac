package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// The deploy files the operations tests hold to account, relative to e2e/.
const (
	deployPrometheusConfig = "../deploy/prometheus/prometheus.yml"
	deployRules            = "../deploy/prometheus/rules.yml"
	deployRulesTest        = "../deploy/prometheus/rules_test.yml"
	deployDashboard        = "../deploy/grafana/pgrollup-dashboard.json"
)

// requirePrometheus fails (never skips) when Debian's prometheus package is
// missing: the dashboard and the rules are only proven against the real thing.
func requirePrometheus(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not on PATH: install the Debian package prometheus (bash scripts/deps.sh prometheus)", bin)
		}
	}
}

// promServer is a Prometheus started for one test.
type promServer struct {
	base string // http://127.0.0.1:port
	log  *syncBuffer
}

// startPrometheus runs Prometheus with deploy/prometheus/prometheus.yml,
// changed only where a test must: it scrapes target every second with the
// e2e admin token and evaluates deploy/prometheus/rules.yml every second.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	requirePrometheus(t)
	text, err := os.ReadFile(deployPrometheusConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(text, &cfg); err != nil {
		t.Fatalf("%s: %v", deployPrometheusConfig, err)
	}
	rules, err := filepath.Abs(deployRules)
	if err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []any{rules}
	job := pgrollupScrapeJob(t, cfg)
	job["static_configs"] = []any{map[string]any{"targets": []any{target}}}
	auth, _ := job["authorization"].(map[string]any)
	if auth == nil {
		t.Fatalf("%s: the pgrollup job has no authorization: it cannot scrape an admin listener with a token", deployPrometheusConfig)
	}
	auth["credentials"] = adminTok

	dir := t.TempDir()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{base: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &syncBuffer{}}
	cmd := exec.Command("prometheus",
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(p.log.Bytes(), 50))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", p.log.Bytes())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s:\n%s", p.log.Bytes())
		}
	}
}

// pgrollupScrapeJob finds the scrape job named pgrollup in a Prometheus config.
func pgrollupScrapeJob(t *testing.T, cfg map[string]any) map[string]any {
	t.Helper()
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		if m, ok := j.(map[string]any); ok && m["job_name"] == "pgrollup" {
			return m
		}
	}
	t.Fatalf("%s has no scrape job named pgrollup (the rules and the dashboard expect job=\"pgrollup\")", deployPrometheusConfig)
	return nil
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample %v: %v", s, err)
	}
	return v
}

// query runs an instant query; a Prometheus error fails the test.
func (p *promServer) query(t *testing.T, expr string) []promSample {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("query %s: %v\n%s", expr, err, body)
	}
	if r.Status != "success" {
		t.Fatalf("query %s: %s", expr, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			t.Fatal(err)
		}
		return []promSample{{Value: v}}
	}
	var out []promSample
	if err := json.Unmarshal(r.Data.Result, &out); err != nil {
		t.Fatalf("query %s: %v\n%s", expr, err, body)
	}
	return out
}

// waitFor polls an instant query until check accepts its result.
func (p *promServer) waitFor(t *testing.T, what, expr string, check func([]promSample) bool) []promSample {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := p.query(t, expr)
		if check(res) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v after 20s\ntargets: %s", what, expr, res, p.get(t, "/api/v1/targets"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *promServer) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitScraped waits until Prometheus holds the statement counts of a
// scrape of pgrollup's /metrics.
func waitScraped(t *testing.T, prom *promServer, metrics []byte) {
	t.Helper()
	for _, r := range []string{"rollup", "passthrough"} {
		want := mustMetric(t, metrics, "pgrollup_queries_total", map[string]string{"route": r})
		prom.waitFor(t, "a scrape after the workload", fmt.Sprintf(`pgrollup_queries_total{route=%q}`, r), func(res []promSample) bool {
			return len(res) == 1 && res[0].float(t) == want
		})
	}
}

// dashboardPanel is what the tests read of a Grafana panel.
type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) []dashboardPanel {
	t.Helper()
	text, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatalf("%s: %v", deployDashboard, err)
	}
	if len(d.Panels) == 0 {
		t.Fatalf("%s has no panels", deployDashboard)
	}
	return d.Panels
}

// instanceSelector is the series selector of the dashboard's instance
// variable, label_values(SELECTOR, instance).
func instanceSelector(t *testing.T) string {
	t.Helper()
	text, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct{ Name, Definition string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatalf("%s: %v", deployDashboard, err)
	}
	for _, v := range d.Templating.List {
		if v.Name != "instance" {
			continue
		}
		inner, ok := strings.CutPrefix(v.Definition, "label_values(")
		if i := strings.LastIndex(inner, ", instance)"); ok && i > 0 {
			return inner[:i]
		}
		t.Fatalf("the instance variable is %q, not label_values(SELECTOR, instance)", v.Definition)
	}
	t.Fatal("the dashboard has no instance variable")
	return ""
}

// grafanaExpr replaces the dashboard variables as Grafana would for a
// dashboard showing the last five minutes of every instance; a variable it
// does not know fails the test, so that no query escapes the check.
func grafanaExpr(t *testing.T, expr string) string {
	t.Helper()
	e := strings.NewReplacer(
		"$__rate_interval", "5m",
		"$__range", "5m",
		"$instance", ".*",
	).Replace(expr)
	if strings.Contains(e, "$") {
		t.Fatalf("dashboard expression with a variable the test does not know: %s", expr)
	}
	return e
}

func panelExpr(t *testing.T, panels []dashboardPanel, title string) string {
	t.Helper()
	for _, p := range panels {
		if p.Title == title && len(p.Targets) == 1 {
			return grafanaExpr(t, p.Targets[0].Expr)
		}
	}
	t.Fatalf("%s has no panel %q with one query", deployDashboard, title)
	return ""
}

// TestOpsPrometheus starts a real Prometheus with the deploy config and
// rules, scraping a pgrollup that serves a known workload of hits and
// misses, and checks that the dashboard's hit-rate expressions and the
// recorded hit rate return exactly hits / (hits + passthrough), that every
// dashboard query runs and finds its metric, and that every rule evaluates.
func TestOpsPrometheus(t *testing.T) {
	requirePrometheus(t)
	o := startOpsProxy(t, "prometheus")
	prom := startPrometheus(t, o.admin)
	ctx := testCtx(t, 60*time.Second)

	// A first scrape before the workload: the rates then cover all of it.
	prom.waitFor(t, "first scrape", `up{job="pgrollup"}`, func(r []promSample) bool {
		return len(r) == 1 && r[0].float(t) == 1
	})
	prom.waitFor(t, "first scrape", `pgrollup_queries_total{route="rollup"}`, func(r []promSample) bool { return len(r) == 1 })
	base := scrape(t, o.proxyProc)

	// The workload runs in rounds with a scrape after each: the series of a
	// rollup's hits and of a miss reason appear at their first increment,
	// and rate() needs two samples of them.
	conn := connect(t, ctx, o.DSN(userScram, dbMain))
	const rounds = 3
	for i := 0; i < rounds; i++ {
		for _, sql := range opsHits {
			queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol)
		}
		if i < len(opsMisses) {
			queryText(t, conn, opsMisses[i].sql, pgx.QueryExecModeSimpleProtocol)
		}
		if i == 0 {
			queryText(t, conn, opsOther, pgx.QueryExecModeSimpleProtocol)
		}
		waitScraped(t, prom, scrape(t, o.proxyProc))
	}
	hits := float64(rounds * len(opsHits))
	passthrough := float64(min(rounds, len(opsMisses)) + 1)
	after := scrape(t, o.proxyProc)
	for r, n := range map[string]float64{"rollup": hits, "passthrough": passthrough} {
		got := mustMetric(t, after, "pgrollup_queries_total", map[string]string{"route": r}) -
			mustMetric(t, base, "pgrollup_queries_total", map[string]string{"route": r})
		if got != n {
			t.Fatalf("pgrollup counted %v statements as %s, want %v", got, r, n)
		}
	}

	want := hits / (hits + passthrough)
	near := func(v float64) bool { return math.Abs(v-want) < 1e-9 }
	panels := loadDashboard(t)
	for _, title := range []string{"Hit rate", "Hit rate over the range"} {
		expr := panelExpr(t, panels, title)
		res := prom.query(t, expr)
		if len(res) != 1 || !near(res[0].float(t)) {
			t.Errorf("dashboard panel %q: %s = %v, want %v (%v hits, %v passthrough)", title, expr, res, want, hits, passthrough)
		}
	}
	prom.waitFor(t, "the recorded hit rate", `pgrollup:hit_rate:ratio_rate5m{job="pgrollup"}`, func(res []promSample) bool {
		return len(res) == 1 && near(res[0].float(t))
	})

	// The instance picker's selector is valid PromQL and finds the proxy.
	selector := instanceSelector(t)
	found := false
	for _, s := range prom.query(t, selector) {
		found = found || s.Metric["instance"] == o.admin
	}
	if !found {
		t.Errorf("the dashboard's instance variable (%s) does not list the proxy %s", selector, o.admin)
	}

	// Every dashboard query runs and finds data: a misspelt metric or label
	// would come back empty.
	for _, p := range panels {
		for _, target := range p.Targets {
			expr := grafanaExpr(t, target.Expr)
			if res := prom.query(t, expr); len(res) == 0 {
				t.Errorf("dashboard panel %q: %s returns nothing", p.Title, expr)
			}
		}
	}

	// Every rule evaluates without error against real pgrollup metrics.
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	time.Sleep(1500 * time.Millisecond) // one more evaluation round
	if err := json.Unmarshal([]byte(prom.get(t, "/api/v1/rules")), &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s/%s: health %q: %s", g.Name, r.Name, r.Health, r.LastError)
			}
		}
	}
	if n == 0 {
		t.Errorf("prometheus loaded no rules from %s", deployRules)
	}
}
