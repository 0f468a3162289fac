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
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/benchkit"
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
	benchkit.Main("bench-ssb", func(ctx context.Context) error { return run(ctx, o) })
}

func fatalUsage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-ssb: "+format+"\n", args...)
	os.Exit(2)
}

func run(ctx context.Context, o options) error {
	bin, err := benchkit.PgrollupBinary(o.pgrollup, "bench-ssb")
	if err != nil {
		return err
	}
	dir, removeDir, err := benchkit.TempDir("pgrollup-bench-ssb-", false)
	if err != nil {
		return err
	}
	defer removeDir()
	sz := sizesOf(o.scale)
	fmt.Printf("pgrollup SSB bench: scale %g (%d orders of 1-7 lines, %d customers, %d suppliers, %d parts), %d runs per query; %d CPUs, load average %s\n",
		o.scale, sz.orders, sz.customers, sz.suppliers, sz.parts, o.runs, runtime.NumCPU(), proc.LoadAverage())

	cluster, err := benchkit.StartCluster(ctx, map[string]string{
		"shared_buffers": "512MB",
		"work_mem":       "64MB",
		"max_wal_size":   "4GB",
	})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if cluster.External {
		return errors.New("PGROLLUP_TEST_DSN names an external server: this benchmark creates its own database and role only in a throw-away cluster")
	}
	t0 := time.Now()
	locale, err := prepare(ctx, cluster, ssbDB, o.locales, o.scale, benchkit.Done)
	if err != nil {
		return err
	}
	benchkit.Done("database %s with locale %s, loaded in %s", ssbDB, locale, benchkit.Since(t0))

	benchkit.Step("Starting pgrollup")
	p, ep, err := startPgrollup(ctx, bin, dir, cluster)
	if err != nil {
		return err
	}
	defer p.Stop(15 * time.Second)
	benchkit.Done("pgrollup on %s, log %s", ep.proxied, p.LogPath)
	fmt.Printf("%s\n", benchkit.Indent(rollupsYAML()))
	benchkit.Step("Waiting for the rollup builds")
	if err := proc.WaitRollups(ctx, ep.adminURL, p.Exited, 30*time.Minute, benchkit.Done); err != nil {
		return p.Failed(err)
	}

	benchkit.Step("Running the 13 queries: once to compare, then %d timed runs on each side (query, Postgres, pgrollup, decision)", o.runs)
	results, err := runQueries(ctx, ep, o.runs, benchkit.Done)
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
		len(speedups), benchkit.Median(speedups), 13-len(wrong))

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
	return proc.Config{Writer: "bench/ssb", Listen: listen, Admin: admin, WarehouseDSN: cluster.DSN(db), DataDir: dataDir}.YAML(`routing:
  result_cache_bytes: "0"
auth:
  cleartext_without_tls: loopback
` + rollupsYAML())
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
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, endpoints{}, err
	}
	listen, admin := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg := pgrollupConfig(cluster, ssbDB, listen, admin, filepath.Join(dir, "data"))
	p, err := proc.StartPgrollup(bin, dir, cfg, "--shutdown-timeout", "5s")
	if err != nil {
		return nil, endpoints{}, err
	}
	ep := endpointsFor(cluster, ssbDB, listen, admin)
	if err := proc.WaitSession(ctx, p, ep.proxied, 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, endpoints{}, err
	}
	return p, ep, nil
}
