package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lambda rollups: a build holds the rows below its cutoff, and every answer
// adds the warehouse's rows at or above it, so answers equal Postgres's
// right after inserts, with late rows, in any time zone, and with
// pgrollup.max_staleness = 0.

const lambdaDB = "lambdadb"

// lambdaFixture fills two like tables with rows over the last three days
// (and a few without a time), relative to now so that every build's cutoff
// falls among them.
const lambdaFixture = `
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz, status text NOT NULL, amount numeric(12,2), qty integer);
INSERT INTO events (created_at, status, amount, qty)
SELECT now() - g * interval '7 minutes' - interval '13 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3],
       CASE WHEN g % 11 = 0 THEN NULL ELSE round((g * 3.37) % 500, 2) END, g % 9
FROM generate_series(0, 620) g;
INSERT INTO events (created_at, status, amount, qty) VALUES (NULL, 'paid', 5.00, 1), (NULL, 'lost', 7.25, 2);
-- Every two seconds around the first build's cutoff (an hour back), so the
-- bucket holding it has rows on both sides of it.
INSERT INTO events (created_at, status, amount, qty)
SELECT now() - interval '50 minutes' - g * interval '2 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3], (g % 97) * 1.01, g % 5
FROM generate_series(0, 600) g;
CREATE TABLE events_p (LIKE events INCLUDING ALL);
INSERT INTO events_p SELECT * FROM events;
CREATE TABLE events_m (LIKE events INCLUDING ALL);
INSERT INTO events_m SELECT * FROM events;
CREATE TABLE events_i (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created_at timestamptz, status text NOT NULL, amount numeric(12,2), qty integer);
INSERT INTO events_i (created_at, status, amount, qty) SELECT created_at, status, amount, qty FROM events ORDER BY id;
CREATE TABLE events_ip (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2), qty integer);
INSERT INTO events_ip (created_at, status, amount, qty) SELECT created_at, status, amount, qty FROM events WHERE created_at IS NOT NULL ORDER BY id;
-- For "exact edges across a DST change": March 2025, across New York's
-- change to DST (9 March, 07:00 UTC) and Berlin's (30 March, 01:00 UTC),
-- and late October 2025, across the changes back; rows a microsecond around
-- those instants and around the bounds of the subtest's ranges in each of
-- its zones; a few rows near now and without a time.
CREATE TABLE events_dst (id serial PRIMARY KEY, created_at timestamptz, status text NOT NULL, amount numeric(12,2), qty integer);
CREATE INDEX ON events_dst (created_at);
INSERT INTO events_dst (created_at, status, amount, qty)
SELECT timestamptz '2025-03-01 00:00:00+00' + g * interval '29 minutes 13 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3],
       CASE WHEN g % 11 = 0 THEN NULL ELSE round((g * 3.37) % 500, 2) END, g % 9
FROM generate_series(0, 1750) g;
-- Around the changes back, on 26 October (Berlin) and 2 November (New York).
INSERT INTO events_dst (created_at, status, amount, qty)
SELECT timestamptz '2025-10-24 00:00:00+00' + g * interval '29 minutes 13 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3], round((g * 1.91) % 300, 2), g % 7
FROM generate_series(0, 600) g;
INSERT INTO events_dst (created_at, status, amount, qty)
SELECT at + s * interval '1 microsecond', (ARRAY['new','paid','shipped'])[2 + s], 10 + s, 1 + s
FROM (SELECT local::timestamp AT TIME ZONE zone AS at
      FROM unnest(ARRAY['2025-03-08 00:00', '2025-03-10 23:59:59.999', '2025-03-29 00:00', '2025-03-31 23:59:59.999',
                        '2025-03-09 00:00', '2025-03-10 00:00', '2025-03-30 00:00', '2025-03-31 00:00',
                        '2025-03-09 02:30', '2025-03-30 02:30', '2025-10-26 02:30', '2025-11-02 01:30']) local,
           unnest(ARRAY['UTC', 'America/New_York', 'Europe/Berlin']) zone
      UNION ALL
      SELECT unnest(ARRAY[timestamptz '2025-03-09 07:00+00', '2025-03-30 01:00+00', '2025-03-08 10:17+00', '2025-03-10 22:41:13.5+00',
                          '2025-03-29 10:17+00', '2025-03-31 22:41:13.5+00'])) b,
     generate_series(-1, 1) s;
INSERT INTO events_dst (created_at, status, amount, qty)
SELECT now() - g * interval '17 minutes', (ARRAY['new','paid'])[1 + g % 2], g % 40, g % 5 FROM generate_series(0, 200) g;
INSERT INTO events_dst (created_at, status, amount, qty) VALUES (NULL, 'paid', 5.00, 1), (NULL, 'lost', 7.25, 2);
CREATE TABLE events_dst_d (LIKE events_dst INCLUDING ALL);
INSERT INTO events_dst_d SELECT * FROM events_dst;
`

// The cutoffs of the lambda rollups over events_dst and events_dst_d: a
// late_window reaching back from the start of the test to these instants
// puts their builds' cutoffs (a few seconds later) inside the day New York
// changes to DST, and the day Berlin does, so that the ranges across those
// days have whole buckets on both sides of the cutoff. (Cutoffs near now,
// with such ranges wholly below them, are "exact edges"'s.)
var (
	lambdaDSTCutoffHour = time.Date(2025, 3, 9, 13, 20, 0, 0, time.UTC)
	lambdaDSTCutoffDay  = time.Date(2025, 3, 30, 10, 20, 0, 0, time.UTC)
)

func lambdaRollups() []map[string]any {
	measures := []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)", "sum(qty)", "count(qty)"}
	return []map[string]any{
		{
			"name": "events_lambda", "table": "public.events",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": measures,
			"lambda":   map[string]any{"column": "created_at", "late_window": "1h"},
		},
		{
			// Partitioned, and rebuilt incrementally every few seconds
			// while the test inserts: each build reads the rows from the
			// previous cutoff on and merges them with the previous
			// version's partition (rollup/lambda_merge.go).
			"name": "events_p_lambda", "table": "public.events_p",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"partition_granularity": "day",
			"measures":              measures,
			"lambda":                map[string]any{"column": "created_at", "late_window": "30m"},
			"refresh":               map[string]any{"every": "3s", "incremental": true},
		},
		{
			// On an increasing id column, rebuilt every few seconds.
			"name": "events_i_lambda", "table": "public.events_i",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": measures,
			"lambda":   map[string]any{"column": "id"},
			"refresh":  map[string]any{"every": "3s"},
		},
		{
			// On an id column, partitioned, rebuilt incrementally: new ids
			// with old times reach back past update_window.
			"name": "events_ip_lambda", "table": "public.events_ip",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"partition_granularity": "day",
			"measures":              measures,
			"lambda":                map[string]any{"column": "id", "late_ids": 2},
			"refresh":               map[string]any{"every": "3s", "incremental": true, "update_window": "1h"},
		},
		{
			// An ordinary rollup and a lambda rollup over one table: the
			// ordinary one answers while fresh enough for the session.
			"name": "events_m_plain", "table": "public.events_m",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": measures,
		},
		{
			"name": "events_m_lambda", "table": "public.events_m",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": measures,
			"lambda":   map[string]any{"column": "created_at", "late_window": "1h"},
		},
		{
			"name": "events_dst_lambda", "table": "public.events_dst",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": measures,
			"lambda":   map[string]any{"column": "created_at", "late_window": fmt.Sprintf("%ds", int64(time.Since(lambdaDSTCutoffHour).Seconds()))},
		},
		{
			"name": "events_dst_d_lambda", "table": "public.events_dst_d",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": measures,
			"lambda":   map[string]any{"column": "created_at", "late_window": fmt.Sprintf("%ds", int64(time.Since(lambdaDSTCutoffDay).Seconds()))},
		},
	}
}

// lambdaStatements are the dashboard statements over table, each answered
// from its lambda rollup.
func lambdaStatements(table string) []string {
	return []string{
		"SELECT status, sum(amount), count(*), avg(amount), min(amount), max(amount), sum(qty), avg(qty) FROM " + table + " GROUP BY status ORDER BY status",
		"SELECT count(*), sum(amount), avg(amount) FROM " + table,
		"SELECT date_trunc('hour', created_at) AS h, count(*) AS n, sum(amount) AS total FROM " + table + " WHERE created_at >= date_trunc('hour', now()) - interval '1 day' GROUP BY 1 ORDER BY 1",
		"SELECT date_trunc('day', created_at) AS d, count(DISTINCT status) AS statuses, max(amount) FROM " + table + " GROUP BY 1 ORDER BY 1",
		"SELECT status, to_char(sum(amount), 'FM999999990.00') AS total FROM " + table + " WHERE status <> 'new' GROUP BY status HAVING count(*) > 1 ORDER BY 2 DESC",
	}
}

func TestLambdaRollups(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	p := startSuiteProxy(t, ctx, "lambda", lambdaDB, lambdaFixture, lambdaRollups())
	direct := connect(t, ctx, directDSN(userScram, lambdaDB))
	via := connect(t, ctx, p.DSN(userScram, lambdaDB))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}

	// check runs every statement over table both ways in both protocols,
	// requires equal answers, and that each was a lambda hit when served.
	check := func(t *testing.T, direct, via *pgx.Conn, table string, served bool) {
		t.Helper()
		for _, sql := range lambdaStatements(table) {
			for _, mode := range modes {
				lambdaCheck(t, ctx, p, direct, via, mode, sql, served)
			}
		}
	}
	exec := func(t *testing.T, conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// at is the literal of instant t.
	at := func(t time.Time) string {
		return "timestamptz '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'"
	}
	insert := func(t *testing.T, table, at string) {
		t.Helper()
		exec(t, direct, fmt.Sprintf(`INSERT INTO %s (created_at, status, amount, qty)
SELECT %s, (ARRAY['new','paid','shipped','returned'])[1 + g %% 4], g * 1.25, g FROM generate_series(1, 7) g`, table, at))
	}

	t.Run("after the build", func(t *testing.T) {
		check(t, direct, via, "events", true)
		check(t, direct, via, "events_p", true)
		check(t, direct, via, "events_i", true)
		check(t, direct, via, "events_ip", true)
	})
	t.Run("inserts answered at once", func(t *testing.T) {
		for _, table := range []string{"events", "events_p", "events_i", "events_ip"} {
			insert(t, table, "now()")
			// A new group, only in the warehouse part.
			other := "NULL"
			if table == "events_ip" {
				other = "now() - interval '3 days'" // its times are NOT NULL
			}
			exec(t, direct, "INSERT INTO "+table+" (created_at, status, amount, qty) VALUES (now(), 'fresh', 1.10, 3), ("+other+", 'fresh', NULL, NULL)")
			check(t, direct, via, table, true)
		}
	})
	t.Run("a partial bucket at the cutoff", func(t *testing.T) {
		// The cutoff falls inside an hour: the rollup holds that hour's
		// rows below it, the warehouse part those at or above it, inserted
		// before the build or after it, in the same groups and new ones.
		cut := lambdaCutoffOf(t, ctx, via, "events")
		bucket := cut.Truncate(time.Hour)
		var below, above int
		if err := direct.QueryRow(ctx, `SELECT count(*) FILTER (WHERE created_at < $2), count(*) FILTER (WHERE created_at >= $2)
FROM events WHERE created_at >= $1 AND created_at < $1 + interval '1 hour'`, bucket, cut).Scan(&below, &above); err != nil {
			t.Fatal(err)
		}
		if cut.Sub(bucket) >= 2*time.Second && below == 0 || bucket.Add(time.Hour).Sub(cut) >= 2*time.Second && above == 0 {
			t.Fatalf("cutoff %s: %d rows of its hour below it and %d above before the build", cut, below, above)
		}
		t.Logf("cutoff %s: %d rows of its hour below it, %d at or above it before the inserts", cut, below, above)
		insert(t, "events", at(cut))
		insert(t, "events", at(cut.Add(bucket.Add(time.Hour).Sub(cut)/2)))
		exec(t, direct, "INSERT INTO events (created_at, status, amount, qty) VALUES ("+at(cut)+", 'partial', 2.50, 4)")
		check(t, direct, via, "events", true)
	})
	t.Run("late rows inside late_window", func(t *testing.T) {
		insert(t, "events", "now() - interval '50 minutes'")
		insert(t, "events_p", "now() - interval '20 minutes'")
		check(t, direct, via, "events", true)
		check(t, direct, via, "events_p", true)
		// New ids with old times: the id cutoff takes them, whatever their time.
		insert(t, "events_i", "now() - interval '2 days'")
		check(t, direct, via, "events_i", true)
	})
	t.Run("id cutoff while inserting", func(t *testing.T) {
		// events_i and events_ip rebuild every 3s: each version's cutoff
		// is an id, and events_ip's partitions are rebuilt from the
		// earliest time among the new ids.
		deadline := time.Now().Add(8 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			for _, table := range []string{"events_i", "events_ip"} {
				insert(t, table, fmt.Sprintf("now() - interval '%d hours'", (i*7)%60))
				check(t, direct, via, table, true)
			}
		}
		code, body, err := p.adminGet("/api/rollups/events_ip_lambda")
		if err != nil || code != 200 || !strings.Contains(string(body), `"incremental": true`) && !strings.Contains(string(body), `"incremental":true`) {
			t.Errorf("GET /api/rollups/events_ip_lambda: %d %v: no incremental version\n%s", code, err, body)
		}
	})
	t.Run("incremental rebuilds while inserting", func(t *testing.T) {
		// events_p rebuilds every 3s: answers stay exact across versions.
		deadline := time.Now().Add(8 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			insert(t, "events_p", fmt.Sprintf("now() - interval '%d minutes'", i%25))
			check(t, direct, via, "events_p", true)
		}
		code, body, err := p.adminGet("/api/rollups")
		if err != nil || code != 200 {
			t.Fatalf("GET /api/rollups: %d %v", code, err)
		}
		if !strings.Contains(string(body), "events_p_lambda") {
			t.Fatalf("no events_p_lambda in %s", body)
		}
		code, body, err = p.adminGet("/api/rollups/events_p_lambda")
		if err != nil || code != 200 || !strings.Contains(string(body), `"merged": true`) && !strings.Contains(string(body), `"merged":true`) {
			t.Errorf("GET /api/rollups/events_p_lambda: %d %v: no merged version\n%s", code, err, body)
		}
	})
	t.Run("time zones", func(t *testing.T) {
		for _, zone := range []string{"America/New_York", "Asia/Kolkata", "Europe/Berlin"} {
			for _, c := range []*pgx.Conn{direct, via} {
				exec(t, c, "SET TimeZone = '"+zone+"'")
			}
			for _, table := range []string{"events", "events_p"} {
				sql := "SELECT date_trunc('day', created_at) AS d, status, count(*), sum(amount) FROM " + table + " GROUP BY 1, 2 ORDER BY 1, 2"
				for _, mode := range modes {
					// Kolkata's days do not begin on a UTC hour: the warehouse answers.
					lambdaCheck(t, ctx, p, direct, via, mode, sql, zone != "Asia/Kolkata")
				}
			}
		}
		for _, c := range []*pgx.Conn{direct, via} {
			exec(t, c, "RESET TimeZone")
		}
	})
	t.Run("max_staleness 0", func(t *testing.T) {
		opt := connectOptions(t, ctx, p.DSN(userScram, lambdaDB), "-c pgrollup.max_staleness=0")
		insert(t, "events", "now()")
		check(t, direct, opt, "events", true)
		set := connect(t, ctx, p.DSN(userScram, lambdaDB))
		exec(t, set, "SET pgrollup.max_staleness = 0")
		check(t, direct, set, "events", true)
		exec(t, set, "SET pgrollup.max_staleness = '1ms'")
		check(t, direct, set, "events_p", true)
	})
	t.Run("first statements of a session with max_staleness 0", func(t *testing.T) {
		// The session's context, and with it its pgrollup.max_staleness,
		// is read before its first answers, and again after the catalog
		// changes: a statement that arrives before it is known is answered
		// by the lambda rollup (aligned, or at exact edges),
		// not by the ordinary one, which the bound 0 would then refuse,
		// sending the statement to the warehouse whole.
		statements := []string{
			"SELECT status, count(*), sum(amount), avg(amount) FROM events_m GROUP BY status ORDER BY status",
			"SELECT status, count(*), max(amount) FROM events_m WHERE created_at >= now() - interval '36 hours' GROUP BY status ORDER BY status",
		}
		login := 0
		for _, sql := range statements {
			for _, mode := range modes {
				// A login of its own (its startup parameters), whose
				// context no earlier session read.
				login++
				fresh := connectOptions(t, ctx, p.DSN(userScram, lambdaDB), fmt.Sprintf("-c pgrollup.max_staleness=0 -c statement_timeout=%d", 600000+login))
				lambdaCheck(t, ctx, p, direct, fresh, mode, sql, true) // the first statement
				lambdaCheck(t, ctx, p, direct, fresh, mode, sql, true) // the context known
				// A change to the catalog's privileges makes every
				// session's context unknown until it is read again (the
				// catalog is polled every second): the next statement is
				// the first of the new context.
				grant := "GRANT SELECT ON events_m TO PUBLIC"
				if login%2 == 0 {
					grant = "REVOKE SELECT ON events_m FROM PUBLIC"
				}
				exec(t, direct, grant)
				time.Sleep(2500 * time.Millisecond)
				lambdaCheck(t, ctx, p, direct, fresh, mode, sql, true)
			}
		}
		// Without the bound, the ordinary rollup answers.
		plain := connect(t, ctx, p.DSN(userScram, lambdaDB))
		for _, mode := range modes {
			hitCheck(t, ctx, p, direct, plain, mode, statements[0], "duckdb", true)
			hitCheck(t, ctx, p, direct, plain, mode, statements[1], "edges", true)
		}
	})
	t.Run("exact edges", func(t *testing.T) {
		// Ranges that cut through buckets, up to now or open to it: the
		// lambda rollup answers the whole buckets below its cutoff, the
		// warehouse the edges and the whole buckets' rows at or above it.
		fresh := connectOptions(t, ctx, p.DSN(userScram, lambdaDB), "-c pgrollup.max_staleness=0")
		stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999Z") }
		// Grafana's $__timeFilter: second precision, the upper bound about
		// now (after the rows inserted just before).
		grafanaRange := func() (lo, hi time.Time) {
			hi = time.Now().UTC().Truncate(time.Second).Add(1512 * time.Millisecond)
			return hi.Add(-6*time.Hour - 17*time.Second).Truncate(time.Second), hi
		}
		grafana := func(table string, lo, hi time.Time) string {
			return fmt.Sprintf("SELECT status, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM %s WHERE created_at BETWEEN '%s' AND '%s' GROUP BY status ORDER BY status", table, stamp(lo), stamp(hi))
		}
		statements := func(table string) []string {
			lo, hi := grafanaRange()
			return []string{
				grafana(table, lo, hi),
				fmt.Sprintf("SELECT date_trunc('hour', created_at) AS time, count(*) AS n, sum(amount) AS total FROM %s WHERE created_at BETWEEN '%s' AND '%s' GROUP BY 1 ORDER BY 1", table, stamp(lo), stamp(hi)),
				"SELECT status, count(*), sum(amount), count(DISTINCT status) FROM " + table + " WHERE created_at >= now() - interval '36 hours' GROUP BY status ORDER BY status",
				"SELECT count(*), sum(qty), avg(amount) FROM " + table + " WHERE created_at > localtimestamp - interval '2 days 5 minutes'",
				// Wholly below the cutoff (about an hour back): the warehouse
				// reads the edges only.
				fmt.Sprintf("SELECT status, count(*), sum(amount) FROM %s WHERE created_at BETWEEN '%s' AND '%s' GROUP BY status ORDER BY status", table, stamp(lo.Add(-30*time.Hour)), stamp(hi.Add(-3*time.Hour-7*time.Second))),
				// No lower bound.
				fmt.Sprintf("SELECT status, count(*) FROM %s WHERE created_at < '%s' GROUP BY status ORDER BY status", table, stamp(hi)),
			}
		}
		tables := []string{"events", "events_p", "events_i", "events_ip"}
		run := func(t *testing.T, via *pgx.Conn) {
			t.Helper()
			for _, table := range tables {
				for _, sql := range statements(table) {
					for _, mode := range modes {
						lambdaCheck(t, ctx, p, direct, via, mode, sql, true)
					}
				}
			}
		}
		run(t, fresh)
		run(t, via)
		// Rows inserted after the build inside the ranges, within each
		// rollup's contract: now, at the cutoff (which lies inside a
		// whole bucket), late ones within late_window (events_p is rebuilt
		// every 3s with a late_window of 30m), and, by id, any time.
		cut := lambdaCutoffOf(t, ctx, via, "events")
		for table, ats := range map[string][]string{
			"events":    {"now()", "timestamptz '" + cut.UTC().Format("2006-01-02 15:04:05.999999") + "+00'", "now() - interval '20 minutes'", "now() - interval '50 minutes'"},
			"events_p":  {"now()", "now() - interval '20 minutes'"},
			"events_i":  {"now()", "now() - interval '50 minutes'", "now() - interval '5 hours 1 minute'", "now() - interval '35 hours 59 minutes 50 seconds'"},
			"events_ip": {"now()", "now() - interval '50 minutes'", "now() - interval '5 hours 1 minute'", "now() - interval '35 hours 59 minutes 50 seconds'"},
		} {
			for _, at := range ats {
				insert(t, table, at)
			}
		}
		run(t, fresh)
		// In other time zones: the range is the session's, the buckets
		// are cut in build_timezone (Kolkata's midnight is no hour edge).
		for _, zone := range []string{"America/New_York", "Asia/Kolkata"} {
			for _, c := range []*pgx.Conn{direct, fresh} {
				exec(t, c, "SET TimeZone = '"+zone+"'")
			}
			day := time.Now().Add(-24 * time.Hour).Format("2006-01-02")
			for _, sql := range []string{
				"SELECT status, count(*), sum(amount) FROM events WHERE created_at >= '" + day + "T00:00:00.000' AND created_at <= '" + time.Now().Add(24*time.Hour).Format("2006-01-02") + "T23:59:59.999' GROUP BY status ORDER BY status",
				"SELECT status, count(*) FROM events_i WHERE created_at >= localtimestamp - interval '36 hours' GROUP BY status ORDER BY status",
			} {
				for _, mode := range modes {
					lambdaCheck(t, ctx, p, direct, fresh, mode, sql, true)
				}
			}
		}
		for _, c := range []*pgx.Conn{direct, fresh} {
			exec(t, c, "RESET TimeZone")
		}
		// EXPLAIN (ROLLUP) and pgrollup explain show the split and the cutoff.
		sql := statements("events")[0]
		rows, err := fresh.Query(ctx, "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		split := "events_lambda (lambda) answers the partial aggregates of the rows below its cutoff " + cut.UTC().Format(time.RFC3339Nano) + " in the whole hour buckets of created_at in ["
		if out := renderRows(rows); !strings.Contains(out, split) || !strings.Contains(out, "at or above the cutoff") {
			t.Errorf("EXPLAIN (ROLLUP) does not show the split at the edges and the cutoff %q:\n%s", split, out)
		}
		for _, where := range []string{"--warehouse=" + env.pg.DSN(lambdaDB), "--offline"} {
			e := cliExplain(t, "lambda", where, sql)
			if e.Route != "lambda" || e.Split == nil || e.Split.Rollup != "events_lambda" || !strings.Contains(e.Split.Explanation, "(lambda) answers the partial aggregates of the rows below its cutoff (the one its build records) in the whole hour buckets") {
				t.Errorf("pgrollup explain %s: %+v", where, e)
			}
		}
		// A row below the cutoff inserted after the build is outside the
		// contract, except in a partial bucket at the range's edge, which
		// the warehouse reads whole: the answer has it. (Last: it stays
		// below the cutoff of events_lambda, which is not rebuilt.)
		lo, hi := grafanaRange()
		if at := lo.Add(time.Second); at.Truncate(time.Hour).Equal(lo.Truncate(time.Hour)) && at.Before(cut) {
			insert(t, "events", "timestamptz '"+at.Format("2006-01-02 15:04:05")+"+00'")
			for _, mode := range modes {
				lambdaCheck(t, ctx, p, direct, fresh, mode, grafana("events", lo, hi), true)
			}
		}
	})

	t.Run("exact edges in the session's context", func(t *testing.T) {
		// The same split, in a transaction that wrote a row the rollup
		// cannot hold, and where the statement's table is another one
		// (search_path): the warehouse answers whole, equal to Postgres.
		fresh := connectOptions(t, ctx, p.DSN(userScram, lambdaDB), "-c pgrollup.max_staleness=0")
		hi := time.Now().UTC().Truncate(time.Second).Add(1512 * time.Millisecond)
		stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999Z") }
		// It ends before the row "exact edges" put below the cutoff last
		// (outside the contract) about 6 hours back.
		sql := fmt.Sprintf("SELECT status, count(*), sum(amount) FROM events WHERE created_at BETWEEN '%s' AND '%s' GROUP BY status ORDER BY status",
			stamp(hi.Add(-30*time.Hour-17*time.Second)), stamp(hi.Add(-7*time.Hour)))
		lambdaCheck(t, ctx, p, direct, fresh, modes[0], sql, true)
		for _, mode := range modes {
			for _, c := range []*pgx.Conn{direct, fresh} {
				exec(t, c, "BEGIN")
				exec(t, c, "INSERT INTO events (created_at, status, amount, qty) VALUES (now() - interval '29 hours', 'paid', 1000, 1)")
			}
			lambdaCheck(t, ctx, p, direct, fresh, mode, sql, false)
			for _, c := range []*pgx.Conn{direct, fresh} {
				exec(t, c, "ROLLBACK")
			}
		}
		super := superConn(t, ctx, lambdaDB)
		exec(t, super, `DROP SCHEMA IF EXISTS lambda_shadow CASCADE; CREATE SCHEMA lambda_shadow;
			CREATE TABLE lambda_shadow.events AS SELECT created_at, status, amount, qty FROM public.events ORDER BY created_at DESC LIMIT 5;
			GRANT USAGE ON SCHEMA lambda_shadow TO PUBLIC; GRANT SELECT ON lambda_shadow.events TO PUBLIC`)
		t.Cleanup(func() { _, _ = super.Exec(context.Background(), "DROP SCHEMA IF EXISTS lambda_shadow CASCADE") })
		for _, c := range []*pgx.Conn{direct, fresh} {
			exec(t, c, "SET search_path = lambda_shadow, public")
		}
		for _, mode := range modes {
			// The first statement after the SET may be decided before the
			// session's context is read again, and falls back when it runs:
			// the answer must still be Postgres's, and no rollup's.
			before, err := diffScrape(p)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := boundRender(ctx, direct, mode, boundCase{sql: sql})
			got, gerr := boundRender(ctx, fresh, mode, boundCase{sql: sql})
			if werr != nil || gerr != nil {
				t.Fatalf("%s: Postgres %v, pgrollup %v", sql, werr, gerr)
			}
			requireSame(t, sql, want, got)
			after, err := diffScrape(p)
			if err != nil {
				t.Fatal(err)
			}
			if hits := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "mode"); len(hits) != 0 {
				t.Errorf("%s over lambda_shadow.events: hits %v, want none", sql, hits)
			}
		}
		for _, c := range []*pgx.Conn{direct, fresh} {
			exec(t, c, "RESET search_path")
		}
		lambdaCheck(t, ctx, p, direct, fresh, modes[1], sql, true)
	})
	t.Run("exact edges across a DST change", func(t *testing.T) {
		// Ranges cutting through buckets across New York's change to DST
		// (9 March 2025) and Berlin's (30 March), in sessions in those
		// zones and UTC. events_dst_lambda (hour) is cut inside 9 March,
		// events_dst_d_lambda (day) inside 30 March: in the range across
		// its own cutoff's day, a lambda rollup answers the whole buckets'
		// rows below the cutoff and the warehouse those at or above it;
		// in the other range, the rollup answers every whole bucket, or
		// none (all its rows lie above the cutoff).
		fresh := connectOptions(t, ctx, p.DSN(userScram, lambdaDB), "-c pgrollup.max_staleness=0")
		cuts := map[string]time.Time{}
		for table, want := range map[string]time.Time{"events_dst": lambdaDSTCutoffHour, "events_dst_d": lambdaDSTCutoffDay} {
			cut := lambdaCutoffOf(t, ctx, fresh, table)
			// The builds start within minutes of the test, so the cutoffs
			// lie in the hour (and day) of the instants aimed at.
			if cut.Before(want) || !cut.Before(want.Truncate(time.Hour).Add(time.Hour)) {
				t.Fatalf("%s: cutoff %s, want one in [%s, %s)", table, cut, want, want.Truncate(time.Hour).Add(time.Hour))
			}
			cuts[table] = cut
			// Rows inserted after the build at or above the cutoff, in
			// the contract: at it, in its bucket, in a whole bucket above
			// it, and in Berlin's skipped hour (02:30 local).
			for _, inst := range []time.Time{cut, cut.Add(17 * time.Minute), cut.Add(20 * time.Hour), time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC)} {
				if !inst.Before(cut) {
					insert(t, table, at(inst))
				}
			}
		}
		const (
			grafanaRange = "created_at BETWEEN '%[2]s' AND '%[3]s'"
			cubeRange    = "created_at >= '%[4]s' AND created_at <= '%[5]s'"
			clockRange   = "created_at >= '%[6]s' AND created_at < '%[7]s'"
		)
		inUTC := func(zone string) bool { return zone == "UTC" }
		always := func(string) bool { return true }
		cases := []struct {
			sql string
			// daily says in which session zones events_dst_d_lambda
			// answers; events_dst_lambda answers in every one (their UTC
			// offsets are whole hours).
			daily func(zone string) bool
		}{
			// Grafana's $__timeFilter, bounds in UTC.
			{"SELECT status, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM %[1]s WHERE " + grafanaRange + " GROUP BY status ORDER BY status", always},
			// Hours are finer than the day rollup's buckets.
			{"SELECT date_trunc('hour', created_at) AS time, count(*) AS n, sum(amount) AS total FROM %[1]s WHERE " + grafanaRange + " GROUP BY 1 ORDER BY 1",
				func(string) bool { return false }},
			// Days of the session's zone: the day rollup's are UTC's
			// (build_timezone), which New York's and Berlin's days cut
			// through (rule 4, timezone), so those pass through.
			{"SELECT date_trunc('day', created_at) AS d, status, count(*), sum(qty), max(amount) FROM %[1]s WHERE " + grafanaRange + " GROUP BY 1, 2 ORDER BY 1, 2", inUTC},
			// Cube's date range, bounds in the session's zone: its days
			// are 23 hours long across the change.
			{"SELECT date_trunc('day', created_at) AS d, count(*), max(amount), avg(qty) FROM %[1]s WHERE " + cubeRange + " GROUP BY 1 ORDER BY 1", inUTC},
			// The same range grouped by status: the day rollup answers
			// the whole UTC days inside it in any zone.
			{"SELECT status, count(*), sum(amount), min(amount), count(DISTINCT status) FROM %[1]s WHERE " + cubeRange + " GROUP BY status ORDER BY status", always},
			// Bounds on the session's clock in an hour it skips or repeats:
			// Postgres reads a skipped time with the offset before the
			// change, a repeated one with the offset after it.
			{"SELECT status, count(*), sum(amount), max(amount) FROM %[1]s WHERE " + clockRange + " GROUP BY status ORDER BY status", always},
			{"SELECT date_trunc('day', created_at) AS d, count(*), sum(amount) FROM %[1]s WHERE " + clockRange + " GROUP BY 1 ORDER BY 1", inUTC},
		}
		// Grafana's bounds, Cube's, and bounds on the clock: across the
		// changes to DST, and (the clock's second range) back.
		ranges := [][6]string{
			{"2025-03-08T10:17:00Z", "2025-03-10T22:41:13.5Z", "2025-03-08T00:00:00.000", "2025-03-10T23:59:59.999", "2025-03-09 02:30:00", "2025-03-30 02:30:00"},
			{"2025-03-29T10:17:00Z", "2025-03-31T22:41:13.5Z", "2025-03-29T00:00:00.000", "2025-03-31T23:59:59.999", "2025-10-26 02:30:00", "2025-11-02 01:30:00"},
		}
		statement := func(sql, table string, r [6]string) string {
			return fmt.Sprintf(sql, table, r[0], r[1], r[2], r[3], r[4], r[5])
		}
		for _, zone := range []string{"America/New_York", "Europe/Berlin", "UTC"} {
			for _, c := range []*pgx.Conn{direct, fresh} {
				exec(t, c, "SET TimeZone = '"+zone+"'")
			}
			for _, r := range ranges {
				for _, c := range cases {
					for _, table := range []string{"events_dst", "events_dst_d"} {
						sql := statement(c.sql, table, r)
						for _, mode := range modes {
							lambdaCheck(t, ctx, p, direct, fresh, mode, sql, table == "events_dst" || c.daily(zone))
						}
					}
				}
			}
		}
		// The whole buckets of Cube's ranges, cut in UTC from the
		// session's midnights: New York's 8 March is UTC-5, its 10 March
		// UTC-4; Berlin's 29 March is UTC+1, its 31 March UTC+2.
		for _, c := range []struct {
			zone, table string
			r           [6]string
			buckets     string
		}{
			{"America/New_York", "events_dst_d", ranges[0], "day buckets of created_at in [2025-03-09T00:00:00Z, 2025-03-11T00:00:00Z)"},
			{"America/New_York", "events_dst", ranges[0], "hour buckets of created_at in [2025-03-08T05:00:00Z, 2025-03-11T03:00:00Z)"},
			{"Europe/Berlin", "events_dst_d", ranges[1], "day buckets of created_at in [2025-03-29T00:00:00Z, 2025-03-31T00:00:00Z)"},
			{"Europe/Berlin", "events_dst", ranges[1], "hour buckets of created_at in [2025-03-28T23:00:00Z, 2025-03-31T21:00:00Z)"},
		} {
			exec(t, fresh, "SET TimeZone = '"+c.zone+"'")
			// Cube's range grouped by status (cases[4]).
			rows, err := fresh.Query(ctx, "EXPLAIN (ROLLUP) "+statement(cases[4].sql, c.table, c.r), pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			want := c.table + "_lambda (lambda) answers the partial aggregates of the rows below its cutoff " + cuts[c.table].UTC().Format(time.RFC3339Nano) + " in the whole " + c.buckets
			if out := renderRows(rows); !strings.Contains(out, want) {
				t.Errorf("%s, EXPLAIN (ROLLUP) does not say %q:\n%s", c.zone, want, out)
			}
		}
		for _, c := range []*pgx.Conn{direct, fresh} {
			exec(t, c, "RESET TimeZone")
		}
	})
	t.Run("explain", func(t *testing.T) {
		rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+lambdaStatements("events")[0], pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		out := renderRows(rows)
		if !strings.Contains(out, "events_lambda (lambda) answers the partial aggregates of the rows below its cutoff") {
			t.Errorf("EXPLAIN (ROLLUP) does not show the lambda split:\n%s", out)
		}
		rows, err = via.Query(ctx, "EXPLAIN (ROLLUP) "+lambdaStatements("events_i")[0], pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if out := renderRows(rows); !strings.Contains(out, "events_i_lambda (lambda) answers the partial aggregates of the rows below its cutoff id ") {
			t.Errorf("EXPLAIN (ROLLUP) does not show the id cutoff:\n%s", out)
		}
		// pgrollup explain, without the proxy, shows the same split.
		for _, table := range []string{"events", "events_i"} {
			for _, where := range []string{"--warehouse=" + env.pg.DSN(lambdaDB), "--offline"} {
				e := cliExplain(t, "lambda", where, lambdaStatements(table)[0])
				if e.Route != "lambda" || e.Split == nil || e.Split.Rollup != table+"_lambda" || !strings.Contains(e.Split.Explanation, "(lambda) answers the partial aggregates") {
					t.Errorf("pgrollup explain %s over %s: %+v", where, table, e)
				}
			}
		}
	})
}

// connectOptions connects to dsn with the startup parameter options, until
// the test ends.
func connectOptions(t *testing.T, ctx context.Context, dsn, options string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["options"] = options
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with options %q: %v", options, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// lambdaCheck runs sql on Postgres and through pgrollup in mode, requires
// equal answers (values, names, types), and that pgrollup answered it as
// one lambda hit, with no fallback, if and only if served.
// lambdaCutoffOf is the cutoff EXPLAIN (ROLLUP) names for the lambda
// rollup answering the first of lambdaStatements(table).
func lambdaCutoffOf(t *testing.T, ctx context.Context, via *pgx.Conn, table string) time.Time {
	t.Helper()
	return explainCutoff(t, ctx, via, lambdaStatements(table)[0])
}

// explainCutoff is the cutoff EXPLAIN (ROLLUP) names for the lambda rollup
// answering sql.
func explainCutoff(t *testing.T, ctx context.Context, via *pgx.Conn, sql string) time.Time {
	t.Helper()
	rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	out := renderRows(rows)
	m := regexp.MustCompile(`below its cutoff (\S+), the warehouse`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("EXPLAIN (ROLLUP) names no cutoff:\n%s", out)
	}
	cut, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatalf("cutoff %q: %v", m[1], err)
	}
	return cut
}

func lambdaCheck(t *testing.T, ctx context.Context, p *proxyProc, direct, via *pgx.Conn, mode pgx.QueryExecMode, sql string, served bool) {
	t.Helper()
	hitCheck(t, ctx, p, direct, via, mode, sql, "lambda", served)
}

// hitCheck is lambdaCheck for hits of hitMode.
func hitCheck(t *testing.T, ctx context.Context, p *proxyProc, direct, via *pgx.Conn, mode pgx.QueryExecMode, sql, hitMode string, served bool) {
	t.Helper()
	before, after := sameAnswer(t, ctx, p, direct, via, mode, sql)
	modes := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "mode")
	if got := modes[hitMode] == 1 && len(modes) == 1; got != served {
		t.Errorf("%s (mode %v): hits by mode %v, want a %s hit %v", sql, mode, modes, hitMode, served)
	}
}

// sameAnswer runs sql with args on Postgres and through pgrollup in mode,
// requires equal answers (values, names, types) and no fallback after the
// decision, and returns pgrollup's metrics before and after.
func sameAnswer(t *testing.T, ctx context.Context, p *proxyProc, direct, via *pgx.Conn, mode pgx.QueryExecMode, sql string, args ...any) (before, after diffMetrics) {
	t.Helper()
	before, err := diffScrape(p)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := boundRender(ctx, direct, mode, boundCase{sql: sql, args: args})
	got, gerr := boundRender(ctx, via, mode, boundCase{sql: sql, args: args})
	if werr != nil || gerr != nil {
		t.Fatalf("%s: Postgres %v, pgrollup %v", sql, werr, gerr)
	}
	requireSame(t, sql, want, got)
	if after, err = diffScrape(p); err != nil {
		t.Fatal(err)
	}
	if fb := after.sum("pgrollup_rollup_fallbacks_total") - before.sum("pgrollup_rollup_fallbacks_total"); fb != 0 {
		t.Errorf("%s: fell back to the warehouse after the decision:\n%s", sql, tail(p.log.Bytes(), 20))
	}
	return before, after
}

// cliExplainOut is what the lambda and edges tests read of pgrollup
// explain --json.
type cliExplainOut struct {
	Route  string  `json:"route"`
	Rollup *string `json:"rollup"`
	Split  *struct {
		Mode, Rollup, Explanation, Core string
	} `json:"split"`
	EdgesNote string `json:"edges_note"`
}

// cliExplain runs pgrollup explain --json with the config of the suite
// proxy named suite, and where (--warehouse=DSN or --offline).
func cliExplain(t *testing.T, suite, where, sql string) cliExplainOut {
	t.Helper()
	cfg := filepath.Join(env.tmp, "proxy-"+suite, "pgrollup.yaml")
	out, errOut, code := runPgrollup(t, "explain", "--config", cfg, "--timezone", "UTC", "--json", where, sql)
	var e cliExplainOut
	if err := json.Unmarshal([]byte(out), &e); code != 0 || err != nil {
		t.Fatalf("explain: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	return e
}
