package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Rollups cut in a build_timezone with daylight saving time: New York
// (changes at 02:00) and Havana (changes at midnight: on 9 March 2025 its
// day starts at 01:00, on 2 November its midnight comes twice). Every
// answer equals Postgres's in sessions of the build zone and of others,
// and the statements whose buckets or ranges do not line up with the
// rollups' pass through.

const buildZoneDB = "buildzonedb"

// buildZoneFixture has rows every 7 minutes and 3 seconds over two weeks
// around each change of 2025: 1 to 15 March and 26 October to 9 November.
const buildZoneFixture = `
CREATE TABLE bz (id serial PRIMARY KEY, created_at timestamptz NOT NULL, status text NOT NULL, kind text NOT NULL, amount numeric(12,2));
CREATE INDEX ON bz (created_at);
INSERT INTO bz (created_at, status, kind, amount)
SELECT w.s + g * interval '7 minutes 3 seconds', (ARRAY['new','paid','shipped'])[1 + g % 3], (ARRAY['a','b'])[1 + g % 2],
       CASE WHEN g % 13 = 0 THEN NULL ELSE round((g * 2.71) % 300, 2) END
FROM (VALUES (timestamptz '2025-03-01 00:00:00+00'), (timestamptz '2025-10-26 00:00:00+00')) AS w(s), generate_series(0, 3000) g;
ANALYZE bz;
`

// buildZoneRollups are the hour, day and week rollups of bz, named with
// tag. Only the day rollup has kind, so statements on kind have it answer
// (or pass through) even where hours could.
func buildZoneRollups(tag string) []map[string]any {
	return zoneRollups("bz", tag, nil, "hour", "day", "week")
}

// zoneRollups are the rollups of table in grains, named table_tag_grain,
// each with the keys of extra too.
func zoneRollups(table, tag string, extra map[string]any, grains ...string) []map[string]any {
	var out []map[string]any
	for _, g := range grains {
		dims := []string{"status"}
		if g == "day" {
			dims = append(dims, "kind")
		}
		r := map[string]any{
			"name": table + "_" + tag + "_" + g, "table": "public." + table,
			"dimensions":     dims,
			"time_dimension": "created_at", "granularity": g,
			"measures": []string{"sum(amount)", "count(*)", "count(amount)", "min(amount)", "max(amount)"},
		}
		for k, v := range extra {
			r[k] = v
		}
		out = append(out, r)
	}
	return out
}

// zoneServed says which rollup grain answers a statement, and how
// ("day/duckdb", "hour/edges"), in a session of zone session when the
// rollups were cut in build; "" is a passthrough.
type zoneServed func(build, session string) string

const (
	newYork = "America/New_York"
	havana  = "America/Havana"
)

// wholeHours: the session zones whose days hour rollups cut (not Kolkata).
func wholeHours(session string) bool { return session != "Asia/Kolkata" }

// always is served the same way in every session.
func always(how string) zoneServed { return func(string, string) string { return how } }

// inWholeHours is served so in the sessions whose offsets are whole hours.
func inWholeHours(how string) zoneServed {
	return func(_, session string) string {
		if wholeHours(session) {
			return how
		}
		return ""
	}
}

// bucketOf is a bucket of grain g on the session's clock: the g rollup
// answers it in the build zone's sessions, the hour rollup in other
// sessions whose offsets are whole hours, nothing in Kolkata's.
func bucketOf(g string) zoneServed {
	return func(build, session string) string {
		switch {
		case build == session:
			return g + "/duckdb"
		case wholeHours(session):
			return "hour/duckdb"
		}
		return ""
	}
}

// rangeOf is a range of days on the session's clock over the statuses:
// the day rollup answers it where days says its bounds are day edges, the
// hour rollup in other sessions whose offsets are whole hours, and hours
// with the edges from the warehouse in Kolkata's.
func rangeOf(days func(build, session string) bool) zoneServed {
	return func(build, session string) string {
		switch {
		case days(build, session):
			return "day/duckdb"
		case wholeHours(session):
			return "hour/duckdb"
		}
		return "hour/edges"
	}
}

// dayIn is a day on zone's clock, in any session: the day rollup answers
// it when cut in zone, the hour rollup otherwise.
func dayIn(zone string) zoneServed {
	return func(build, _ string) string {
		if build == zone {
			return "day/duckdb"
		}
		return "hour/duckdb"
	}
}

func TestBuildZone(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	createSuiteDB(t, ctx, buildZoneDB, buildZoneFixture)
	direct := connect(t, ctx, directDSN(userScram, buildZoneDB))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	cases := []struct {
		sql    string
		served zoneServed
	}{
		// Buckets on the session's clock: a day bucket cut in New York
		// answers New York's days, not UTC's.
		{"SELECT date_trunc('day', created_at) AS d, count(*), sum(amount), min(amount), max(amount), avg(amount) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT created_at::date AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT date_trunc('week', created_at) AS w, count(*), sum(amount) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("week")},
		{"SELECT date_trunc('month', created_at) AS m, count(*), sum(amount) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT date_trunc('day', created_at) AT TIME ZONE 'America/New_York' AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT date_trunc('day', created_at) AT TIME ZONE 'America/Havana' AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT EXTRACT(hour FROM created_at) AS hr, count(*), sum(amount) FROM bz GROUP BY 1 ORDER BY 1", inWholeHours("hour/duckdb")},
		{"SELECT EXTRACT(dow FROM created_at) AS dow, date_trunc('quarter', created_at) AS q, count(*) FROM bz GROUP BY 1, 2 ORDER BY 1, 2", bucketOf("day")},
		// Weeks starting on Sunday (Metabase, Tableau): days added on the
		// session's clock, across the changes.
		{"SELECT date_trunc('week', created_at + interval '1 day') - interval '1 day' AS w, count(*), sum(amount) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT CAST(DATE_TRUNC('WEEK', CAST(created_at AS DATE) + 1) AS DATE) - 1 AS w, count(*) FROM bz GROUP BY 1 ORDER BY 1", bucketOf("day")},
		// Grafana's $__timeGroup: epoch hours from hours cut anywhere.
		{"SELECT floor(extract(epoch FROM created_at)/3600)*3600 AS time, count(*) FROM bz WHERE created_at BETWEEN '2025-11-01T20:17:00Z' AND '2025-11-03T09:41:13.5Z' GROUP BY 1 ORDER BY 1", always("hour/edges")},
		// A bucket in a named zone is answered in any session.
		{"SELECT date_trunc('day', created_at, 'America/New_York') AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", dayIn(newYork)},
		{"SELECT date_trunc('day', created_at, 'America/Havana') AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", dayIn(havana)},
		// Wall clocks of a named zone, in any session: the repeated hour's
		// two passes are one local hour.
		{"SELECT date_trunc('day', created_at AT TIME ZONE 'America/New_York') AS d, count(*) FROM bz GROUP BY 1 ORDER BY 1", dayIn(newYork)},
		{"SELECT (created_at AT TIME ZONE 'America/Havana')::date AS d, count(*), min(amount) FROM bz GROUP BY 1 ORDER BY 1", dayIn(havana)},
		{"SELECT date_trunc('hour', created_at AT TIME ZONE 'America/New_York') AS h, count(*) FROM bz WHERE created_at >= '2025-11-02 03:00:00+00' AND created_at < '2025-11-02 09:00:00+00' GROUP BY 1 ORDER BY 1", always("hour/duckdb")},
		// Days on the session's clock, at bucket edges.
		{"SELECT date_trunc('day', created_at) AS d, count(*) FROM bz WHERE created_at >= '2025-10-30' AND created_at < '2025-11-05' GROUP BY 1 ORDER BY 1", bucketOf("day")},
		{"SELECT status, count(*), sum(amount) FROM bz WHERE created_at >= '2025-03-09' AND created_at < '2025-03-11' GROUP BY status ORDER BY status", rangeOf(func(_, session string) bool {
			// Havana's 9 March starts at 05:00 UTC as New York's does,
			// and both 11 Marches at 04:00 UTC.
			return session == newYork || session == havana
		})},
		// Havana's midnight of 2 November comes twice: date_trunc gives
		// the later (05:00 UTC), and the day's rows start at the first
		// (04:00 UTC), so '2025-11-02' is no day edge there.
		{"SELECT status, count(*), sum(amount) FROM bz WHERE created_at >= '2025-11-02' AND created_at < '2025-11-04' GROUP BY status ORDER BY status", rangeOf(func(build, session string) bool { return build == newYork && session == newYork })},
		{"SELECT kind, count(*), sum(amount) FROM bz WHERE created_at >= '2025-11-02' AND created_at < '2025-11-04' GROUP BY kind ORDER BY kind", func(build, session string) string {
			switch {
			case build == newYork && session == newYork:
				return "day/duckdb"
			case build == newYork, session == havana, session == newYork:
				return "day/edges"
			}
			return "" // no whole Havana day after the one that starts twice
		}},
		{"SELECT kind, count(*), sum(amount) FROM bz WHERE created_at >= '2025-10-30' AND created_at < '2025-11-02' GROUP BY kind ORDER BY kind", func(build, session string) string {
			switch {
			case build == newYork && session == newYork:
				return "day/duckdb"
			case build == newYork:
				return "day/edges"
			case session == havana, session == newYork:
				// Havana's 2 November is no edge, and New York's
				// midnight is its first.
				return ""
			}
			return "day/edges" // ends in Havana's 1 November
		}},
		// Ranges that cut through days, with the edges from the
		// warehouse: the lower bound falls in Havana's 1 November (its
		// whole days start on the 3rd), the upper in its 2 November.
		{"SELECT kind, count(*), sum(amount) FROM bz WHERE created_at >= '2025-11-01 12:00' AND created_at < '2025-11-04 12:00' GROUP BY kind ORDER BY kind", always("day/edges")},
		{"SELECT kind, count(*), sum(amount), min(amount) FROM bz WHERE created_at >= '2025-10-30 12:00' AND created_at < '2025-11-02 12:00' GROUP BY kind ORDER BY kind", func(build, _ string) string {
			if build == newYork {
				return "day/edges"
			}
			return ""
		}},
		// Cube's date ranges in the session's clock, across the changes.
		{"SELECT date_trunc('hour', created_at) AS h, status, count(*), sum(amount) FROM bz WHERE created_at >= '2025-03-08T00:00:00.000' AND created_at <= '2025-03-10T23:59:59.999' GROUP BY 1, 2 ORDER BY 1, 2", inWholeHours("hour/edges")},
		{"SELECT date_trunc('day', created_at) AS d, count(*), max(amount) FROM bz WHERE created_at >= '2025-11-01T00:00:00.000' AND created_at <= '2025-11-03T23:59:59.999' GROUP BY 1 ORDER BY 1", inWholeHours("hour/edges")},
		// Grafana's $__timeFilter in UTC.
		{"SELECT date_trunc('hour', created_at) AS time, count(*) AS n FROM bz WHERE created_at BETWEEN '2025-03-08T20:17:00Z' AND '2025-03-10T09:41:13.5Z' GROUP BY 1 ORDER BY 1", inWholeHours("hour/edges")},
		{"SELECT status, count(*), sum(amount), avg(amount) FROM bz WHERE created_at BETWEEN '2025-10-31T10:17:00Z' AND '2025-11-04T22:41:13.5Z' GROUP BY status ORDER BY status", always("hour/edges")},
	}
	// Bounds bound as parameters, decided at each Bind with their values.
	params := []struct {
		sql    string
		args   []any
		served zoneServed
	}{
		// New York's 2 November starts at 04:00 UTC (an instant, in any
		// session); Havana's date_trunc gives 05:00 UTC, no edge.
		{"SELECT kind, count(*), sum(amount) FROM bz WHERE created_at >= $1 AND created_at < $2 GROUP BY kind ORDER BY kind",
			[]any{time.Date(2025, 11, 2, 4, 0, 0, 0, time.UTC), time.Date(2025, 11, 4, 5, 0, 0, 0, time.UTC)}, func(build, _ string) string {
				if build == newYork {
					return "day/duckdb"
				}
				return ""
			}},
		{"SELECT kind, count(*), sum(amount) FROM bz WHERE created_at >= $1 AND created_at < $2 GROUP BY kind ORDER BY kind",
			[]any{time.Date(2025, 11, 2, 5, 0, 0, 0, time.UTC), time.Date(2025, 11, 4, 5, 0, 0, 0, time.UTC)}, always("")},
		{"SELECT kind, count(*) FROM bz WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz GROUP BY kind ORDER BY kind",
			[]any{"2025-11-02", "2025-11-03"}, func(build, session string) string {
				if build == session && build == newYork {
					return "day/duckdb"
				}
				return ""
			}},
	}
	for _, build := range []struct{ tag, zone string }{{"ny", newYork}, {"havana", havana}} {
		p := startProxyOver(t, ctx, "buildzone-"+build.tag, buildZoneDB, buildZoneRollups(build.tag), map[string]any{"build_timezone": build.zone})
		via := connect(t, ctx, p.DSN(userScram, buildZoneDB))
		if build.zone == havana {
			t.Run("explain", func(t *testing.T) {
				if _, err := via.Exec(ctx, "SET TimeZone = '"+havana+"'"); err != nil {
					t.Fatal(err)
				}
				rows, err := via.Query(ctx, "EXPLAIN (ROLLUP) SELECT kind, count(*) FROM bz WHERE created_at >= '2025-11-02' AND created_at < '2025-11-04' GROUP BY kind", pgx.QueryExecModeSimpleProtocol)
				if err != nil {
					t.Fatal(err)
				}
				const why = "unaligned_time_range: created_at >= TIMESTAMPTZ '2025-11-02 05:00:00+00' is the value date_trunc gives a day of rollup bz_havana_day, but that day starts earlier: America/Havana shows its midnight twice"
				if out := renderRows(rows); !strings.Contains(out, why) {
					t.Errorf("EXPLAIN (ROLLUP) does not say %q:\n%s", why, out)
				}
			})
		}
		for _, zone := range []string{newYork, havana, "UTC", "Europe/Berlin", "Asia/Kolkata"} {
			for _, c := range []*pgx.Conn{direct, via} {
				if _, err := c.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range cases {
				want := c.served(build.zone, zone)
				for _, mode := range modes {
					if got := zoneCheck(t, ctx, p, direct, via, mode, c.sql); got != want {
						t.Errorf("build_timezone %s, session %s, %v: %s\nanswered by %q, want %q", build.zone, zone, mode, c.sql, got, want)
					}
				}
			}
			for _, c := range params {
				want := c.served(build.zone, zone)
				if got := zoneCheck(t, ctx, p, direct, via, pgx.QueryExecModeExec, c.sql, c.args...); got != want {
					t.Errorf("build_timezone %s, session %s: %s %v\nanswered by %q, want %q", build.zone, zone, c.sql, c.args, got, want)
				}
			}
		}
	}
}

// zoneCheck runs sql on Postgres and through pgrollup in mode, requires
// equal answers (values, names, types) and no fallback, and returns the
// grain of the rollup that answered (its name's last part) and the hit's
// mode, "hour/edges", or "" for a passthrough.
func zoneCheck(t *testing.T, ctx context.Context, p *proxyProc, direct, via *pgx.Conn, mode pgx.QueryExecMode, sql string, args ...any) string {
	t.Helper()
	before, after := sameAnswer(t, ctx, p, direct, via, mode, sql, args...)
	rollups := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "rollup")
	modes := after.deltaByLabel(before, "pgrollup_rollup_hits_total", "mode")
	var names, ms []string
	for r, n := range rollups {
		names = append(names, fmt.Sprintf("%s×%v", r[strings.LastIndexByte(r, '_')+1:], n))
	}
	for m := range modes {
		ms = append(ms, m)
	}
	sort.Strings(names)
	sort.Strings(ms)
	switch {
	case len(rollups) == 0:
		return ""
	case len(names) == 1 && len(ms) == 1 && strings.HasSuffix(names[0], "×1"):
		return strings.TrimSuffix(names[0], "×1") + "/" + ms[0]
	}
	return strings.Join(names, "+") + "/" + strings.Join(ms, "+")
}

// buildZoneLambdaFixture is buildZoneFixture's rows in table bzl, which
// TestBuildZoneLambda inserts into.
var buildZoneLambdaFixture = strings.NewReplacer(" bz (", " bzl (", " bz;", " bzl;").Replace(buildZoneFixture)

// TestBuildZoneLambda: lambda rollups cut in a build_timezone with
// daylight saving time, with their cutoffs inside the hour that zone's
// clock repeats on 2 November 2025 (New York's 01:00 to 02:00 EST, 06:00
// to 07:00 UTC; Havana's second midnight, 05:00 to 06:00 UTC), or just
// after the hour it skips on 9 March (New York's 02:00, Havana's
// midnight), and rows inserted after the build around the cutoffs. Every
// answer equals Postgres's in sessions of the build zone, UTC and Berlin.
func TestBuildZoneLambda(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	createSuiteDB(t, ctx, "buildzonelambdadb", buildZoneLambdaFixture)
	direct := connect(t, ctx, directDSN(userScram, "buildzonelambdadb"))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	const (
		kindSQL = "SELECT kind, count(*) FROM bzl GROUP BY kind"                                        // the day rollup's
		hourSQL = "SELECT date_trunc('hour', created_at) AS h, count(*) FROM bzl GROUP BY 1 ORDER BY 1" // the hour rollup's (or the day's in no zone)
	)
	cases := []struct {
		sql string
		// The rollup grain answering sql and its mode (what zoneCheck
		// gives) in a session of the build zone, and in UTC's and
		// Berlin's; "" is a passthrough.
		inBuild, other string
	}{
		// Buckets on the session's clock, over the whole table: the day
		// rollup answers the build zone's days (25 hours on 2 November, 23 on
		// 9 March),
		// the hour rollup UTC's and Berlin's.
		{"SELECT date_trunc('day', created_at) AS d, count(*), sum(amount), min(amount), max(amount), avg(amount) FROM bzl GROUP BY 1 ORDER BY 1", "day/lambda", "hour/lambda"},
		{"SELECT date_trunc('hour', created_at) AS h, status, count(*), sum(amount), avg(amount) FROM bzl WHERE created_at >= '2025-11-01' AND created_at < '2025-11-04' GROUP BY 1, 2 ORDER BY 1, 2", "hour/lambda", "hour/lambda"},
		// Ranges across the change on the session's clock: whole days of
		// the build zone's sessions, hours of the others; only the day
		// rollup has kind, so it answers that range everywhere, the days
		// it cuts through with the edges from the warehouse.
		{"SELECT status, count(*), sum(amount), min(amount), max(amount), avg(amount) FROM bzl WHERE created_at >= '2025-11-01' AND created_at < '2025-11-04' GROUP BY status ORDER BY status", "day/lambda", "hour/lambda"},
		{"SELECT kind, count(*), sum(amount), max(amount) FROM bzl WHERE created_at >= '2025-10-31' AND created_at < '2025-11-05' GROUP BY kind ORDER BY kind", "day/lambda", "day/lambda"},
		// Bounds in the hour (or, in Havana, the midnight) the clock
		// repeats in November, or skips in March: Postgres reads a
		// repeated time with the later offset, a skipped one with the
		// earlier; the edges come from the warehouse. (In Havana's
		// session, '00:30' to '02:00' of 9 March would be 05:30 to 06:00
		// UTC, no whole hour, and pass through; '03:00' keeps one.)
		{"SELECT status, count(*), sum(amount), max(amount) FROM bzl WHERE created_at >= '2025-11-02 01:30:00' AND created_at < '2025-11-03 00:00' GROUP BY status ORDER BY status", "hour/lambda", "hour/lambda"},
		{"SELECT status, count(*), sum(amount) FROM bzl WHERE created_at >= '2025-11-02 00:30:00' AND created_at < '2025-11-02 03:00' GROUP BY status ORDER BY status", "hour/lambda", "hour/lambda"},
		// Grafana's $__timeFilter in UTC.
		{"SELECT date_trunc('hour', created_at) AS time, count(*) AS n, sum(amount) FROM bzl WHERE created_at BETWEEN '2025-11-01T20:17:00Z' AND '2025-11-03T09:41:13.5Z' GROUP BY 1 ORDER BY 1", "hour/lambda", "hour/lambda"},
		{"SELECT date_trunc('day', created_at) AS time, count(*), min(amount), avg(amount) FROM bzl WHERE created_at BETWEEN '2025-11-01T20:17:00Z' AND '2025-11-03T09:41:13.5Z' GROUP BY 1 ORDER BY 1", "hour/lambda", "hour/lambda"},
		{"SELECT status, count(*), sum(amount), avg(amount) FROM bzl WHERE created_at BETWEEN '2025-11-02T05:00:00Z' AND '2025-11-02T07:59:59.999Z' GROUP BY status ORDER BY status", "hour/lambda", "hour/lambda"},
		// Minutes are finer than any rollup's buckets: passes through.
		{"SELECT date_trunc('minute', created_at) AS m, count(*) FROM bzl WHERE created_at >= '2025-11-02' AND created_at < '2025-11-03' GROUP BY 1 ORDER BY 1", "", ""},
	}
	// The same statements on the days around 9 March: each day (and its
	// bounds' clocks) moved back from November's to March's.
	march := strings.NewReplacer("2025-10-31", "2025-03-07", "2025-11-01", "2025-03-08", "2025-11-02", "2025-03-09",
		"2025-11-03", "2025-03-10", "2025-11-04", "2025-03-11", "2025-11-05", "2025-03-12")
	november := strings.NewReplacer()
	for _, build := range []struct {
		tag, zone string
		cutoff    time.Time
		dates     *strings.Replacer
	}{
		{"ny", newYork, time.Date(2025, 11, 2, 6, 20, 0, 0, time.UTC), november},     // 01:20 EST, the second 01:20
		{"havana", havana, time.Date(2025, 11, 2, 5, 20, 0, 0, time.UTC), november},  // 00:20 CST, after the second midnight
		{"nymarch", newYork, time.Date(2025, 3, 9, 7, 20, 0, 0, time.UTC), march},    // 03:20 EDT, after the skipped hour
		{"havanamarch", havana, time.Date(2025, 3, 9, 5, 20, 0, 0, time.UTC), march}, // 01:20 CDT, the day's first hour
	} {
		t.Run(build.tag, func(t *testing.T) {
			// A day rollup (with kind, so statements on kind name its
			// cutoff) and an hour rollup, cut in build.zone.
			lambda := map[string]any{"column": "created_at", "late_window": fmt.Sprintf("%ds", int64(time.Since(build.cutoff).Seconds()))}
			rollups := zoneRollups("bzl", build.tag, map[string]any{"lambda": lambda}, "hour", "day")
			p := startProxyOver(t, ctx, "buildzonelambda-"+build.tag, "buildzonelambdadb", rollups, map[string]any{"build_timezone": build.zone})
			fresh := connectOptions(t, ctx, p.DSN(userScram, "buildzonelambdadb"), "-c pgrollup.max_staleness=0")
			// The builds start seconds after the late_windows were
			// computed, so the cutoffs lie just after the instants aimed
			// at, in the same repeated hour.
			var cuts []time.Time
			for _, sql := range []string{kindSQL, hourSQL} {
				cut := explainCutoff(t, ctx, fresh, sql)
				if cut.Before(build.cutoff) || !cut.Before(build.cutoff.Add(30*time.Minute)) {
					t.Fatalf("%s: cutoff %s, want one in [%s, +30m)", sql, cut, build.cutoff)
				}
				cuts = append(cuts, cut)
			}
			// Rows inserted after the build at or above the cutoffs (the
			// contract of late_window; a row below one would be missed
			// until a full build): at the later cutoff (both rollups'
			// when their builds began in the same second), a microsecond
			// above, in its hour, in the next hour (past the change for
			// New York's cutoff), later on 2 November, and on the 3rd.
			latest := cuts[0]
			for _, cut := range cuts {
				if cut.After(latest) {
					latest = cut
				}
			}
			for _, cut := range []time.Time{latest} {
				for _, d := range []time.Duration{0, time.Microsecond, 17 * time.Minute, time.Hour, 20 * time.Hour, 30 * time.Hour} {
					if _, err := direct.Exec(ctx, `INSERT INTO bzl (created_at, status, kind, amount)
SELECT $1::timestamptz, (ARRAY['new','paid','shipped','late'])[1 + g % 4], (ARRAY['a','b'])[1 + g % 2], g * 1.25 FROM generate_series(1, 3) g`, cut.Add(d)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, zone := range []string{build.zone, "UTC", "Europe/Berlin"} {
				for _, c := range []*pgx.Conn{direct, fresh} {
					if _, err := c.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
						t.Fatal(err)
					}
				}
				for _, c := range cases {
					for _, mode := range modes {
						want := c.other
						if zone == build.zone {
							want = c.inBuild
						}
						sql := build.dates.Replace(c.sql)
						if got := zoneCheck(t, ctx, p, direct, fresh, mode, sql); got != want {
							t.Errorf("build_timezone %s, session %s, %v: %s\nanswered by %q, want %q", build.zone, zone, mode, sql, got, want)
						}
					}
				}
			}
		})
	}
}
