package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// statement is one tile of the scripted dashboard.
type statement struct {
	title string
	sql   string
}

// dashboard is what a BI tool would send for a small sales dashboard. Every
// statement but the last is one the rewrite engine answers from a rollup
// (demo/main_test.go checks that offline, with `pgrollup explain`'s engine);
// the last needs a column no rollup has and shows an honest passthrough.
// All have ORDER BY, so that the answers compare row by row.
var dashboard = []statement{
	{"Revenue and orders by month",
		`SELECT date_trunc('month', created_at) AS month, sum(amount) AS revenue, count(*) AS orders FROM orders GROUP BY 1 ORDER BY 1`},
	{"Orders by status",
		`SELECT status, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY status ORDER BY orders DESC`},
	{"Revenue by country",
		`SELECT c.country, sum(o.amount) AS revenue FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY c.country ORDER BY revenue DESC NULLS LAST`},
	{"Revenue by product category",
		`SELECT p.category, sum(o.amount) AS revenue, count(*) AS orders FROM orders o LEFT JOIN products p ON o.product_id = p.id GROUP BY p.category ORDER BY revenue DESC NULLS LAST`},
	{"Last 30 days by status",
		`SELECT status, count(*) AS orders, avg(amount) AS avg_amount FROM orders WHERE created_at >= date_trunc('day', now()) - interval '30 days' GROUP BY status ORDER BY orders DESC`},
	{"Average order per quarter and country",
		`SELECT date_trunc('quarter', o.created_at) AS quarter, c.country, avg(o.amount) AS avg_amount FROM orders o LEFT JOIN customers c ON o.customer_id = c.id GROUP BY 1, 2 ORDER BY 1, 2`},
	{"Customers per month and country",
		`SELECT date_trunc('month', o.created_at) AS month, c.country, count(DISTINCT o.customer_id) AS customers FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE o.status <> 'cancelled' GROUP BY 1, 2 ORDER BY 1, 2`},
	{"Status filter drop-down",
		`SELECT DISTINCT status FROM orders ORDER BY 1`},
	{"Top 5 categories, last 90 days",
		`SELECT p.category, sum(o.amount) AS revenue FROM orders o LEFT JOIN products p ON o.product_id = p.id WHERE o.created_at >= date_trunc('day', now()) - interval '90 days' GROUP BY 1 HAVING sum(o.amount) > 1000 ORDER BY 2 DESC LIMIT 5`},
	{"Orders by hour of day",
		`SELECT extract(hour FROM created_at) AS hour, count(*) AS orders FROM orders GROUP BY 1 ORDER BY 1`},
	{"Daily revenue, last 14 days",
		`SELECT created_at::date AS day, sum(amount) AS revenue FROM orders WHERE created_at >= date_trunc('day', now()) - interval '14 days' GROUP BY 1 ORDER BY 1`},
	{"Top 10 customers (no rollup has them)",
		`SELECT customer_id, sum(amount) AS revenue FROM orders GROUP BY customer_id ORDER BY revenue DESC NULLS LAST, customer_id LIMIT 10`},
}

// outcome is one statement run both ways.
type outcome struct {
	statement
	route, rollup, reason string
	direct, proxied       time.Duration // medians
	proxiedFirst          time.Duration // the first run through pgrollup, before its result cache has the answer
	same                  bool
	diff                  string
}

// runDashboard runs every statement directly and through pgrollup, runs
// times each, in the simple protocol as psql does, and compares the answers.
func runDashboard(ctx context.Context, directURL, proxyURL string, runs int) ([]outcome, error) {
	direct, err := pgx.Connect(ctx, directURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer direct.Close(context.Background())
	proxied, err := pgx.Connect(ctx, proxyURL)
	if err != nil {
		return nil, fmt.Errorf("connecting through pgrollup: %w", err)
	}
	defer proxied.Close(context.Background())

	var out []outcome
	for i, st := range dashboard {
		fmt.Printf("    [%2d/%d] %s\n", i+1, len(dashboard), st.title)
		o := outcome{statement: st}
		if o.route, o.rollup, o.reason, err = explain(ctx, proxied, st.sql); err != nil {
			return nil, fmt.Errorf("EXPLAIN (ROLLUP) %s: %w", st.title, err)
		}
		var want, got []string
		if o.direct, _, want, err = timeRuns(ctx, direct, st.sql, runs); err != nil {
			return nil, fmt.Errorf("%s, directly: %w", st.title, err)
		}
		if o.proxied, o.proxiedFirst, got, err = timeRuns(ctx, proxied, st.sql, runs); err != nil {
			return nil, fmt.Errorf("%s, through pgrollup: %w", st.title, err)
		}
		// Every run through pgrollup, the cached ones too, against the
		// warehouse's first answer.
		o.same = true
		for _, g := range got {
			if g != want[0] {
				o.same, o.diff = false, firstDifference(want[0], g)
				break
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// explain asks pgrollup how it routes sql: EXPLAIN (ROLLUP) returns a row
// per candidate rollup, the chosen one marked, or one passthrough row.
func explain(ctx context.Context, conn *pgx.Conn, sql string) (route, rollup, reason string, err error) {
	rows, err := conn.Query(ctx, "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", "", "", err
	}
	defer rows.Close()
	route = "passthrough"
	for rows.Next() {
		var name, sqlText *string
		var decision, why string
		if err := rows.Scan(&name, &decision, &why, &sqlText); err != nil {
			return "", "", "", err
		}
		if decision == "chosen" && name != nil {
			route, rollup = "rollup", *name
		}
		if reason == "" && decision != "match" {
			reason = why
		}
	}
	if route == "rollup" {
		reason = ""
	}
	return route, rollup, reason, rows.Err()
}

// timeRuns runs sql runs times and returns the median time, the first
// run's time and every run's answer as text: column names and types, then
// the rows.
func timeRuns(ctx context.Context, conn *pgx.Conn, sql string, runs int) (median, first time.Duration, answers []string, err error) {
	times := make([]time.Duration, 0, runs)
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		text, err := queryText(ctx, conn, sql)
		if err != nil {
			return 0, 0, nil, err
		}
		times = append(times, time.Since(t0))
		answers = append(answers, text)
	}
	first = times[0]
	slices.Sort(times)
	return times[len(times)/2], first, answers, nil
}

// queryText renders an answer as Postgres sent it: in the simple protocol
// every value is text, so equal text is the same answer byte for byte.
func queryText(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for _, f := range rows.FieldDescriptions() {
		fmt.Fprintf(&b, "%s(%d) ", f.Name, f.DataTypeOID)
	}
	for rows.Next() {
		b.WriteString("\n")
		for _, v := range rows.RawValues() {
			if v == nil {
				b.WriteString("NULL|")
			} else {
				b.Write(v)
				b.WriteString("|")
			}
		}
	}
	return b.String(), rows.Err()
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: PostgreSQL %q, pgrollup %q", i+1, a, b)
		}
	}
	return ""
}

// printTable prints the side-by-side comparison.
func printTable(out []outcome, runs int) {
	fmt.Println()
	fmt.Printf("  %-2s  %-38s %-11s %-31s %9s %9s %8s  %s\n", "#", "statement", "route", "rollup", "direct", "pgrollup", "speed-up", "answer")
	var totalDirect, totalProxied, totalFirst time.Duration
	var wrong []outcome
	for i, o := range out {
		totalDirect += o.direct
		totalProxied += o.proxied
		totalFirst += o.proxiedFirst
		rollup := o.rollup
		if o.route != "rollup" {
			rollup = "(" + reasonCode(o.reason) + ")"
		}
		answer := "same"
		if !o.same {
			answer = "DIFFERENT"
			wrong = append(wrong, o)
		}
		fmt.Printf("  %-2d  %-38s %-11s %-31s %9s %9s %8s  %s\n", i+1, clipText(o.title, 38), o.route, clipText(rollup, 31),
			duration(o.direct), duration(o.proxied), speedup(o.direct, o.proxied), answer)
	}
	fmt.Printf("  %-2s  %-38s %-11s %-31s %9s %9s %8s\n", "", "whole dashboard", "", "", duration(totalDirect), duration(totalProxied), speedup(totalDirect, totalProxied))
	fmt.Printf("\n  Median of %d runs each, in the simple protocol as psql sends it, on this machine.\n", runs)
	fmt.Println("  \"same\": the same column names, types and rows, byte for byte as text, in every run.")
	fmt.Printf("  Later runs of a rollup statement come from pgrollup's result cache (routing.result_cache_bytes).\n"+
		"  First runs only, before the cache held any answer: the whole dashboard in %s (%s).\n",
		duration(totalFirst), speedup(totalDirect, totalFirst))
	for _, o := range wrong {
		fmt.Printf("\n  WRONG ANSWER from pgrollup for %q (please report it):\n    %s\n    %s\n", o.title, o.sql, o.diff)
	}
}

// reasonCode is the stable code at the start of a reason ("not_a_dimension: ...").
func reasonCode(reason string) string {
	code, _, _ := strings.Cut(reason, ":")
	return code
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func duration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func speedup(direct, proxied time.Duration) string {
	if proxied <= 0 {
		return "-"
	}
	x := float64(direct) / float64(proxied)
	if x >= 10 {
		return fmt.Sprintf("%.0fx", x)
	}
	return fmt.Sprintf("%.1fx", x)
}

// hitRate reads pgrollup's /metrics and computes the dashboard's hit rate:
// statements answered from rollups over those answered from rollups or by
// the warehouse (admin statements such as EXPLAIN are neither).
func hitRate(ctx context.Context, admin string) (rollup, passthrough float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		for _, r := range []struct {
			label string
			dst   *float64
		}{{`pgrollup_queries_total{route="rollup"} `, &rollup}, {`pgrollup_queries_total{route="passthrough"} `, &passthrough}} {
			if v, ok := strings.CutPrefix(line, r.label); ok {
				if *r.dst, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	return rollup, passthrough, sc.Err()
}
