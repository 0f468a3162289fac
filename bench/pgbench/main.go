// Command pgrollup-bench is what `make bench` runs: it measures the cost of
// pgrollup's passthrough path against connecting to PostgreSQL directly and
// through PgBouncer.
//
// It starts a throw-away PostgreSQL cluster, fills it with `pgbench -i -s SCALE`,
// starts PgBouncer (session pooling, SCRAM) and pgrollup in front of it, then runs
// `pgbench -S` (the built-in select-only script) for each client count and
// protocol against each of the three targets, as interleaved rounds. Each run
// writes pgbench's per-transaction log (latency percentiles, latency.go) while
// the proxy's and the machine's CPU counters are sampled (CPU per
// transaction, cpu.go, measure.go). It ends with Markdown tables of the
// medians and issue 17's goal, PASS or MISS per cell with the round-by-round
// ratios beside it (report.go). It is a
// benchmark, not a test: the figures depend on the machine and on whatever
// else runs on it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/pgbouncer"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/sched"
)

const (
	benchUser     = "bench"
	benchPassword = "bench"
	benchDB       = "bench"
)

type options struct {
	pgrollup  string
	pgbouncer string
	relay     string
	duration  time.Duration
	scale     int
	clients   []int
	targets   []string
	protocols []string
	rounds    int
	keep      bool
	pprof     bool // serve Go's profiles on each pgrollup's admin listener
	rows      int  // 0: pgbench -S; else a script reading this many rows per transaction
}

func main() {
	var o options
	var clients, targets, protocols string
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.StringVar(&o.pgbouncer, "pgbouncer", "", "the pgbouncer binary (default: from PATH, else /usr/sbin/pgbouncer)")
	flag.StringVar(&o.relay, "relay", "bin/pgrollup-relay", "the relay binary for the relay-* targets (go build -o bin/pgrollup-relay ./bench/relay)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each pgbench run lasts (whole seconds)")
	flag.IntVar(&o.scale, "scale", 10, "pgbench scale factor (100,000 pgbench_accounts rows each)")
	flag.StringVar(&clients, "clients", "1,16,64", "comma-separated client counts")
	flag.StringVar(&targets, "targets", "direct,pgbouncer,pgbouncer-batch,pgrollup,pgrollup-goroutines", "comma-separated targets to measure: direct, pgbouncer, pgrollup, pgrollup-goroutines (pgrollup with event_loop: false), pgrollup-normal (pgrollup with sched_policy: normal), pgrollup-goroutines-normal (both), pgrollup-1p (pgrollup with GOMAXPROCS=1), pgbouncer-batch (PgBouncer run as SCHED_BATCH, as pgrollup runs by default), pgbouncer-cold (server connections closed between runs), and bare relays (bench/relay) "+strings.Join(relayTargetNames(), ", "))
	flag.StringVar(&protocols, "protocol", "simple,prepared", "comma-separated pgbench query protocols: simple, extended, prepared")
	flag.IntVar(&o.rounds, "rounds", 3, "repeat every run this many times (interleaved) and report the medians")
	flag.IntVar(&o.rows, "rows", 0, "instead of pgbench -S, a script that reads this many consecutive pgbench_accounts rows per transaction (a BI tool's page of rows)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs and logs) after the run")
	flag.BoolVar(&o.pprof, "pprof", false, "serve Go's runtime profiles on each pgrollup target's admin listener, under /debug/pprof/ (scripts/pgo.sh)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalUsage("unexpected arguments %q", flag.Args())
	}
	var err error
	if o.clients, err = benchkit.ParseInts(clients); err != nil {
		fatalUsage("-clients: %v", err)
	}
	if o.targets, err = parseList(targets, append(append([]string{"direct", "pgbouncer", "pgbouncer-batch", "pgbouncer-cold"}, pgrollupTargets...), relayTargetNames()...)...); err != nil {
		fatalUsage("-targets: %v", err)
	}
	if o.protocols, err = parseList(protocols, "simple", "extended", "prepared"); err != nil {
		fatalUsage("-protocol: %v", err)
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

	benchkit.Main("bench", func(ctx context.Context) error { return run(ctx, o) })
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
	pid  int // the proxy's process, 0 for direct
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
	var bouncerBin, rollupBin, relayBin string
	if needs["pgbouncer"] || needs["pgbouncer-batch"] || needs["pgbouncer-cold"] {
		if bouncerBin, err = pgbouncer.Find(o.pgbouncer); err != nil {
			return fmt.Errorf("%w; -targets direct,pgrollup skips it", err)
		}
	}
	if slices.ContainsFunc(pgrollupTargets, func(name string) bool { return needs[name] }) {
		if rollupBin, err = benchkit.PgrollupBinary(o.pgrollup, "bench"); err != nil {
			return err
		}
	}

	for _, name := range o.targets {
		if _, ok := relayTargets[name]; ok && relayBin == "" {
			if relayBin, err = filepath.Abs(o.relay); err != nil {
				return err
			}
			if _, err := os.Stat(relayBin); err != nil {
				return fmt.Errorf("relay binary: %w (go build -o bin/pgrollup-relay ./bench/relay)", err)
			}
		}
	}

	tmp, removeTmp, err := benchkit.TempDir("pgrollup-bench-", o.keep)
	if err != nil {
		return err
	}
	defer removeTmp()

	runs := o.rounds * len(o.clients) * len(o.protocols) * len(o.targets)
	fmt.Printf("pgrollup bench: %s, %ss per run, scale %d, clients %v, protocols %v, %d round(s): %d runs, about %s min; %d CPUs, load average %s\n",
		workloadName(o.rows), benchkit.SecondsArg(o.duration), o.scale, o.clients, o.protocols, o.rounds, runs,
		estimate(runs, o.duration), runtime.NumCPU(), proc.LoadAverage())

	maxClients := slices.Max(o.clients)
	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		// Direct, PgBouncer's idle server connections and pgrollup's at once, plus slack.
		"max_connections": strconv.Itoa(3*maxClients + 20),
		"shared_buffers":  "256MB",
	})
	if err != nil {
		return err
	}
	defer benchkit.KeepFirst(&err, cluster.Stop)
	version, err := setUp(ctx, cluster)
	if err != nil {
		return err
	}
	benchkit.Done("%s on %s:%d", version, cluster.Host, cluster.Port)

	benchkit.Step("pgbench -i -s %d", o.scale)
	t0 := time.Now()
	initCmd := exec.CommandContext(ctx, pgbench, "-i", "-q", "-s", strconv.Itoa(o.scale),
		"-h", cluster.Host, "-p", strconv.Itoa(cluster.Port), "-U", benchUser, benchDB)
	initCmd.Env = pgEnv()
	if out, err := initCmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	benchkit.Done("%d rows in pgbench_accounts (%s)", o.scale*100000, benchkit.Since(t0))

	targets := map[string]target{"direct": {"direct", cluster.Host, cluster.Port, 0}}
	for _, b := range []struct {
		name       string
		serverIdle int // server_idle_timeout, 0 for PgBouncer's default
		batch      bool
		what       string
	}{
		{"pgbouncer", 0, false, "PgBouncer (session pooling)"},
		{"pgbouncer-batch", 0, true, "a second PgBouncer run as SCHED_BATCH, the scheduling policy pgrollup gives its threads by default (sched_policy)"},
		{"pgbouncer-cold", 1, false, "a second PgBouncer that closes its server connections after 1 s idle, so that each run starts with new backends, as direct, pgrollup and the relays do"},
	} {
		if !needs[b.name] {
			continue
		}
		benchkit.Step("Starting " + b.what)
		port, err := proc.FreePort()
		if err != nil {
			return err
		}
		p, err := pgbouncer.Start(ctx, pgbouncer.Options{
			Bin: bouncerBin, Dir: filepath.Join(tmp, b.name), Writer: "pgrollup-bench",
			Host: cluster.Host, ServerPort: cluster.Port, Database: benchDB,
			User: benchUser, Password: benchPassword, Port: port, MaxClients: maxClients,
			ServerIdleTimeout: b.serverIdle,
		})
		if err != nil {
			return err
		}
		defer p.Stop(10 * time.Second)
		if b.batch {
			if _, err := sched.Batch(p.Cmd.Process.Pid); err != nil {
				return err
			}
		}
		targets[b.name] = target{b.name, "127.0.0.1", port, p.Cmd.Process.Pid}
		benchkit.Done("%s on 127.0.0.1:%d", versionOf(bouncerBin, "-V"), port)
	}
	for _, name := range pgrollupTargets {
		if !needs[name] {
			continue
		}
		benchkit.Step("Starting " + name)
		ports, err := proc.FreePorts(2)
		if err != nil {
			return err
		}
		port, adminPort := ports[0], ports[1]
		p, err := startPgrollup(ctx, rollupBin, filepath.Join(tmp, name), cluster, port, adminPort, o.pprof, pgrollupEnv[name], pgrollupYAML[name])
		if err != nil {
			return err
		}
		defer p.Stop(15 * time.Second)
		targets[name] = target{name, "127.0.0.1", port, p.Cmd.Process.Pid}
		benchkit.Done("%s on 127.0.0.1:%d (admin 127.0.0.1:%d) %s", name, port, adminPort, strings.Join(pgrollupEnv[name], " "))
	}

	for _, name := range o.targets {
		args, ok := relayTargets[name]
		if !ok {
			continue
		}
		benchkit.Step("Starting " + name)
		port, err := proc.FreePort()
		if err != nil {
			return err
		}
		p, err := startRelay(ctx, relayBin, filepath.Join(tmp, name+".log"), name, cluster, port, args)
		if err != nil {
			return err
		}
		defer p.Stop(5 * time.Second)
		targets[name] = target{name, "127.0.0.1", port, p.Cmd.Process.Pid}
		benchkit.Done("%s %s on 127.0.0.1:%d", filepath.Base(relayBin), strings.Join(args, " "), port)
	}

	secs := benchkit.SecondsArg(o.duration)
	workload := []string{"-S"}
	if o.rows > 0 {
		script := filepath.Join(tmp, "rows.sql")
		if err := os.WriteFile(script, []byte(rowsScript(o.scale, o.rows)), 0o644); err != nil {
			return err
		}
		workload = []string{"-f", script}
	}
	fmt.Printf("\nEach run: %s -l -n %s -M PROTOCOL -T %s -c N -j min(N,2) -h HOST -p PORT -U %s %s\n",
		pgbench, strings.Join(workload, " "), secs, benchUser, benchDB)
	fmt.Printf("Targets take turns within a round, in an order that rotates each round.\n\n")
	rep := report{
		command: commandLine(), date: time.Now(), cpus: runtime.NumCPU(), duration: secs, scale: o.scale, rounds: o.rounds,
		loadBefore: proc.LoadAverage(), clients: o.clients, protocols: o.protocols, targets: o.targets, rows: o.rows,
	}
	var results []result
	for round := 0; round < o.rounds; round++ {
		for _, n := range o.clients {
			for _, protocol := range o.protocols {
				for _, name := range rotate(o.targets, round) {
					t := targets[name]
					args := append(append([]string{"-n"}, workload...), "-M", protocol, "-T", secs, "-c", strconv.Itoa(n), "-j", strconv.Itoa(min(n, 2)),
						"-h", t.host, "-p", strconv.Itoa(t.port), "-U", benchUser, benchDB)
					fmt.Printf("[%d/%d] pgbench %s\n", len(results)+1, runs, strings.Join(args, " "))
					logDir := filepath.Join(tmp, "runs", strconv.Itoa(len(results)+1))
					r := measureRun(ctx, pgbench, args, logDir, t.pid)
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if !o.keep {
						_ = os.RemoveAll(logDir)
					}
					r.cell = cell{n, protocol, name}
					printRun(r)
					results = append(results, r)
				}
			}
		}
	}
	rep.loadAfter = proc.LoadAverage()
	rep.cells = summarize(results)
	rep.print(os.Stdout)
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
	if err := benchkit.ExecAll(ctx, conn,
		`CREATE ROLE `+benchUser+` LOGIN PASSWORD '`+benchPassword+`'`,
		`CREATE DATABASE `+benchDB+` OWNER `+benchUser); err != nil {
		return "", err
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
	return append(proc.EnvWithout("PG"), "PGPASSWORD="+benchPassword, "PGSSLMODE=disable", "PGAPPNAME=pgrollup-bench")
}

// pgrollupEnv is the environment each pgrollup target adds: pgrollup-1p
// runs Go code on one processor (GOMAXPROCS=1), as PgBouncer runs on one
// thread: what a proxy on a small machine shared with Postgres can choose.
var pgrollupEnv = map[string][]string{
	"pgrollup-1p": {"GOMAXPROCS=1"},
}

// pgrollupTargets are the targets that run pgrollup.
var pgrollupTargets = []string{"pgrollup", "pgrollup-goroutines", "pgrollup-normal", "pgrollup-goroutines-normal", "pgrollup-1p"}

// pgrollupYAML is the configuration each pgrollup target adds to the
// defaults: the -goroutines targets give every session a goroutine pair
// instead of the event loops, and the -normal ones leave the threads'
// scheduling policy as it is.
var pgrollupYAML = map[string]string{
	"pgrollup-goroutines":        "event_loop: false\n",
	"pgrollup-normal":            "sched_policy: normal\n",
	"pgrollup-goroutines-normal": "event_loop: false\nsched_policy: normal\n",
}

// startPgrollup runs `pgrollup serve` with a generated config in dir, with
// extra added to it and env to its environment; pprof serves Go's profiles
// on its admin listener.
func startPgrollup(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster, port, adminPort int, pprof bool, env []string, extra string) (*proc.Process, error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	cfg := proc.Config{
		Writer: "pgrollup-bench", Listen: fmt.Sprintf("127.0.0.1:%d", port), Admin: fmt.Sprintf("127.0.0.1:%d", adminPort),
		WarehouseDSN: cluster.DSN(benchDB), DataDir: dataDir, Pprof: pprof,
	}.YAML(`auth:
  cleartext_without_tls: loopback
` + extra)
	p, err := proc.StartPgrollupEnv(bin, dir, cfg, env)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitReady(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort), 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	dsn := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", benchUser, benchPassword, port, benchDB)
	if err := proc.WaitSession(ctx, p, dsn, 15*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// relayTargets are the bare relays of bench/relay, by target name, with
// their I/O model's flags: what each model costs on its own (issue 17).
var relayTargets = map[string][]string{
	"relay-goroutine":    {"-mode", "goroutine"},
	"relay-goroutine-1p": {"-mode", "goroutine", "-procs", "1"},
	"relay-epoll":        {"-mode", "epoll", "-loops", "1"},
	"relay-epoll2":       {"-mode", "epoll", "-loops", "2"},
	"relay-epoll-raw":    {"-mode", "epoll", "-loops", "1", "-raw-wait"},
	"relay-handoff":      {"-mode", "handoff", "-raw-wait"},
	"relay-shared":       {"-mode", "shared", "-raw-wait"},
}

func relayTargetNames() []string {
	names := make([]string, 0, len(relayTargets))
	for name := range relayTargets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// startRelay runs bench/relay in front of cluster on port.
func startRelay(ctx context.Context, bin, logPath, name string, cluster *pgcluster.Cluster, port int, args []string) (*proc.Process, error) {
	args = append([]string{"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-upstream", fmt.Sprintf("%s:%d", cluster.Host, cluster.Port)}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = proc.CleanEnv()
	p, err := proc.Start(name, logPath, cmd)
	if err != nil {
		return nil, err
	}
	dsn := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", benchUser, benchPassword, port, benchDB)
	if err := proc.WaitSession(ctx, p, dsn, 15*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// printRun prints one run's figures as it ends.
func printRun(r result) {
	if r.err != nil {
		fmt.Printf("      %s: %v\n", r.target, r.err)
		return
	}
	fmt.Printf("      %s: %.0f tps, latency average %.3f ms, p50 %s ms, p99 %s ms; CPU per transaction: proxy %s µs, machine %s µs\n",
		r.target, r.tps, r.latencyMS, num(r.p50/1e3, 3), num(r.p99/1e3, 3), num(r.proxyCPU, 1), num(r.machineCPU, 1))
}

// estimate is the sweep's length in minutes: each run lasts its duration
// plus about 1.5 s of connecting and reading its logs, and the setup 30 s.
func estimate(runs int, d time.Duration) string {
	return strconv.Itoa(int(math.Round((time.Duration(runs)*(d+1500*time.Millisecond) + 30*time.Second).Minutes())))
}

// rotate returns targets starting at round's turn, so that no target always
// runs first or last in a round (after a pause, or after a given other target).
func rotate(targets []string, round int) []string {
	k := round % len(targets)
	return append(append([]string(nil), targets[k:]...), targets[:k]...)
}

// commandLine is how this run was started, for the report.
func commandLine() string {
	return strings.Join(append([]string{"bin/pgrollup-bench"}, os.Args[1:]...), " ")
}

// parseList splits a comma-separated flag value whose items must be among allowed.
func parseList(s string, allowed ...string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allowed, f) {
			return nil, fmt.Errorf("unknown value %q (%s)", f, strings.Join(allowed, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// versionOf is the first line of `bin arg`, the version it prints.
func versionOf(bin string, arg string) string {
	out, err := exec.Command(bin, arg).Output()
	if err != nil {
		return filepath.Base(bin)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first
}

// rowsScript is the pgbench script of -rows: n consecutive accounts from a
// random one, all four columns, as a BI tool reads a page of a table.
func rowsScript(scale, n int) string {
	return fmt.Sprintf("\\set aid random(1, %d)\nSELECT aid, bid, abalance, filler FROM pgbench_accounts WHERE aid >= :aid AND aid < :aid + %d;\n",
		max(100000*scale-n+1, 1), n)
}
