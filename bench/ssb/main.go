// Command pgrollup-bench-ssb runs the Star Schema Benchmark (P. O'Neil,
// E. O'Neil, X. Chen, "Star Schema Benchmark", revision 3, 2009) directly on
// Postgres and through pgrollup, with the rollups a data engineer would
// declare for its four query flights. It is what `make bench-ssb` runs:
//
//	make bench-ssb                                 # scale factor 0.1 (600,000 lineorder rows), 5 runs
//	make bench-ssb SSB_FLAGS='-scale 1 -runs 3'    # the benchmark's unit scale: 6 million rows
//	go build -o bin/pgrollup-bench-ssb ./bench/ssb && bin/pgrollup-bench-ssb -pgrollup bin/pgrollup -keep
//
// It starts a throw-away PostgreSQL cluster (internal/pgcluster), creates the
// benchmark's database with the collation of a default installation (-locale:
// en_US.UTF-8 as the official Docker image has, else C.UTF-8, which every
// glibc system has; pgcluster's own databases use C), generates
// lineorder, customer, supplier, part and dwdate at -scale with dbgen's value
// distributions in Go and loads them with COPY. It then starts `pgrollup
// serve` with the rollups of rollupsYAML, waits for their builds, and runs
// the 13 queries: each once on both sides to compare the answers (column
// names, types, rows in text format, in the order the ORDER BY fixes), then
// -runs times more on each side, alternating, to report the median times
// and their ratio. Whether a query was answered from a rollup comes from
// EXPLAIN (ROLLUP) on the same session and pgrollup_rollup_hits_total; when
// it was not, the reason is the one EXPLAIN (ROLLUP) gives for the rollup
// declared for it.
//
// The program fails when an answer differs. Queries that pass through are
// reported with their reason, not failed: which ones are served depends on
// the collation (ordering and ranges on text are refused under non-C
// collations unless the warehouse finishes them). Times depend on the machine
// and its load, printed with them; read the ratios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// The role and database the queries run as and in. The role is not a
// superuser, as a BI tool's login is not.
const (
	ssbUser     = "ssb"
	ssbPassword = "ssb"
	ssbDB       = "ssb" // the command's; the test makes one per collation
)

type options struct {
	pgrollup string
	scale    float64
	runs     int
	locales  []string
	keep     bool
}

func main() {
	var o options
	var locales string
	flag.StringVar(&o.pgrollup, "pgrollup", "bin/pgrollup", "the pgrollup binary")
	flag.Float64Var(&o.scale, "scale", 0.1, "SSB scale factor: 1 is 6 million lineorder rows; 0.01 and 0.1 are quick")
	flag.IntVar(&o.runs, "runs", 5, "timed runs of each query on each side after the compared one (the median is reported)")
	flag.StringVar(&locales, "locale", "en_US.UTF-8,C.UTF-8", "the benchmark database's locale: the first of these the server accepts (C for the collation pgrollup orders text in)")
	flag.BoolVar(&o.keep, "keep", false, "leave Postgres and pgrollup running after the benchmark until Ctrl-C")
	flag.Parse()
	o.locales = strings.Split(locales, ",")
	switch {
	case flag.NArg() > 0:
		fatalUsage("unexpected arguments %q", flag.Args())
	case o.scale <= 0 || o.scale > 100:
		fatalUsage("-scale must be above 0 and at most 100")
	case o.runs < 1:
		fatalUsage("-runs must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-ssb: %v\n", err)
		os.Exit(1)
	}
}

func fatalUsage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-ssb: "+format+"\n", args...)
	os.Exit(2)
}

func run(ctx context.Context, o options) error {
	bin, err := filepath.Abs(o.pgrollup)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("pgrollup binary: %w (run `make build`, or use `make bench-ssb`)", err)
	}
	dir, err := os.MkdirTemp("", "pgrollup-bench-ssb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sz := sizesOf(o.scale)
	fmt.Printf("pgrollup SSB bench: scale %g (%d orders of 1-7 lines, %d customers, %d suppliers, %d parts), %d runs per query; %d CPUs, load average %s\n",
		o.scale, sz.orders, sz.customers, sz.suppliers, sz.parts, o.runs, runtime.NumCPU(), proc.LoadAverage())

	step("Starting a throw-away PostgreSQL cluster")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Config: map[string]string{
		"shared_buffers": "512MB",
		"work_mem":       "64MB",
		"max_wal_size":   "4GB",
	}})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if cluster.External {
		return errors.New("PGROLLUP_TEST_DSN names an external server: this benchmark creates its own database and role only in a throw-away cluster")
	}
	t0 := time.Now()
	locale, err := prepare(ctx, cluster, ssbDB, o.locales, o.scale, done)
	if err != nil {
		return err
	}
	done("database %s with locale %s, loaded in %s", ssbDB, locale, since(t0))

	step("Starting pgrollup")
	p, ep, err := startPgrollup(ctx, bin, dir, cluster)
	if err != nil {
		return err
	}
	defer p.Stop(15 * time.Second)
	done("pgrollup on %s, log %s", ep.proxied, p.LogPath)
	fmt.Printf("%s\n", indent(rollupsYAML()))
	step("Waiting for the rollup builds")
	if err := proc.WaitRollups(ctx, ep.adminURL, p.Exited, 30*time.Minute, done); err != nil {
		return p.Failed(err)
	}

	step("Running the 13 queries: once to compare, then %d timed runs on each side (query, Postgres, pgrollup, decision)", o.runs)
	results, err := runQueries(ctx, ep, o.runs, done)
	if err != nil {
		return p.Failed(err)
	}
	fmt.Printf("\nSSB at scale %g, database locale %s, median of %d runs (load average %s):\n\n", o.scale, locale, o.runs, proc.LoadAverage())
	printTable(os.Stdout, results)
	var wrong []string
	var speedups []float64
	for _, r := range results {
		if r.diff != "" {
			wrong = append(wrong, r.q.id+": "+r.diff)
		}
		if r.served() {
			speedups = append(speedups, r.speedup())
		}
	}
	fmt.Printf("\n%d of 13 served from rollups (median speed-up %.1f×); %d of 13 answers equal to Postgres's.\n",
		len(speedups), median(speedups), 13-len(wrong))

	if o.keep && ctx.Err() == nil {
		fmt.Printf("\n-keep: leaving everything running until Ctrl-C\n  Postgres directly:  psql %q\n  through pgrollup:   psql %q\n  admin and metrics:  %s/api/rollups  %s/metrics\n",
			ep.direct, ep.proxied, ep.adminURL, ep.adminURL)
		select {
		case <-ctx.Done():
		case <-p.Exited:
			fmt.Printf("pgrollup exited (%v)\n%s\n", p.WaitErr, proc.Tail(p.LogPath, 20))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%d answer(s) differ from Postgres's:\n  %s", len(wrong), strings.Join(wrong, "\n  "))
	}
	return nil
}

// prepare creates the benchmark's role (unless it exists) and the database
// db with the first of locales the server accepts, and loads the SSB tables
// at scale sf. It returns the locale used.
func prepare(ctx context.Context, cluster *pgcluster.Cluster, db string, locales []string, sf float64, progress func(string, ...any)) (string, error) {
	admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, ssbUser).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := admin.Exec(ctx, `CREATE ROLE `+ssbUser+` LOGIN PASSWORD '`+ssbPassword+`'`); err != nil {
			return "", fmt.Errorf("creating role %s: %w", ssbUser, err)
		}
	}
	locale := ""
	var tried []string
	for _, l := range locales {
		l = strings.TrimSpace(l)
		_, err := admin.Exec(ctx, `CREATE DATABASE `+sqlquote.Ident(db)+` TEMPLATE template0 ENCODING 'UTF8' LOCALE `+sqlquote.Literal(l))
		if err == nil {
			locale = l
			break
		}
		tried = append(tried, fmt.Sprintf("%s: %v", l, err))
	}
	if locale == "" {
		return "", fmt.Errorf("no locale of -locale is accepted:\n  %s", strings.Join(tried, "\n  "))
	}
	for _, t := range tried {
		progress("locale %s (not installed? Debian: apt-get install locales-all)", t)
	}
	conn, err := pgx.Connect(ctx, cluster.DSN(db))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if err := load(ctx, conn, sf, progress); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `GRANT SELECT ON dwdate, customer, supplier, part, lineorder TO `+ssbUser); err != nil {
		return "", err
	}
	return locale, nil
}

// pgrollupConfig is the whole config of the benchmark's pgrollup. The
// result cache is off: a repeated query would otherwise be timed as a cache
// lookup, not as the answer from the rollup.
func pgrollupConfig(cluster *pgcluster.Cluster, db, listen, admin, dataDir string) string {
	q := strconv.Quote
	return `# written by bench/ssb
listen: ` + q(listen) + `
warehouse:
  dsn: ` + q(cluster.DSN(db)) + `
data_dir: ` + q(dataDir) + `
storage:
  url: ` + q("file://"+filepath.Join(dataDir, "rollups")) + `
worker:
  cache_dir: ` + q(filepath.Join(dataDir, "cache")) + `
routing:
  result_cache_bytes: "0"
auth:
  cleartext_without_tls: loopback
admin:
  listen: ` + q(admin) + `
` + rollupsYAML()
}

// endpointsFor are the DSNs (of database db) and admin URL of a pgrollup
// listening on listen and admin in front of cluster.
func endpointsFor(cluster *pgcluster.Cluster, db, listen, admin string) endpoints {
	proxied := url.URL{Scheme: "postgres", User: url.UserPassword(ssbUser, ssbPassword), Host: listen,
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return endpoints{
		direct:   cluster.DSNFor(ssbUser, ssbPassword, db),
		proxied:  proxied.String(),
		adminURL: "http://" + admin,
	}
}

// startPgrollup writes the config in dir, starts `pgrollup serve` and waits
// until it accepts sessions.
func startPgrollup(ctx context.Context, bin, dir string, cluster *pgcluster.Cluster) (*proc.Process, endpoints, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, endpoints{}, err
	}
	adminPort, err := proc.FreePort()
	if err != nil {
		return nil, endpoints{}, err
	}
	listen, admin := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", adminPort)
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(pgrollupConfig(cluster, ssbDB, listen, admin, filepath.Join(dir, "data"))), 0o600); err != nil {
		return nil, endpoints{}, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--shutdown-timeout", "5s")
	cmd.Env = proc.CleanEnv()
	p, err := proc.Start("pgrollup", filepath.Join(dir, "pgrollup.log"), cmd)
	if err != nil {
		return nil, endpoints{}, err
	}
	ep := endpointsFor(cluster, ssbDB, listen, admin)
	for deadline := time.Now().Add(60 * time.Second); ; {
		conn, err := pgconn.Connect(ctx, ep.proxied)
		if err == nil {
			conn.Close(context.Background())
			return p, ep, nil
		}
		select {
		case <-ctx.Done():
			p.Stop(5 * time.Second)
			return nil, endpoints{}, ctx.Err()
		case <-p.Exited:
			return nil, endpoints{}, p.Failed(err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(5 * time.Second)
			return nil, endpoints{}, p.Failed(fmt.Errorf("no session after 60 s: %w", err))
		}
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func done(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
