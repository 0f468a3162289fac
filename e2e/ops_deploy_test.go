package e2e

// There is no Docker engine where these tests run, so docker-compose.yml
// and the Dockerfile are held to what can be checked without one: the
// commands and flags they run are the binaries' real ones, every file they
// mount exists, the configs validate, the init SQL loads on a real Postgres
// and pgrollup builds its rollups there as the compose service account, and
// the values that must agree across files agree.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

const (
	composeFile   = "../docker-compose.yml"
	dockerfile    = "../Dockerfile"
	deployConfigs = "../deploy/pgrollup"
	initSQL       = "../deploy/postgres/init/01-shop.sql"
)

// TestDeployPrometheusFiles checks the rules and the Prometheus config with
// Prometheus's own tool, and runs the rules' unit tests.
func TestDeployPrometheusFiles(t *testing.T) {
	requirePrometheus(t)
	for _, args := range [][]string{
		{"check", "rules", deployRules},
		{"check", "config", deployPrometheusConfig},
		{"test", "rules", deployRulesTest},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDeployRefreshIntervals checks that the rules know every rollup of the
// compose config with its refresh interval: the staleness alert reads them.
func TestDeployRefreshIntervals(t *testing.T) {
	text, err := os.ReadFile(deployRules)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string            `yaml:"record"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(text, &rules); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]time.Duration{}
	vector := regexp.MustCompile(`^vector\((\d+)\)$`)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "pgrollup:rollup_refresh_interval_seconds" {
				continue
			}
			m := vector.FindStringSubmatch(strings.TrimSpace(r.Expr))
			if m == nil || r.Labels["rollup"] == "" {
				t.Fatalf("%s: refresh interval rule %q %v: want vector(SECONDS) with a rollup label", deployRules, r.Expr, r.Labels)
			}
			s, _ := strconv.Atoi(m[1])
			recorded[r.Labels["rollup"]] = time.Duration(s) * time.Second
		}
	}
	for _, file := range []string{"pgrollup.yaml", "pgrollup-s3.yaml"} {
		cfg := readYAML(t, filepath.Join(deployConfigs, file))
		rollups, _ := cfg["rollups"].([]any)
		if len(rollups) == 0 {
			t.Fatalf("%s has no rollups", file)
		}
		for _, r := range rollups {
			m := r.(map[string]any)
			name := fmt.Sprint(m["name"])
			every, _ := m["refresh"].(map[string]any)["every"].(string)
			d, err := time.ParseDuration(every)
			if err != nil {
				t.Errorf("%s: rollup %s: refresh.every %q: %v", file, name, every, err)
				continue
			}
			if recorded[name] != d {
				t.Errorf("%s: rollup %s is refreshed every %s; %s records %s", deployRules, name, d, file, recorded[name])
			}
		}
		if len(recorded) != len(rollups) {
			t.Errorf("%s records %d refresh intervals for the %d rollups of %s", deployRules, len(recorded), len(rollups), file)
		}
	}
}

// TestDeployDashboard checks the dashboard's shape; TestOpsPrometheus runs its queries.
func TestDeployDashboard(t *testing.T) {
	text, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name, Type, Definition string
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatalf("%s: %v", deployDashboard, err)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid: links to it would break on every import")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		// The instance picker lists proxies and workers alike: the build
		// panels are about the workers.
		if v.Name == "instance" && (!strings.Contains(v.Definition, "pgrollup_queries_total") || !strings.Contains(v.Definition, "pgrollup_worker_cache_bytes")) {
			t.Errorf("the instance variable %q does not list both proxies (pgrollup_queries_total) and workers (pgrollup_worker_cache_bytes)", v.Definition)
		}
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("template variables %v: want datasource (a Prometheus picker) and instance", vars)
	}
	all := ""
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q uses datasource %q, not the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query uses datasource %q", p.Title, tg.Datasource.UID)
			}
			all += tg.Expr + "\n"
		}
	}
	// What the dashboard must show, by the metric that shows it.
	for what, metric := range map[string]string{
		"hit rate":                  `pgrollup_queries_total{route="rollup"`,
		"hits per rollup":           "pgrollup_rollup_hits_total",
		"misses by reason":          "pgrollup_rollup_misses_total",
		"latency by route":          "pgrollup_query_duration_seconds_bucket",
		"build durations":           "pgrollup_build_duration_seconds_sum",
		"build failures":            `pgrollup_builds_total{result="error"`,
		"rollup age":                "pgrollup_rollup_age_seconds",
		"fallbacks":                 "pgrollup_rollup_fallbacks_total",
		"client connections":        "pgrollup_client_connections",
		"rollup sizes":              "pgrollup_rollup_bytes",
		"latency percentiles (p99)": "histogram_quantile(0.99",
	} {
		if !strings.Contains(all, metric) {
			t.Errorf("the dashboard does not show %s (%s)", what, metric)
		}
	}
}

// composeService is what the tests read of a service.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// TestDeployCompose checks docker-compose.yml against the binaries, the
// files it mounts and the configs it runs.
func TestDeployCompose(t *testing.T) {
	text, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(text, &compose); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for _, name := range []string{"postgres", "nats", "minio", "minio-init", "pgrollup", "worker-1", "worker-2", "prometheus"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("%s has no service %s", composeFile, name)
		}
	}
	for _, name := range []string{"postgres", "nats", "minio", "pgrollup", "worker-1", "worker-2", "prometheus"} {
		if s := compose.Services[name]; s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}

	flags := map[string]map[string]string{
		"pgrollup serve":  binaryFlags(t, env.bin, "serve", "--help"),
		"pgrollup-worker": binaryFlags(t, buildWorker(t), "--help"),
	}
	dockerfileText, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, built := range []string{"-o /out/pgrollup ./cmd/proxy", "-o /out/pgrollup-worker ./cmd/worker", "/out/pgrollup /out/pgrollup-worker /usr/local/bin/"} {
		if !strings.Contains(string(dockerfileText), built) {
			t.Errorf("%s does not contain %q: the commands in %s would not find their binary", dockerfile, built, composeFile)
		}
	}

	var proxies int
	var proxyFlags map[string]string
	workerFlags := map[string]map[string]string{} // by service
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			} else if _, ok := compose.Volumes[src]; !ok {
				t.Errorf("service %s mounts the volume %s, which is not declared", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			}
		}
		if len(s.Command) == 0 || (s.Command[0] != "pgrollup" && s.Command[0] != "pgrollup-worker") {
			continue
		}
		if s.Build == nil {
			t.Errorf("service %s runs %s but does not build the image", name, s.Command[0])
		}
		key, args := s.Command[0], s.Command[1:]
		if key == "pgrollup" {
			if len(args) == 0 || args[0] != "serve" {
				t.Errorf("service %s: %v: want pgrollup serve", name, s.Command)
				continue
			}
			key, args = "pgrollup serve", args[1:]
			proxies++
		}
		values := checkFlags(t, name, flags[key], args)
		if key == "pgrollup serve" {
			proxyFlags = values
		} else {
			workerFlags[name] = values
		}
		cfgArg := values["config"]
		if cfgArg == "" {
			t.Errorf("service %s: %v has no --config", name, s.Command)
			continue
		}
		// The command chooses the config with ${PGROLLUP_CONFIG:-pgrollup.yaml}.
		for _, choice := range []string{"pgrollup.yaml", "pgrollup-s3.yaml"} {
			inContainer := strings.ReplaceAll(cfgArg, "${PGROLLUP_CONFIG:-pgrollup.yaml}", choice)
			host := hostPath(t, name, s.Volumes, inContainer)
			out, errOut, code := runPgrollupEnv(t, envList(s.Environment), "validate", "--config", host)
			if code != 0 {
				t.Errorf("service %s: pgrollup validate --config %s: exit %d\n%s%s", name, host, code, out, errOut)
			}
		}
	}
	if proxies != 1 {
		t.Errorf("%d services run pgrollup serve, want 1", proxies)
	}

	// What must agree across files.
	proxy := compose.Services["pgrollup"]
	cfg := readYAML(t, filepath.Join(deployConfigs, "pgrollup.yaml"))
	listenPort := portOf(t, fmt.Sprint(cfg["listen"]))
	adminPort := portOf(t, fmt.Sprint(cfg["admin"].(map[string]any)["listen"]))
	for _, p := range []string{listenPort, adminPort} {
		if !slices.ContainsFunc(proxy.Ports, func(s string) bool { return strings.HasSuffix(s, ":"+p) }) {
			t.Errorf("service pgrollup publishes %v, not the config's port %s", proxy.Ports, p)
		}
	}
	if hc := strings.Join(proxy.Healthcheck.Test, " "); !strings.Contains(hc, "/"+adminPort) || !strings.Contains(hc, "/readyz") {
		t.Errorf("the pgrollup health check %q does not ask /readyz on the admin port %s", hc, adminPort)
	}
	prom := readYAML(t, deployPrometheusConfig)
	job := pgrollupScrapeJob(t, prom)
	if got := job["authorization"].(map[string]any)["credentials"]; got != proxy.Environment["PGROLLUP_ADMIN_TOKEN"] {
		t.Errorf("prometheus.yml scrapes with token %q, pgrollup's is %q", got, proxy.Environment["PGROLLUP_ADMIN_TOKEN"])
	}
	targets := fmt.Sprint(job["static_configs"])
	if !strings.Contains(targets, "pgrollup:"+adminPort) {
		t.Errorf("prometheus.yml scrapes %s, not pgrollup:%s", targets, adminPort)
	}
	if !slices.Contains(compose.Services["prometheus"].Volumes, "./deploy/prometheus:/etc/prometheus:ro") {
		t.Errorf("the prometheus service does not mount deploy/prometheus at /etc/prometheus: %v", compose.Services["prometheus"].Volumes)
	}
	// The workers' admin listeners: probed by their health checks and
	// scraped by Prometheus's pgrollup-worker job with their token.
	workerJob := scrapeJobNamed(t, prom, "pgrollup-worker")
	workerTargets := fmt.Sprint(workerJob["static_configs"])
	for name, values := range workerFlags {
		port := adminPort // admin.listen of the config they share with the proxy
		if addr, ok := values["admin-listen"]; ok {
			if addr == "" {
				t.Errorf("service %s runs without an admin listener: nothing can probe or scrape it", name)
				continue
			}
			port = portOf(t, addr)
		}
		s := compose.Services[name]
		if s.Healthcheck != nil {
			if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, "/"+port) || !strings.Contains(hc, "/readyz") {
				t.Errorf("the %s health check %q does not ask /readyz on its admin port %s", name, hc, port)
			}
		}
		if !strings.Contains(workerTargets, name+":"+port) {
			t.Errorf("prometheus.yml's pgrollup-worker job scrapes %s, not %s:%s", workerTargets, name, port)
		}
		if got := workerJob["authorization"].(map[string]any)["credentials"]; got != s.Environment["PGROLLUP_ADMIN_TOKEN"] {
			t.Errorf("prometheus.yml scrapes the workers with token %q, %s's is %q", got, name, s.Environment["PGROLLUP_ADMIN_TOKEN"])
		}
	}
	// A proxy that takes no build job needs workers on a shared NATS.
	if proxyFlags["build-worker"] == "false" {
		if len(workerFlags) == 0 {
			t.Error("pgrollup runs with --build-worker=false and no service runs pgrollup-worker: nothing would build")
		}
		for _, file := range []string{"pgrollup.yaml", "pgrollup-s3.yaml"} {
			c := readYAML(t, filepath.Join(deployConfigs, file))
			if url, _ := c["nats"].(map[string]any)["url"].(string); url == "" && proxy.Environment["PGROLLUP_NATS_URL"] == "" {
				t.Errorf("%s has no nats.url: with --build-worker=false no worker could reach the embedded server", file)
			}
		}
	}
	nats := strings.Join(compose.Services["nats"].Command, " ")
	if !strings.Contains(nats, "--jetstream") {
		t.Errorf("nats runs %q, without JetStream", nats)
	}
}

// TestDeployInitSQL loads deploy/postgres/init/01-shop.sql with psql, as the
// Postgres image's entrypoint does (with fewer orders), then runs pgrollup
// with the compose config on it, as compose's service account, and checks
// that every rollup builds and answers.
func TestDeployInitSQL(t *testing.T) {
	requireTool(t, "psql")
	ctx := testCtx(t, 90*time.Second)
	const db = "ops_compose_shop"
	super := superConn(t, ctx, "postgres")
	cleanup := func() {
		for _, sql := range []string{"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)", "DROP ROLE IF EXISTS pgrollup", "DROP ROLE IF EXISTS demo"} {
			if _, err := super.Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	}
	cleanup()
	t.Cleanup(cleanup)
	if _, err := super.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(initSQL)
	if err != nil {
		t.Fatal(err)
	}
	small := strings.Replace(string(text), "generate_series(1, 5000000)", "generate_series(1, 20000)", 1)
	if small == string(text) {
		t.Fatalf("%s: no generate_series(1, 5000000) to shrink for the test", initSQL)
	}
	small = strings.ReplaceAll(small, "ON DATABASE shop", "ON DATABASE "+db)
	file := filepath.Join(t.TempDir(), "01-shop.sql")
	if err := os.WriteFile(file, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	// The entrypoint's own invocation: psql -v ON_ERROR_STOP=1 --no-psqlrc -f FILE.
	cmd := exec.CommandContext(ctx, "psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "-f", file, env.pg.DSN(db))
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql -f %s: %v\n%s", initSQL, err, out)
	}

	// pgrollup with the compose config, changed only in what a test process
	// must change: addresses, local directories, and no external NATS.
	cfg := readYAML(t, filepath.Join(deployConfigs, "pgrollup.yaml"))
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg["listen"] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg["admin"] = map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)), "token": adminTok}
	cfg["nats"] = map[string]any{"url": ""}
	cfg["data_dir"] = filepath.Join(dir, "data")
	cfg["storage"] = map[string]any{"url": "file://" + filepath.Join(dir, "rollups")}
	cfg["worker"].(map[string]any)["cache_dir"] = filepath.Join(dir, "cache")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	// The compose service account, with the password the init SQL gives it.
	serviceDSN := dsn(env.pg.Host, env.pg.Port, "pgrollup", "pgrollup", db, "disable")
	p := &opsProc{proxyProc: &proxyProc{
		name: "compose-config", host: "127.0.0.1", port: port,
		admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		log:   &syncBuffer{}, exited: make(chan struct{}),
	}, cfgFile: cfgFile, dir: dir}
	p.cmd = exec.Command(env.bin, "serve", "--config", cfgFile)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = cleanEnv("PGROLLUP_WAREHOUSE_DSN=" + serviceDSN)
	p.cmd.SysProcAttr = dieWithParent()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("pgrollup did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("pgrollup log:\n%s", tail(p.log.Bytes(), 100))
		}
	})
	for {
		if code, _, err := p.adminGet("/readyz"); err == nil && code == 200 {
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("pgrollup exited: %v\n%s", p.err, p.log.Bytes())
		case <-ctx.Done():
			t.Fatalf("pgrollup not ready\n%s", p.log.Bytes())
		case <-time.After(50 * time.Millisecond):
		}
	}
	rollups := cfg["rollups"].([]any)
	for {
		list := p.rollups(t)
		active := 0
		for _, r := range list {
			if r.Status == "failed" {
				t.Fatalf("rollup %s failed to build as the compose service account: %s", r.Name, deref(r.LastError))
			}
			if r.Status == "active" && r.Rows > 0 {
				active++
			}
		}
		if active == len(rollups) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rollups not built: %+v", list)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// The demo user reads through pgrollup, from a rollup, and gets what
	// Postgres gives it directly.
	// Over TLS only, with the certificate pgrollup made itself: a BI tool
	// in another container is not on loopback, and the compose config
	// never asks for a password in clear.
	if c, err := pgx.Connect(ctx, dsn("127.0.0.1", port, "demo", "demo", db, "disable")); err == nil {
		c.Close(ctx)
		t.Fatal("the compose config asked for a password without TLS")
	}
	demo := connect(t, ctx, dsn("127.0.0.1", port, "demo", "demo", db, "require"))
	direct := connect(t, ctx, dsn(env.pg.Host, env.pg.Port, "demo", "demo", db, "disable"))
	const sql = "SELECT status, count(*), sum(amount) FROM orders GROUP BY status ORDER BY status"
	var route, reason string
	deadline := time.Now().Add(10 * time.Second)
	for {
		route, reason = explainRoute(t, demo, sql)
		if route == "chosen" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if route != "chosen" {
		t.Errorf("EXPLAIN (ROLLUP) as demo: %s: %s", route, reason)
	}
	if got, want := queryText(t, demo, sql, pgx.QueryExecModeSimpleProtocol), queryText(t, direct, sql, pgx.QueryExecModeSimpleProtocol); got != want {
		t.Errorf("through pgrollup:\n%s\nPostgres:\n%s", got, want)
	}
}

// scrapeJobNamed finds a scrape job by name in a Prometheus config.
func scrapeJobNamed(t *testing.T, cfg map[string]any, name string) map[string]any {
	t.Helper()
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		if m, ok := j.(map[string]any); ok && m["job_name"] == name {
			return m
		}
	}
	t.Fatalf("%s has no scrape job named %s", deployPrometheusConfig, name)
	return nil
}

// explainRoute returns "chosen" when EXPLAIN (ROLLUP) chooses a rollup for
// sql, else the first row's decision and reason.
func explainRoute(t *testing.T, conn *pgx.Conn, sql string) (decision, reason string) {
	t.Helper()
	rows, err := conn.Query(testCtx(t, 10*time.Second), "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, sqlText *string
		var d, r string
		if err := rows.Scan(&name, &d, &r, &sqlText); err != nil {
			t.Fatal(err)
		}
		if d == "chosen" {
			return d, r
		}
		if decision == "" {
			decision, reason = d, r
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	return decision, reason
}

// binaryFlags runs a binary with --help and returns its flags, each with
// the type its usage names ("" for a boolean).
func binaryFlags(t *testing.T, bin string, args ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	out, _ := cmd.CombinedOutput() // flag's -help exits 2
	flags := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)(?: (\w+))?`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = m[2]
	}
	if len(flags) == 0 {
		t.Fatalf("%s %s printed no flags:\n%s", bin, strings.Join(args, " "), out)
	}
	return flags
}

// checkFlags checks a command line against a flag set, as package flag
// would parse it, and returns the flags' values.
func checkFlags(t *testing.T, service string, flags map[string]string, args []string) map[string]string {
	t.Helper()
	values := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("service %s: argument %q after the flags", service, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		typ, ok := flags[name]
		if !ok {
			t.Errorf("service %s: flag %s is not one of the binary's (%v)", service, a, flags)
			continue
		}
		if typ != "" && !hasValue {
			if i+1 >= len(args) {
				t.Errorf("service %s: flag %s needs a value", service, a)
				continue
			}
			i++
			value = args[i]
		}
		if typ == "duration" {
			if _, err := time.ParseDuration(value); err != nil {
				t.Errorf("service %s: %s %s: %v", service, a, value, err)
			}
		}
		values[name] = value
	}
	return values
}

// hostPath maps a path inside a container to the file in this repository
// that the service's bind mounts put there.
func hostPath(t *testing.T, service string, volumes []string, inContainer string) string {
	t.Helper()
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		if rest, ok := strings.CutPrefix(inContainer, parts[1]); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
			p := filepath.Join("..", parts[0], rest)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("service %s: %s is %s here, which does not exist", service, inContainer, p)
			}
			return p
		}
	}
	t.Fatalf("service %s: no bind mount provides %s", service, inContainer)
	return ""
}

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(text, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return port
}
