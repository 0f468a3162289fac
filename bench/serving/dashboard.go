package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	// DuckDB alone: the same driver and version pgrollup answers with.
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
)

// statement is one tile of the dashboard.
type statement struct {
	id      int
	label   string // short, for the table: the BI tool whose shape it copies and what it shows
	sql     string
	ordered bool // its ORDER BY fixes the row order, so rows compare in order; otherwise as multisets
}

// dashboard returns the statements, with date bounds relative to the data
// (fixed literals, as Metabase and Tableau inline a chosen date range).
func dashboard(w *warehouse) []statement {
	ts := func(t time.Time) string { return t.Format("2006-01-02 15:04:05-07") }
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	thisMonth := time.Date(w.end.Year(), w.end.Month(), 1, 0, 0, 0, 0, time.UTC)
	last90, last7 := w.end.AddDate(0, 0, -90), w.end.AddDate(0, 0, -7)
	halfYear, year := thisMonth.AddDate(0, -6, 0), thisMonth.AddDate(-1, 0, 0)
	list := []statement{
		{label: "Metabase: orders by status", ordered: true, sql: `SELECT "public"."orders"."status" AS "status", COUNT(*) AS "count" ` +
			`FROM "public"."orders" GROUP BY "public"."orders"."status" ORDER BY "public"."orders"."status" ASC`},
		{label: "Metabase: revenue by month (source)", ordered: true, sql: `SELECT "source"."created_at" AS "created_at", "source"."sum" AS "sum", "source"."count" AS "count" ` +
			`FROM (SELECT DATE_TRUNC('month', "public"."orders"."created_at") AS "created_at", SUM("public"."orders"."amount") AS "sum", COUNT(*) AS "count" ` +
			`FROM "public"."orders" GROUP BY DATE_TRUNC('month', "public"."orders"."created_at") ` +
			`ORDER BY DATE_TRUNC('month', "public"."orders"."created_at") ASC) AS "source" LIMIT 1048575`},
		{label: "Metabase: last 90 days, daily revenue", ordered: true, sql: `SELECT DATE_TRUNC('day', "public"."orders"."created_at") AS "created_at", SUM("public"."orders"."amount") AS "sum" ` +
			`FROM "public"."orders" WHERE ("public"."orders"."created_at" >= timestamp with time zone '` + ts(last90) + `') ` +
			`AND ("public"."orders"."created_at" < timestamp with time zone '` + ts(w.end) + `') ` +
			`GROUP BY DATE_TRUNC('day', "public"."orders"."created_at") ORDER BY DATE_TRUNC('day', "public"."orders"."created_at") ASC`},
		{label: "Metabase: previous 12 months (now())", ordered: true, sql: `SELECT DATE_TRUNC('month', "public"."orders"."created_at") AS "created_at", COUNT(*) AS "count", SUM("public"."orders"."amount") AS "sum" ` +
			`FROM "public"."orders" WHERE ("public"."orders"."created_at" >= DATE_TRUNC('month', (NOW() + INTERVAL '-12 month'))) ` +
			`AND ("public"."orders"."created_at" < DATE_TRUNC('month', NOW())) ` +
			`GROUP BY DATE_TRUNC('month', "public"."orders"."created_at") ORDER BY DATE_TRUNC('month', "public"."orders"."created_at") ASC`},
		{label: "Tableau: top 10 countries (join)", ordered: true, sql: `SELECT "customers"."country" AS "country", SUM("orders"."amount") AS "sum:amount:ok" ` +
			`FROM "public"."orders" "orders" LEFT JOIN "public"."customers" "customers" ON ("orders"."customer_id" = "customers"."id") ` +
			`GROUP BY 1 ORDER BY 2 DESC LIMIT 10`},
		{label: "Tableau: quantity by quarter", sql: `SELECT CAST(DATE_TRUNC('QUARTER', CAST("orders"."created_at" AS DATE)) AS DATE) AS "tqr:created_at:ok", ` +
			`SUM("orders"."quantity") AS "sum:quantity:ok" FROM "public"."orders" "orders" GROUP BY 1`},
		{label: "Tableau: status KPIs, 6 months", sql: `SELECT "orders"."status" AS "status", SUM("orders"."amount") AS "sum:amount:ok", ` +
			`SUM("orders"."quantity") AS "sum:quantity:ok", COUNT(1) AS "cnt:orders:ok" FROM "public"."orders" "orders" ` +
			`WHERE (("orders"."created_at" >= (DATE '` + day(halfYear) + `')) AND ("orders"."created_at" < (DATE '` + day(thisMonth) + `'))) GROUP BY 1`},
		{label: "Superset: monthly AVG by status", sql: `SELECT DATE_TRUNC('month', created_at) AS __timestamp, status AS status, AVG(amount) AS "AVG(amount)" ` +
			`FROM public.orders WHERE created_at >= TO_TIMESTAMP('` + day(year) + ` 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') ` +
			`AND created_at < TO_TIMESTAMP('` + day(thisMonth) + ` 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') ` +
			`GROUP BY DATE_TRUNC('month', created_at), status LIMIT 10000`},
		{label: "Superset: big numbers, not cancelled", sql: `SELECT COUNT(*) AS count, SUM(amount) AS "SUM(amount)", AVG(amount) AS "AVG(amount)", ` +
			`MIN(amount) AS "MIN(amount)", MAX(amount) AS "MAX(amount)" FROM public.orders WHERE status <> 'cancelled' LIMIT 50000`},
		{label: "Metabase: hourly by status, 7 days", ordered: true, sql: `SELECT DATE_TRUNC('hour', "public"."orders"."created_at") AS "created_at", "public"."orders"."status" AS "status", ` +
			`COUNT(*) AS "count", SUM("public"."orders"."amount") AS "sum" FROM "public"."orders" ` +
			`WHERE ("public"."orders"."created_at" >= timestamp with time zone '` + ts(last7) + `') ` +
			`AND ("public"."orders"."created_at" < timestamp with time zone '` + ts(w.end) + `') ` +
			`GROUP BY DATE_TRUNC('hour', "public"."orders"."created_at"), "public"."orders"."status" ` +
			`ORDER BY DATE_TRUNC('hour', "public"."orders"."created_at") ASC, "public"."orders"."status" ASC`},
		// Looker's sum measure is COALESCE(SUM(x), 0). Over the numeric amount
		// pgrollup passes it through ("mixing numeric and integer"), so the
		// tile sums the integer quantity.
		{label: "Looker: monthly quantity in DE (join)", ordered: true, sql: `SELECT DATE_TRUNC('month', orders.created_at) AS "orders.created_month", ` +
			`COALESCE(SUM(orders.quantity), 0) AS "orders.total_quantity" FROM public.orders AS orders ` +
			`LEFT JOIN public.customers AS customers ON orders.customer_id = customers.id ` +
			`WHERE customers.country = 'DE' GROUP BY 1 ORDER BY 1 DESC FETCH NEXT 500 ROWS ONLY`},
	}
	for i := range list {
		list[i].id = i + 1
	}
	return list
}

// dashResult is one statement's figures (medians) or why it has none.
type dashResult struct {
	st                     statement
	rollup                 string
	duckSQL                string
	rows                   int
	direct, pgrollup, duck time.Duration
	failed                 string
}

func (r dashResult) speedup() float64 { return benchkit.MS(r.direct) / benchkit.MS(r.pgrollup) }

// overheadBound is the goal for pgrollup's time: 1.5 × DuckDB alone + 1 ms.
func (r dashResult) overheadBound() time.Duration { return r.duck*3/2 + time.Millisecond }

type dashboardReport struct {
	results  []dashResult
	failures []string
	protocol string
	runs     int
	fastRuns int
	load     string // load average before the timed runs
	loadEnd  string
}

// runDashboard times every statement on the three targets and checks that
// pgrollup answered it from a rollup with Postgres's answer.
func runDashboard(ctx context.Context, o options, w *warehouse, p *pgrollup) (*dashboardReport, error) {
	benchkit.Step("Dashboard: after a warm-up, %d runs per statement directly, %d through pgrollup and on DuckDB alone, %s protocol", o.runs, o.fastRuns, o.protocol)
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
	explainer, err := pgconn.Connect(ctx, p.superDSN(w))
	if err != nil {
		return nil, viaPgrollup{err}
	}
	defer explainer.Close(context.Background())
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer duck.Close()
	// pgrollup's in-process DuckDB gets worker.duckdb_memory_limit (default
	// 2GB) and otherwise DuckDB's defaults (threads = cores); so does this one.
	if _, err := duck.ExecContext(ctx, `SET memory_limit = '2GB'`); err != nil {
		return nil, err
	}
	// One connection, as a single dashboard session has.
	duck.SetMaxOpenConns(1)

	rep := &dashboardReport{protocol: o.protocol, runs: o.runs, fastRuns: o.fastRuns, load: proc.LoadAverage()}
	fmt.Printf("    load average before the runs: %s\n", rep.load)
	for _, st := range dashboard(w) {
		fmt.Printf("\n    [%d] %s\n%s\n", st.id, st.label, benchkit.Indent(benchkit.Indent(st.sql)))
		r, err := measure(ctx, o, st, direct, proxied, explainer, duck, p)
		if err != nil {
			return nil, err
		}
		if r.failed != "" {
			fmt.Printf("        FAILED: %s\n", strings.ReplaceAll(r.failed, "\n", "\n        "))
			rep.failures = append(rep.failures, fmt.Sprintf("dashboard [%d] %s: %s", st.id, st.label, benchkit.FirstLine(r.failed)))
		} else {
			fmt.Printf("        rollup %s, %d rows: direct %.2f ms, pgrollup %.3f ms, DuckDB alone %.3f ms\n",
				r.rollup, r.rows, benchkit.MS(r.direct), benchkit.MS(r.pgrollup), benchkit.MS(r.duck))
		}
		rep.results = append(rep.results, r)
	}
	rep.loadEnd = proc.LoadAverage()
	printDashboard(rep)
	return rep, nil
}

// measure runs one statement: EXPLAIN (ROLLUP) through pgrollup for the
// rollup and the DuckDB SQL, a warm-up on each target whose answers are
// compared, then the interleaved timed runs, then the hit check.
func measure(ctx context.Context, o options, st statement, direct, proxied, explainer *pgconn.PgConn, duck *sql.DB, p *pgrollup) (dashResult, error) {
	r := dashResult{st: st}
	rollup, duckSQL, why, err := explainRollup(ctx, explainer, st.sql)
	if err != nil {
		return r, err
	}
	if rollup == "" {
		r.failed = "pgrollup does not answer it from a rollup:\n" + why
		return r, nil
	}
	r.rollup, r.duckSQL = rollup, duckSQL
	before, err := p.routeCounts(ctx)
	if err != nil {
		return r, err
	}

	want, err := execPG(ctx, direct, st.sql, o.protocol)
	if err != nil {
		return r, fmt.Errorf("[%d] directly: %w", st.id, err)
	}
	got, err := execPG(ctx, proxied, st.sql, o.protocol)
	if err != nil {
		r.failed = fmt.Sprintf("through pgrollup: %v", err)
		return r, nil
	}
	if diff := compareAnswers(want, got, st.ordered); diff != "" {
		r.failed = "pgrollup's answer differs from Postgres's: " + diff
		return r, nil
	}
	r.rows = len(want.rows)
	n, err := execDuck(ctx, duck, duckSQL)
	if err != nil {
		return r, fmt.Errorf("[%d] DuckDB alone: %w\n%s", st.id, err, duckSQL)
	}
	if n != r.rows {
		r.failed = fmt.Sprintf("DuckDB alone returned %d rows, Postgres %d", n, r.rows)
		return r, nil
	}

	// Interleaved runs: a burst of load from elsewhere on the machine then
	// hurts all three targets alike instead of one. pgrollup and DuckDB
	// alone take turns going first, so that neither always finds the
	// Parquet pages just read by the other; the slow direct runs are spread
	// evenly among them.
	var td, tp, tk []time.Duration
	timeRollup := func() error {
		t0 := time.Now()
		if _, err := execPG(ctx, proxied, st.sql, o.protocol); err != nil {
			return viaPgrollup{err}
		}
		tp = append(tp, time.Since(t0))
		return nil
	}
	timeDuck := func() error {
		t0 := time.Now()
		if _, err := execDuck(ctx, duck, duckSQL); err != nil {
			return err
		}
		tk = append(tk, time.Since(t0))
		return nil
	}
	every := max(1, o.fastRuns/o.runs)
	for i := 0; i < o.fastRuns || len(td) < o.runs; i++ {
		if i%every == 0 && len(td) < o.runs {
			t0 := time.Now()
			if _, err := execPG(ctx, direct, st.sql, o.protocol); err != nil {
				return r, err
			}
			td = append(td, time.Since(t0))
		}
		if i >= o.fastRuns {
			continue
		}
		first, second := timeRollup, timeDuck
		if i%2 == 1 {
			first, second = timeDuck, timeRollup
		}
		err := first()
		if err == nil {
			err = second()
		}
		if errors.As(err, new(viaPgrollup)) {
			// pgrollup's failure is the finding: report it and go on.
			r.failed = err.Error()
			return r, nil
		}
		if err != nil {
			return r, err
		}
	}
	r.direct, r.pgrollup, r.duck = benchkit.Median(td), benchkit.Median(tp), benchkit.Median(tk)

	want1 := float64(o.fastRuns + 1)
	d, err := p.settle(ctx, before, func(d routeCounts) bool { return d.rollup >= want1 && d.hits[rollup] >= want1 })
	if err != nil {
		return r, err
	}
	if d.rollup != want1 || d.hits[rollup] != want1 || d.passthrough != 0 || d.fallbacks != 0 || d.errors != 0 {
		r.failed = fmt.Sprintf("expected %.0f rollup hits on %s and nothing else in /metrics, got: %s", want1, rollup, d)
	}
	return r, nil
}

// viaPgrollup is an error of a statement sent through pgrollup.
type viaPgrollup struct{ err error }

func (e viaPgrollup) Error() string { return "through pgrollup: " + e.err.Error() }

// explainRollup asks pgrollup which rollup answers sql and with which DuckDB
// SQL; rollup is "" when none does, and why says why not.
func explainRollup(ctx context.Context, conn *pgconn.PgConn, sql string) (rollup, duckSQL, why string, err error) {
	results, err := conn.Exec(ctx, "EXPLAIN (ROLLUP) "+sql).ReadAll()
	if err != nil {
		return "", "", "", fmt.Errorf("EXPLAIN (ROLLUP) through pgrollup: %w", err)
	}
	if len(results) != 1 || len(results[0].FieldDescriptions) != 4 {
		return "", "", "", fmt.Errorf("EXPLAIN (ROLLUP) through pgrollup: unexpected result (%d results)", len(results))
	}
	var reasons []string
	for _, row := range results[0].Rows {
		name, decision, reason := string(row[0]), string(row[1]), string(row[2])
		if decision == "chosen" {
			return name, string(row[3]), "", nil
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s: %s", orDash(name), decision, reason))
	}
	return "", "", strings.Join(reasons, "\n"), nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// answer is a result in text format, as the client received it.
type answer struct {
	fields []pgconn.FieldDescription
	rows   [][][]byte
	tag    string
}

// execPG runs sql in one round trip: a Query message (simple), or
// Parse/Bind/Describe/Execute/Sync of an unnamed statement (extended, as
// pgjdbc sends a statement it has not prepared yet). All rows are read and
// copied, as a client would.
func execPG(ctx context.Context, conn *pgconn.PgConn, sql, protocol string) (answer, error) {
	var r *pgconn.Result
	if protocol == "simple" {
		results, err := conn.Exec(ctx, sql).ReadAll()
		if err != nil {
			return answer{}, err
		}
		if len(results) != 1 {
			return answer{}, fmt.Errorf("%d results for one statement", len(results))
		}
		r = results[0]
	} else {
		r = conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	}
	if r.Err != nil {
		return answer{}, r.Err
	}
	return answer{fields: r.FieldDescriptions, rows: r.Rows, tag: r.CommandTag.String()}, nil
}

// execDuck runs sql on DuckDB and scans every row into Go values, the work
// pgrollup's executor does before encoding them; it returns the row count.
func execDuck(ctx context.Context, db *sql.DB, sql string) (int, error) {
	rows, err := db.QueryContext(ctx, sql)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// compareAnswers returns "" when got equals want: the same columns (name,
// type, typmod, size, table and column of origin), the same command tag,
// and the same rows byte for byte in text format (in order when ordered).
func compareAnswers(want, got answer, ordered bool) string {
	if len(want.fields) != len(got.fields) {
		return fmt.Sprintf("%d columns, Postgres has %d", len(got.fields), len(want.fields))
	}
	for i, w := range want.fields {
		g := got.fields[i]
		if w.Name != g.Name || w.DataTypeOID != g.DataTypeOID || w.TypeModifier != g.TypeModifier ||
			w.DataTypeSize != g.DataTypeSize || w.TableOID != g.TableOID || w.TableAttributeNumber != g.TableAttributeNumber || w.Format != g.Format {
			return fmt.Sprintf("column %d is %s, Postgres says %s", i+1, describeField(g), describeField(w))
		}
	}
	if want.tag != got.tag {
		return fmt.Sprintf("command tag %q, Postgres says %q", got.tag, want.tag)
	}
	wr, gr := rowStrings(want.rows), rowStrings(got.rows)
	if !ordered {
		sort.Strings(wr)
		sort.Strings(gr)
	}
	for i := range wr {
		if i >= len(gr) {
			break
		}
		if wr[i] != gr[i] {
			return fmt.Sprintf("row %d is %s, Postgres says %s", i+1, gr[i], wr[i])
		}
	}
	if len(wr) != len(gr) {
		return fmt.Sprintf("%d rows, Postgres has %d", len(gr), len(wr))
	}
	return ""
}

func describeField(f pgconn.FieldDescription) string {
	return fmt.Sprintf("%q (type %d, typmod %d, size %d, table %d column %d, format %d)",
		f.Name, f.DataTypeOID, f.TypeModifier, f.DataTypeSize, f.TableOID, f.TableAttributeNumber, f.Format)
}

// rowStrings renders rows for comparison and messages; NULL differs from every text.
func rowStrings(rows [][][]byte) []string {
	out := make([]string, len(rows))
	for i, row := range rows {
		var b bytes.Buffer
		b.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				fmt.Fprintf(&b, "%q", v)
			}
		}
		b.WriteByte(')')
		out[i] = b.String()
	}
	return out
}

func printDashboard(rep *dashboardReport) {
	fmt.Printf("\nDashboard: median of %d runs directly, of %d through pgrollup and on DuckDB alone, %s protocol; load average %s before, %s after\n\n",
		rep.runs, rep.fastRuns, rep.protocol, rep.load, rep.loadEnd)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tstatement\trollup\trows\tdirect ms\tpgrollup ms\tduckdb ms\tspeed-up\tpgrollup/duckdb\tpgrollup-duckdb ms\t≤1.5×duckdb+1ms\t")
	for _, r := range rep.results {
		if r.failed != "" {
			fmt.Fprintf(tw, "%d\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\tFAILED\t\n", r.st.id, r.st.label, orDash(r.rollup))
			continue
		}
		goal := "yes"
		if r.pgrollup > r.overheadBound() {
			goal = "no"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.1f\t%.3f\t%.3f\t%.0f×\t%.2f×\t%+.3f\t%s\t\n",
			r.st.id, r.st.label, r.rollup, r.rows, benchkit.MS(r.direct), benchkit.MS(r.pgrollup), benchkit.MS(r.duck),
			r.speedup(), benchkit.MS(r.pgrollup)/benchkit.MS(r.duck), benchkit.MS(r.pgrollup)-benchkit.MS(r.duck), goal)
	}
	tw.Flush()
}

// dashboardVerdict is the two goals' lines for the summary.
func dashboardVerdict(rep *dashboardReport) []string {
	var speedups []float64
	var worst *dashResult
	for i := range rep.results {
		r := &rep.results[i]
		if r.failed != "" {
			continue
		}
		speedups = append(speedups, r.speedup())
		// Worst: the statement closest to (or furthest past) the bound.
		if worst == nil || benchkit.MS(r.pgrollup)/benchkit.MS(r.overheadBound()) > benchkit.MS(worst.pgrollup)/benchkit.MS(worst.overheadBound()) {
			worst = r
		}
	}
	if worst == nil {
		return []string{"Dashboard: no statement has figures"}
	}
	med := benchkit.Median(speedups)
	lines := []string{fmt.Sprintf("Median speed-up over Postgres: %.0f× over %d statements (goal ≥ 100×): %s",
		med, len(speedups), benchkit.PassMiss(med >= 100))}
	lines = append(lines, fmt.Sprintf("Worst overhead over DuckDB alone: [%d] %s: pgrollup %.3f ms vs DuckDB %.3f ms = %.2f× (%+.3f ms); goal ≤ 1.5 × %.3f + 1 = %.3f ms: %s",
		worst.st.id, worst.st.label, benchkit.MS(worst.pgrollup), benchkit.MS(worst.duck), benchkit.MS(worst.pgrollup)/benchkit.MS(worst.duck),
		benchkit.MS(worst.pgrollup)-benchkit.MS(worst.duck), benchkit.MS(worst.duck), benchkit.MS(worst.overheadBound()), benchkit.PassMiss(worst.pgrollup <= worst.overheadBound())))
	return lines
}
