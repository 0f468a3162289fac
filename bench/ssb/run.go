package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/promtext"
)

// endpoints are what the runner talks to: Postgres directly, pgrollup in
// front of it, and pgrollup's admin listener (for /metrics).
type endpoints struct {
	direct, proxied string // client DSNs, the same role and database
	adminURL        string // http://host:port
}

// result is one query's outcome.
type result struct {
	q        query
	postgres time.Duration // median of the runs directly on Postgres
	pgrollup time.Duration // median of the runs through pgrollup
	rows     int
	// chosen is the rollup EXPLAIN (ROLLUP) chose, or "" when the statement
	// passes through; reason then says why.
	chosen, reason string
	// hits is the rise of pgrollup_rollup_hits_total over the query's runs
	// through pgrollup, of executions answered from a rollup.
	hits, executions int
	// diff is "" when pgrollup's answer equals Postgres's.
	diff string
}

// served reports whether every execution through pgrollup was answered
// from a rollup.
func (r result) served() bool { return r.chosen != "" && r.hits == r.executions }

func (r result) speedup() float64 { return r.postgres.Seconds() / r.pgrollup.Seconds() }

// runQueries runs each query once on both sides to compare the answers,
// then runs times more on each side, alternating, and takes the medians.
func runQueries(ctx context.Context, ep endpoints, runs int, progress func(format string, args ...any)) ([]result, error) {
	direct, err := pgconn.Connect(ctx, ep.direct)
	if err != nil {
		return nil, fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer direct.Close(context.Background())
	proxied, err := pgconn.Connect(ctx, ep.proxied)
	if err != nil {
		return nil, fmt.Errorf("connecting through pgrollup: %w", err)
	}
	defer proxied.Close(context.Background())
	var out []result
	for _, q := range queries {
		r := result{q: q, executions: 1 + runs}
		if r.chosen, r.reason, err = explain(ctx, proxied, q); err != nil {
			return nil, err
		}
		before, err := hits(ctx, ep.adminURL)
		if err != nil {
			return nil, err
		}
		want, err := execute(ctx, direct, q.sql)
		if err != nil {
			return nil, fmt.Errorf("%s on Postgres: %w", q.id, err)
		}
		got, err := execute(ctx, proxied, q.sql)
		if err != nil {
			return nil, fmt.Errorf("%s through pgrollup: %w", q.id, err)
		}
		r.rows, r.diff = len(want.Rows), compare(want, got, q.orderKeys)
		var pg, pr []time.Duration
		for range runs {
			for _, side := range []struct {
				conn  *pgconn.PgConn
				times *[]time.Duration
			}{{direct, &pg}, {proxied, &pr}} {
				t0 := time.Now()
				if _, err := execute(ctx, side.conn, q.sql); err != nil {
					return nil, fmt.Errorf("%s: %w", q.id, err)
				}
				*side.times = append(*side.times, time.Since(t0))
			}
		}
		r.postgres, r.pgrollup = benchkit.Median(pg), benchkit.Median(pr)
		// pgrollup counts a hit once it has sent the answer, which may be
		// a moment after the client read it.
		for deadline := time.Now().Add(2 * time.Second); ; {
			after, err := hits(ctx, ep.adminURL)
			if err != nil {
				return nil, err
			}
			r.hits = int(after - before)
			if r.hits >= r.executions || r.chosen == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		progress("%s  %8.1f ms  %8.1f ms  %s", q.id, benchkit.MS(r.postgres), benchkit.MS(r.pgrollup), r.status())
		out = append(out, r)
	}
	return out, nil
}

// explain asks pgrollup, on the client's own session, which rollup answers
// q; when none does, reason is the decision of the rollup declared for q,
// else the statement's own reason.
func explain(ctx context.Context, conn *pgconn.PgConn, q query) (chosen, reason string, err error) {
	res := conn.ExecParams(ctx, "EXPLAIN (ROLLUP) "+q.sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", "", fmt.Errorf("EXPLAIN (ROLLUP) %s: %w", q.id, res.Err)
	}
	var other []string
	for _, row := range res.Rows {
		if len(row) < 3 {
			return "", "", fmt.Errorf("EXPLAIN (ROLLUP) %s: %d columns", q.id, len(row))
		}
		name, decision, why := string(row[0]), string(row[1]), string(row[2])
		switch {
		case decision == "chosen":
			return name, "", nil
		case name == q.rollup:
			reason = why
		case why != "":
			other = append(other, why)
		}
	}
	if reason == "" && len(other) > 0 {
		reason = other[0]
	}
	return "", reason, nil
}

// hits is pgrollup_rollup_hits_total summed over its labels.
func hits(ctx context.Context, adminURL string) (float64, error) {
	body, err := proc.Get(ctx, adminURL+"/metrics")
	if err != nil {
		return 0, err
	}
	series, err := promtext.Parse(body)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	var total float64
	for name, v := range series {
		if strings.HasPrefix(name, "pgrollup_rollup_hits_total{") {
			total += v
		}
	}
	return total, nil
}

// execute runs sql with the extended protocol, as pgjdbc and pgx send a
// statement, with text results, and reads every row.
func execute(ctx context.Context, conn *pgconn.PgConn, sql string) (*pgconn.Result, error) {
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	return res, res.Err
}

// compare returns "" when got is want: the same column names, types and
// type modifiers, and the same rows byte for byte in text format, in the
// same order where orderKeys (the ORDER BY's columns) fix it.
func compare(want, got *pgconn.Result, orderKeys []int) string {
	if len(want.FieldDescriptions) != len(got.FieldDescriptions) {
		return fmt.Sprintf("%d columns, Postgres has %d", len(got.FieldDescriptions), len(want.FieldDescriptions))
	}
	for i, w := range want.FieldDescriptions {
		g := got.FieldDescriptions[i]
		if w.Name != g.Name || w.DataTypeOID != g.DataTypeOID || w.TypeModifier != g.TypeModifier {
			return fmt.Sprintf("column %d is %q of type %d(%d), Postgres's %q of type %d(%d)",
				i+1, g.Name, g.DataTypeOID, g.TypeModifier, w.Name, w.DataTypeOID, w.TypeModifier)
		}
	}
	if len(want.Rows) != len(got.Rows) {
		return fmt.Sprintf("%d rows, Postgres has %d", len(got.Rows), len(want.Rows))
	}
	render := func(rows [][][]byte, cols []int) []string {
		out := make([]string, len(rows))
		for i, row := range rows {
			var parts []string
			for j, v := range row {
				if cols != nil && !slices.Contains(cols, j) {
					continue
				}
				if v == nil {
					parts = append(parts, "NULL")
				} else {
					parts = append(parts, fmt.Sprintf("%q", v))
				}
			}
			out[i] = "(" + strings.Join(parts, ", ") + ")"
		}
		return out
	}
	// Rows tied on the ORDER BY may come in any order: the rows must be the
	// same set, and the ORDER BY's columns the same sequence.
	w, g := render(want.Rows, nil), render(got.Rows, nil)
	slices.Sort(w)
	slices.Sort(g)
	for i := range w {
		if w[i] != g[i] {
			return fmt.Sprintf("row %s is not in Postgres's answer (sorted, row %d is %s there)", g[i], i+1, w[i])
		}
	}
	if orderKeys != nil {
		w, g = render(want.Rows, orderKeys), render(got.Rows, orderKeys)
		for i := range w {
			if w[i] != g[i] {
				return fmt.Sprintf("row %d is ordered by %s, Postgres's by %s", i+1, g[i], w[i])
			}
		}
	}
	return ""
}

func (r result) status() string {
	s := "served by " + r.chosen
	switch {
	case r.chosen == "":
		s = "passthrough: " + r.reason
	case r.hits != r.executions:
		s = fmt.Sprintf("chosen %s, but %d of %d executions answered from it", r.chosen, r.hits, r.executions)
	}
	if r.diff != "" {
		s = "DIFFERENT ANSWER: " + r.diff + "; " + s
	}
	return s
}

// printTable writes the per-query table in Markdown.
func printTable(w io.Writer, results []result) {
	fmt.Fprintln(w, "| query | rows | Postgres ms | pgrollup ms | speed-up | equal | served from a rollup, or why not |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- | --- |")
	for _, r := range results {
		equal := "yes"
		if r.diff != "" {
			equal = "NO"
		}
		status := r.status()
		if r.diff == "" && r.served() {
			status = "yes: " + r.chosen
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f× | %s | %s |\n", r.q.id, r.rows, benchkit.MS(r.postgres), benchkit.MS(r.pgrollup), r.speedup(), equal, strings.ReplaceAll(status, "|", `\|`))
	}
}
