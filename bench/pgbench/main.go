// Command pgrollup-bench is what `make bench` runs: it measures the cost of
// pgrollup's passthrough path against connecting to PostgreSQL directly and
// through PgBouncer.
//
// It starts a throw-away PostgreSQL cluster, fills it with `pgbench -i -s SCALE`,
// starts PgBouncer (session pooling, SCRAM) and pgrollup in front of it, then runs
// `pgbench -S` (the built-in select-only script) for each client count against
// each of the three targets, and prints tps, average latency and the ratios
// pgrollup/direct and pgrollup/pgbouncer. It is a benchmark, not a test: the
// figures depend on the machine and on whatever else runs on it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgbouncer"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

const (
	benchUser     = "bench"
	benchPassword = "bench"
	benchDB       = "bench"
)

type options struct {
	pgrollup  string
	pgbouncer string
	duration  time.Duration
	scale     int
	clients   []int
	targets   []string
	protocol  string
	rounds    int
	keep      bool

	loadBefore string // load average when the runs started
}

func main() {
	var o options
	var clients, targets string
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.StringVar(&o.pgbouncer, "pgbouncer", "", "the pgbouncer binary (default: from PATH, else /usr/sbin/pgbouncer)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each pgbench run lasts (whole seconds)")
	flag.IntVar(&o.scale, "scale", 10, "pgbench scale factor (100,000 pgbench_accounts rows each)")
	flag.StringVar(&clients, "clients", "1,16,64", "comma-separated client counts")
	flag.StringVar(&targets, "targets", "direct,pgbouncer,pgrollup", "comma-separated targets to measure")
	flag.StringVar(&o.protocol, "protocol", "simple", "pgbench query protocol: simple, extended or prepared")
	flag.IntVar(&o.rounds, "rounds", 1, "repeat every run this many times (interleaved) and report the median")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs and logs) after the run")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalUsage("unexpected arguments %q", flag.Args())
	}
	var err error
	if o.clients, err = parseInts(clients); err != nil {
		fatalUsage("-clients: %v", err)
	}
	for _, t := range strings.Split(targets, ",") {
		t = strings.TrimSpace(t)
		switch t {
		case "direct", "pgbouncer", "pgrollup":
			o.targets = append(o.targets, t)
		default:
			fatalUsage("-targets: unknown target %q (direct, pgbouncer, pgrollup)", t)
		}
	}
	if o.duration < time.Second {
		fatalUsage("-duration must be at least 1s")
	}
	if o.rounds < 1 {
		fatalUsage("-rounds must be at least 1")
	}
	if o.scale < 1 {
		fatalUsage("-scale must be at least 1")
	}
	switch o.protocol {
	case "simple", "extended", "prepared":
	default:
		fatalUsage("-protocol must be simple, extended or prepared")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		os.Exit(1)
	}
}

func fatalUsage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(2)
}

// target is one place pgbench connects to.
type target struct {
	name string
	host string
	port int
}

// result is one pgbench run.
type result struct {
	clients   int
	target    string
	tps       float64
	latencyMS float64
	failed    int64
	err       error
}

func run(ctx context.Context, o options) (err error) {
	needs := map[string]bool{}
	for _, t := range o.targets {
		needs[t] = true
	}
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		return fmt.Errorf("pgbench not found (Debian: apt-get install postgresql, or run scripts/deps.sh): %w", err)
	}
	var bouncerBin, rollupBin string
	if needs["pgbouncer"] {
		if bouncerBin, err = pgbouncer.Find(o.pgbouncer); err != nil {
			return fmt.Errorf("%w; -targets direct,pgrollup skips it", err)
		}
	}
	if needs["pgrollup"] {
		if rollupBin, err = filepath.Abs(o.pgrollup); err != nil {
			return err
		}
		if _, err := os.Stat(rollupBin); err != nil {
			return fmt.Errorf("pgrollup binary: %w (run `make build`, or use `make bench`)", err)
		}
	}

	tmp, err := os.MkdirTemp("", "pgrollup-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Printf("Kept %s (configs and logs)\n", tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()

	fmt.Printf("pgrollup bench: pgbench -S (select only), %ss per run, scale %d, clients %v, protocol %s, %d round(s); %d CPUs, load average %s\n",
		secondsArg(o.duration), o.scale, o.clients, o.protocol, o.rounds, runtime.NumCPU(), loadAverage())

	step("Starting a throw-away PostgreSQL cluster")
	maxClients := 0
	for _, n := range o.clients {
		maxClients = max(maxClients, n)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		Config: map[string]string{
			// Direct, PgBouncer's idle server connections and pgrollup's at once, plus slack.
			"max_connections": strconv.Itoa(3*maxClients + 20),
			"shared_buffers":  "256MB",
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := cluster.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	version, err := setUp(ctx, cluster)
	if err != nil {
		return err
	}
	done("%s on %s:%d", version, cluster.Host, cluster.Port)

	step(fmt.Sprintf("pgbench -i -s %d", o.scale))
	t0 := time.Now()
	initCmd := exec.CommandContext(ctx, pgbench, "-i", "-q", "-s", strconv.Itoa(o.scale),
		"-h", cluster.Host, "-p", strconv.Itoa(cluster.Port), "-U", benchUser, benchDB)
	initCmd.Env = pgEnv()
	if out, err := initCmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	done("%d rows in pgbench_accounts (%s)", o.scale*100000, since(t0))

	targets := map[string]target{"direct": {"direct", cluster.Host, cluster.Port}}
	if needs["pgbouncer"] {
		step("Starting PgBouncer (session pooling)")
		port, err := proc.FreePort()
		if err != nil {
			return err
		}
		p, err := startPgbouncer(ctx, bouncerBin, filepath.Join(tmp, "pgbouncer"), cluster, port, maxClients)
		if err != nil {
			return err
		}
		defer p.Stop(10 * time.Second)
		targets["pgbouncer"] = target{"pgbouncer", "127.0.0.1", port}
		done("%s on 127.0.0.1:%d", firstLine(versionOf(bouncerBin, "-V")), port)
	}
	if needs["pgrollup"] {
		step("Starting pgrollup")
		port, err := proc.FreePort()
		if err != nil {
			return err
		}
		adminPort, err := proc.FreePort()
		if err != nil {
			return err
		}
		p, err := startPgrollup(ctx, rollupBin, filepath.Join(tmp, "pgrollup"), cluster, port, adminPort)
		if err != nil {
			return err
		}
		defer p.Stop(15 * time.Second)
		targets["pgrollup"] = target{"pgrollup", "127.0.0.1", port}
		done("pgrollup on 127.0.0.1:%d (admin 127.0.0.1:%d)", port, adminPort)
	}

	secs := secondsArg(o.duration)
	fmt.Printf("\nEach run: %s -n -S -M %s -T %s -c N -j min(N,2) -h HOST -p PORT -U %s %s\n\n",
		pgbench, o.protocol, secs, benchUser, benchDB)
	o.loadBefore = loadAverage()
	var results []result
	total := o.rounds * len(o.clients) * len(o.targets)
	for round := 1; round <= o.rounds; round++ {
		for _, n := range o.clients {
			for _, name := range o.targets {
				t := targets[name]
				args := []string{"-n", "-S", "-M", o.protocol, "-T", secs, "-c", strconv.Itoa(n), "-j", strconv.Itoa(min(n, 2)),
					"-h", t.host, "-p", strconv.Itoa(t.port), "-U", benchUser, benchDB}
				fmt.Printf("[%d/%d] pgbench %s\n", len(results)+1, total, strings.Join(args, " "))
				r := runPgbench(ctx, pgbench, args)
				r.clients, r.target = n, name
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if r.err != nil {
					fmt.Printf("      %s: %v\n", name, r.err)
				} else {
					fmt.Printf("      %s: %.0f tps, %.3f ms average latency\n", name, r.tps, r.latencyMS)
				}
				results = append(results, r)
			}
		}
	}
	printResults(os.Stdout, results, o)
	for _, r := range results {
		if r.err != nil {
			return errors.New("some runs failed (see above)")
		}
	}
	return nil
}

// setUp creates the bench role and database and returns the server version.
func setUp(ctx context.Context, cluster *pgcluster.Cluster) (string, error) {
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`CREATE ROLE ` + benchUser + ` LOGIN PASSWORD '` + benchPassword + `'`,
		`CREATE DATABASE ` + benchDB + ` OWNER ` + benchUser,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("%s: %w", sql, err)
		}
	}
	var version string
	if err := conn.QueryRow(ctx, `SELECT 'PostgreSQL ' || current_setting('server_version')`).Scan(&version); err != nil {
		return "", err
	}
	return version, nil
}

// pgEnv is the environment for pgbench: the password, and nothing from the
// caller's PG* variables that could redirect it.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGPASSWORD="+benchPassword, "PGSSLMODE=disable", "PGAPPNAME=pgrollup-bench")
}

var (
	tpsRE     = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	latencyRE = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	failedRE  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

func runPgbench(ctx context.Context, pgbench string, args []string) result {
	cmd := exec.CommandContext(ctx, pgbench, args...)
	cmd.Env = pgEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	text := out.String()
	if err != nil {
		return result{err: fmt.Errorf("%w\n%s", err, indent(text))}
	}
	var r result
	tps := tpsRE.FindStringSubmatch(text)
	lat := latencyRE.FindStringSubmatch(text)
	if tps == nil || lat == nil {
		return result{err: fmt.Errorf("cannot read tps and latency from pgbench's output:\n%s", indent(text))}
	}
	r.tps, _ = strconv.ParseFloat(tps[1], 64)
	r.latencyMS, _ = strconv.ParseFloat(lat[1], 64)
	if m := failedRE.FindStringSubmatch(text); m != nil {
		r.failed, _ = strconv.ParseInt(m[1], 10, 64)
		if r.failed > 0 {
			r.err = fmt.Errorf("%d failed transactions\n%s", r.failed, indent(text))
		}
	}
	return r
}

// printResults prints one row per client count and target (the median run by
// tps when there are several rounds) and the tps ratios.
func printResults(w io.Writer, results []result, o options) {
	fmt.Fprintf(w, "\nResults: pgbench -S -M %s, %ss per run, scale %d", o.protocol, secondsArg(o.duration), o.scale)
	if o.rounds > 1 {
		fmt.Fprintf(w, ", median of %d rounds", o.rounds)
	}
	fmt.Fprintf(w, ", load average before the runs %s\n\n", o.loadBefore)
	const row = "%7s  %-9s  %10s  %14s  %6s\n"
	fmt.Fprintf(w, row, "clients", "target", "tps", "avg latency ms", "failed")
	cells := map[string]result{}
	for _, n := range o.clients {
		for _, name := range o.targets {
			r := median(results, n, name)
			cells[fmt.Sprint(n, name)] = r
			if r.err != nil && r.failed == 0 {
				fmt.Fprintf(w, row, strconv.Itoa(n), name, "error", "-", "-")
				continue
			}
			fmt.Fprintf(w, row, strconv.Itoa(n), name,
				fmt.Sprintf("%.0f", r.tps), fmt.Sprintf("%.3f", r.latencyMS), strconv.FormatInt(r.failed, 10))
		}
	}

	ratio := func(n int, a, b string) string {
		ra, okA := cells[fmt.Sprint(n, a)]
		rb, okB := cells[fmt.Sprint(n, b)]
		if !okA || !okB || ra.err != nil || rb.err != nil || rb.tps == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", ra.tps/rb.tps)
	}
	fmt.Fprintf(w, "\nThroughput ratios (tps; above 1.00 means pgrollup is faster):\n\n")
	const ratioRow = "%7s  %15s  %18s\n"
	fmt.Fprintf(w, ratioRow, "clients", "pgrollup/direct", "pgrollup/pgbouncer")
	for _, n := range o.clients {
		fmt.Fprintf(w, ratioRow, strconv.Itoa(n), ratio(n, "pgrollup", "direct"), ratio(n, "pgrollup", "pgbouncer"))
	}
}

// median returns the run with the median tps among the rounds for one cell; a
// failed round makes the whole cell failed.
func median(results []result, clients int, target string) result {
	var runs []result
	for _, r := range results {
		if r.clients != clients || r.target != target {
			continue
		}
		if r.err != nil {
			return r
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return result{clients: clients, target: target, err: errors.New("not run")}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].tps < runs[j].tps })
	return runs[len(runs)/2]
}

// loadAverage is the 1, 5 and 15 minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// waitConnect polls until a bench session through p on port answers SELECT 1.
func waitConnect(ctx context.Context, p *proc.Process, port int, limit time.Duration) error {
	url := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", benchUser, benchPassword, port, benchDB)
	deadline := time.Now().Add(limit)
	for {
		err := ping(ctx, url)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Exited:
			return p.Failed(err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.Failed(fmt.Errorf("%s: no working connection after %s: %w", p.Name, limit, err))
		}
	}
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// startPgbouncer runs PgBouncer in session mode with its own ini in dir. PgBouncer
// refuses to run as root, so as root it runs as the postgres OS user.
func startPgbouncer(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster, port, maxClients int) (*proc.Process, error) {
	cmd, err := pgbouncer.Command(pgbouncer.Options{
		Bin: bin, Dir: dir, Writer: "pgrollup-bench",
		Host: cluster.Host, ServerPort: cluster.Port, Database: benchDB,
		User: benchUser, Password: benchPassword, Port: port, MaxClients: maxClients,
	})
	if err != nil {
		return nil, err
	}
	p, err := proc.Start("pgbouncer", filepath.Join(dir, "pgbouncer.log"), cmd)
	if err != nil {
		return nil, err
	}
	if err := waitConnect(ctx, p, port, 15*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// startPgrollup runs `pgrollup serve` with a generated config in dir.
func startPgrollup(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster, port, adminPort int) (*proc.Process, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	q := strconv.Quote
	dataDir := filepath.Join(dir, "data")
	cfg := `# written by pgrollup-bench
listen: ` + q(fmt.Sprintf("127.0.0.1:%d", port)) + `
warehouse:
  dsn: ` + q(cluster.DSN(benchDB)) + `
data_dir: ` + q(dataDir) + `
storage:
  url: ` + q("file://"+filepath.Join(dataDir, "rollups")) + `
worker:
  cache_dir: ` + q(filepath.Join(dataDir, "cache")) + `
auth:
  cleartext_without_tls: loopback
admin:
  listen: ` + q(fmt.Sprintf("127.0.0.1:%d", adminPort)) + `
`
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = proc.CleanEnv()
	p, err := proc.Start("pgrollup", filepath.Join(dir, "pgrollup.log"), cmd)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort), 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	if err := waitConnect(ctx, p, port, 15*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

func waitHTTP(ctx context.Context, p *proc.Process, url string, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Exited:
			return p.Failed(err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.Failed(fmt.Errorf("%s not ready after %s (GET %s: %v)", p.Name, limit, url, err))
		}
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// secondsArg is pgbench's -T value: whole seconds, rounded up.
func secondsArg(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

func versionOf(bin string, arg string) string {
	out, err := exec.Command(bin, arg).Output()
	if err != nil {
		return filepath.Base(bin)
	}
	return strings.TrimSpace(string(out))
}

func step(msg string) { fmt.Printf("==> %s\n", msg) }

func done(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
