package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
)

// benchStatement is one line of the pgbench script: a dashboard statement
// as the BI tool sends it (through pgrollup), and the same question asked of
// the materialized view holding the rollup pgrollup answers it from,
// re-aggregated as pgrollup re-aggregates the rollup (counts are summed).
type benchStatement struct {
	dashboardID int
	rollup      string // the rollup the view mirrors; pgrollup should choose it too
	viewSQL     string
}

// pgbenchSafe adapts a dashboard statement to pgbench, which reads `:name`
// as a variable even inside a quoted identifier: Tableau's "sum:amount:ok"
// becomes "sum_amount_ok".
func pgbenchSafe(sql string) string {
	return strings.ReplaceAll(sql, `"sum:amount:ok"`, `"sum_amount_ok"`)
}

func benchStatements(w *warehouse) []benchStatement {
	ts := func(t time.Time) string { return t.Format("2006-01-02 15:04:05-07") }
	last90, last7 := w.end.AddDate(0, 0, -90), w.end.AddDate(0, 0, -7)
	return []benchStatement{
		{1, "orders_monthly_by_country", `SELECT status AS "status", sum(count)::bigint AS "count" ` +
			`FROM mv_orders_monthly_by_country GROUP BY status ORDER BY status ASC`},
		{3, "orders_daily_by_status", `SELECT day AS "created_at", sum(sum_amount) AS "sum" FROM mv_orders_daily_by_status ` +
			`WHERE day >= timestamp with time zone '` + ts(last90) + `' AND day < timestamp with time zone '` + ts(w.end) + `' ` +
			`GROUP BY day ORDER BY day ASC`},
		{5, "orders_monthly_by_country", `SELECT country AS "country", sum(sum_amount) AS "sum_amount_ok" ` +
			`FROM mv_orders_monthly_by_country GROUP BY 1 ORDER BY 2 DESC LIMIT 10`},
		{10, "orders_hourly_by_status", `SELECT hour AS "created_at", status AS "status", sum(count)::bigint AS "count", sum(sum_amount) AS "sum" ` +
			`FROM mv_orders_hourly_by_status WHERE hour >= timestamp with time zone '` + ts(last7) + `' ` +
			`AND hour < timestamp with time zone '` + ts(w.end) + `' GROUP BY 1, 2 ORDER BY 1 ASC, 2 ASC`},
	}
}

// benchRun is one pgbench run.
type benchRun struct {
	target, protocol string
	clients          int
	tps, latencyMS   float64
	transactions     int64
}

type pgbenchReport struct {
	runs       []benchRun
	rounds     int
	duration   string
	statements int
	failures   []string
	notes      []string
	load       string
	loadEnd    string
	clients    []int
	protocols  []string
	// resultCache is pgrollup's routing.result_cache_bytes in these runs.
	resultCache string
}

const (
	targetPgrollup = "pgrollup"
	targetView     = "matview"
)

// runPgbenchComparison runs the script of rollup hits through pgrollup and
// the materialized-view script directly on Postgres, at every client count
// and with both protocols, interleaved.
func runPgbenchComparison(ctx context.Context, o options, pgbench, dir string, w *warehouse, p *pgrollup, resultCache string) (*pgbenchReport, error) {
	benchkit.Step("pgbench: rollup hits through pgrollup vs the same statements on materialized views directly on Postgres")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	byID := map[int]statement{}
	for _, st := range dashboard(w) {
		byID[st.id] = st
	}
	rep := &pgbenchReport{resultCache: resultCache, rounds: o.rounds, duration: benchkit.SecondsArg(o.duration), clients: o.clients, protocols: []string{"simple", "extended"}}
	stmts := benchStatements(w)
	rep.statements = len(stmts)
	var rollupScript, viewScript strings.Builder
	rollupScript.WriteString("-- bench/serving: dashboard statements pgrollup answers from rollups\n")
	viewScript.WriteString("-- bench/serving: the same statements on materialized views holding the same rollups\n")

	// Before timing anything: the two scripts must give the same answers, and
	// pgrollup must answer each statement from the rollup its view mirrors.
	direct, err := pgconn.Connect(ctx, w.clientDSN())
	if err != nil {
		return nil, err
	}
	defer direct.Close(context.Background())
	proxied, err := pgconn.Connect(ctx, p.clientDSN(w))
	if err != nil {
		return nil, err
	}
	defer proxied.Close(context.Background())
	for _, bs := range stmts {
		st := byID[bs.dashboardID]
		st.sql = pgbenchSafe(st.sql)
		rollupScript.WriteString(st.sql + ";\n")
		viewScript.WriteString(bs.viewSQL + ";\n")
		chosen, _, why, err := explainRollup(ctx, proxied, st.sql)
		if err != nil {
			return nil, err
		}
		switch {
		case chosen == "":
			rep.failures = append(rep.failures, fmt.Sprintf("pgbench statement [%d] is not answered from a rollup: %s", st.id, benchkit.FirstLine(why)))
		case chosen != bs.rollup:
			rep.notes = append(rep.notes, fmt.Sprintf("statement [%d]: pgrollup chose rollup %s, the view mirrors %s", st.id, chosen, bs.rollup))
		}
		got, err := execPG(ctx, proxied, st.sql, "simple")
		if err != nil {
			return nil, fmt.Errorf("[%d] through pgrollup: %w", st.id, err)
		}
		want, err := execPG(ctx, direct, bs.viewSQL, "simple")
		if err != nil {
			return nil, fmt.Errorf("[%d] on the view: %w\n%s", st.id, err, bs.viewSQL)
		}
		// Values only: the view's columns come from another relation.
		if a, b := rowStrings(got.rows), rowStrings(want.rows); strings.Join(a, "\n") != strings.Join(b, "\n") {
			return nil, fmt.Errorf("[%d]: the view statement's rows differ from pgrollup's (%d and %d rows); fix the benchmark's view statement:\n%s",
				st.id, len(want.rows), len(got.rows), bs.viewSQL)
		}
	}
	if len(rep.failures) > 0 {
		return rep, nil
	}
	scripts := map[string]string{targetPgrollup: filepath.Join(dir, "rollup-hits.sql"), targetView: filepath.Join(dir, "matview.sql")}
	for target, text := range map[string]string{targetPgrollup: rollupScript.String(), targetView: viewScript.String()} {
		if err := os.WriteFile(scripts[target], []byte(text), 0o600); err != nil {
			return nil, err
		}
		fmt.Printf("    %s:\n%s\n", scripts[target], benchkit.Indent(benchkit.Indent(text)))
	}

	rep.load = proc.LoadAverage()
	fmt.Printf("    load average before the runs: %s\n", rep.load)
	total := o.rounds * len(rep.protocols) * len(o.clients) * 2
	n := 0
	for round := 1; round <= o.rounds; round++ {
		for _, proto := range rep.protocols {
			for _, clients := range o.clients {
				for _, target := range []string{targetPgrollup, targetView} {
					host, port := "127.0.0.1", p.port
					if target == targetView {
						host, port = w.cluster.Host, w.cluster.Port
					}
					args := []string{pgbench, "-n", "-f", scripts[target], "-M", proto, "-T", rep.duration,
						"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)),
						"-h", host, "-p", strconv.Itoa(port), "-U", benchUser, benchDB}
					n++
					fmt.Printf("    [%d/%d] %s\n", n, total, target)
					command(args...)
					var before routeCounts
					if target == targetPgrollup {
						if before, err = p.routeCounts(ctx); err != nil {
							return nil, err
						}
					}
					r, err := runPgbench(ctx, args)
					if err != nil {
						return nil, err
					}
					r.target, r.protocol, r.clients = target, proto, clients
					fmt.Printf("        %.0f tps, %.3f ms average latency, %d transactions\n", r.tps, r.latencyMS, r.transactions)
					if target == targetPgrollup {
						// pgbench -T counts finished transactions only; the
						// statements of unfinished ones may have run too.
						least := float64(r.transactions) * float64(len(stmts))
						d, err := p.settle(ctx, before, func(d routeCounts) bool { return d.rollup >= least })
						if err != nil {
							return nil, err
						}
						if d.rollup < least || d.passthrough != 0 || d.fallbacks != 0 || d.errors != 0 {
							rep.failures = append(rep.failures, fmt.Sprintf("pgbench through pgrollup (%s, %d clients): expected at least %.0f rollup answers and nothing else, /metrics says %s",
								proto, clients, least, d))
						}
					}
					rep.runs = append(rep.runs, r)
				}
			}
		}
	}
	rep.loadEnd = proc.LoadAverage()
	printPgbench(rep)
	return rep, nil
}

var (
	tpsRE     = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	latencyRE = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	txRE      = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failedRE  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

func runPgbench(ctx context.Context, args []string) (benchRun, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// The password, and nothing from the caller's PG* variables that could redirect it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PGPASSWORD="+benchPassword, "PGSSLMODE=disable", "PGAPPNAME=pgrollup-bench-serving")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return benchRun{}, fmt.Errorf("pgbench: %w\n%s", err, benchkit.Indent(out.String()))
	}
	text := out.String()
	tps, lat, tx := tpsRE.FindStringSubmatch(text), latencyRE.FindStringSubmatch(text), txRE.FindStringSubmatch(text)
	if tps == nil || lat == nil || tx == nil {
		return benchRun{}, fmt.Errorf("cannot read tps, latency and transactions from pgbench's output:\n%s", benchkit.Indent(text))
	}
	if m := failedRE.FindStringSubmatch(text); m != nil && m[1] != "0" {
		return benchRun{}, fmt.Errorf("pgbench: %s failed transactions:\n%s", m[1], benchkit.Indent(text))
	}
	var r benchRun
	r.tps, _ = strconv.ParseFloat(tps[1], 64)
	r.latencyMS, _ = strconv.ParseFloat(lat[1], 64)
	r.transactions, _ = strconv.ParseInt(tx[1], 10, 64)
	return r, nil
}

// cell is the median run (by tps) of one target, protocol and client count.
func (rep *pgbenchReport) cell(target, proto string, clients int) (benchRun, bool) {
	var runs []benchRun
	for _, r := range rep.runs {
		if r.target == target && r.protocol == proto && r.clients == clients {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return benchRun{}, false
	}
	for i := 1; i < len(runs); i++ {
		for j := i; j > 0 && runs[j].tps < runs[j-1].tps; j-- {
			runs[j], runs[j-1] = runs[j-1], runs[j]
		}
	}
	return runs[len(runs)/2], true
}

func printPgbench(rep *pgbenchReport) {
	fmt.Printf("\npgbench (pgrollup's result cache %s): %d statements per transaction, %ss per run", rep.resultCache, rep.statements, rep.duration)
	if rep.rounds > 1 {
		fmt.Printf(", median of %d rounds", rep.rounds)
	}
	fmt.Printf("; load average %s before, %s after\n\n", rep.load, rep.loadEnd)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "protocol\tclients\tpgrollup tps\tlatency ms\tmatview tps\tlatency ms\tpgrollup/matview\tpgrollup ahead\t")
	for _, proto := range rep.protocols {
		for _, c := range rep.clients {
			a, okA := rep.cell(targetPgrollup, proto, c)
			b, okB := rep.cell(targetView, proto, c)
			if !okA || !okB {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%.0f\t%.3f\t%.2f×\t%s\t\n", proto, c, a.tps, a.latencyMS, b.tps, b.latencyMS, a.tps/b.tps, benchkit.PassMiss(a.tps > b.tps))
		}
	}
	tw.Flush()
	for _, n := range rep.notes {
		fmt.Printf("note: %s\n", n)
	}
}

// pgbenchVerdict is the goal's line for the summary.
func pgbenchVerdict(rep *pgbenchReport) string {
	ahead, cells := 0, 0
	worst := 0.0
	for _, proto := range rep.protocols {
		for _, c := range rep.clients {
			a, okA := rep.cell(targetPgrollup, proto, c)
			b, okB := rep.cell(targetView, proto, c)
			if !okA || !okB || b.tps == 0 {
				continue
			}
			cells++
			ratio := a.tps / b.tps
			if ratio > 1 {
				ahead++
			}
			if cells == 1 || ratio < worst {
				worst = ratio
			}
		}
	}
	if cells == 0 {
		return "pgbench: no figures"
	}
	return fmt.Sprintf("pgbench, result cache %s: pgrollup ahead of the materialized views in %d of %d runs (lowest ratio %.2f×; goal: ahead in all): %s",
		rep.resultCache, ahead, cells, worst, benchkit.PassMiss(ahead == cells))
}

func printSummary(dash *dashboardReport, benches []*pgbenchReport) {
	fmt.Printf("\nSummary\n")
	for _, l := range dashboardVerdict(dash) {
		fmt.Printf("  %s\n", l)
	}
	for _, bench := range benches {
		fmt.Printf("  %s\n", pgbenchVerdict(bench))
	}
}
