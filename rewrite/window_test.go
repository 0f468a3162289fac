package rewrite

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
)

// rolling adds a rollup of orders filtered by filters (relative to the
// clock) in build zone zone at grain g, the only one, with
// the windows its build at testNow recorded.
func rolling(zone string, g config.Granularity, filters []string, ws ...Window) (func(*config.Config), func(*Catalog)) {
	return rollingOn("created_at", zone, g, filters, ws...)
}

// rollingOn is rolling with another time dimension.
func rollingOn(col, zone string, g config.Granularity, filters []string, ws ...Window) (func(*config.Config), func(*Catalog)) {
	cfg := func(c *config.Config) {
		c.BuildTimezone = zone
		// The only rollup: the others' reasons would tie with its own.
		c.Rollups = []config.Rollup{{
			Name: "orders_rolling", Table: "public.orders",
			Dimensions:    []string{"status"},
			TimeDimension: col, Granularity: g,
			Measures: []string{"sum(amount)", "count(*)"},
			Filters:  filters,
		}}
	}
	cat := func(c *Catalog) {
		c.Rollups[0].Windows, c.Rollups[0].BuiltAt = ws, testNow
	}
	return cfg, cat
}

func instantWindow(i int, op string, v time.Time) Window {
	return Window{Conjunct: i, Op: op, Value: v, TypeOID: pgtype.TimestamptzOID,
		SQL: "orders.created_at " + op + " '" + v.UTC().Format("2006-01-02 15:04:05") + "+00'::timestamptz"}
}

func dateWindow(i int, op string, d string) Window {
	return Window{Conjunct: i, Op: op, Value: mustDay(d), TypeOID: pgtype.DateOID, SQL: "orders.created_at " + op + " '" + d + "'::date"}
}

func rollingCases() []decideCase {
	const last52 = "created_at >= date_trunc('day', now()) - interval '52 weeks'"
	// Built at testNow (2024-03-15 10:30 UTC): from 2023-03-17 00:00 UTC on.
	utcCfg, utcCat := rolling("UTC", config.Day, []string{last52}, instantWindow(0, ">=", time.Date(2023, 3, 17, 0, 0, 0, 0, time.UTC)))
	ny, _ := time.LoadLocation("America/New_York")
	// Built in New York at the same instant: from New York's midnight.
	nyCfg, nyCat := rolling("America/New_York", config.Hour, []string{last52}, instantWindow(0, ">=", time.Date(2023, 3, 17, 0, 0, 0, 0, ny)))
	// The last 30 days up to yesterday, in two windows of date bounds.
	rangeCfg, rangeCat := rolling("UTC", config.Day, []string{"created_at >= current_date - 30 AND created_at < current_date"},
		dateWindow(0, ">=", "2024-02-14"), dateWindow(1, "<", "2024-03-15"))
	strictCfg, strictCat := rolling("UTC", config.Day, []string{"created_at > now() - interval '30 days'"},
		instantWindow(0, ">", time.Date(2024, 2, 14, 10, 30, 0, 0, time.UTC)))
	edgeCfg, edgeCat := rolling("UTC", config.Day, []string{"created_at > current_date - 30"}, dateWindow(0, ">", "2024-02-14"))
	_, offlineCat := rolling("UTC", config.Day, nil)
	oldCat := func(c *Catalog) { offlineCat(c); c.Rollups[0].Version = "v1" }
	otherCfg, otherCat := rolling("UTC", config.Day, []string{"order_date >= current_date - 30"}, Window{Conjunct: 0, Op: ">=", Value: mustDay("2024-02-14"), TypeOID: pgtype.DateOID, SQL: "orders.order_date >= '2024-02-14'::date"})
	dateCfg, dateCat := rollingOn("order_date", "UTC", config.Day, []string{"order_date > current_date - 31"},
		Window{Conjunct: 0, Op: ">", Value: mustDay("2024-02-13"), TypeOID: pgtype.DateOID, SQL: "orders.order_date > '2024-02-13'::date"})
	// A timestamp column compared with a timestamptz bound folded in New York.
	localCfg, localCat := rollingOn("local_ts", "America/New_York", config.Month, []string{"local_ts >= date_trunc('month', now()) - interval '12 months'"},
		instantWindow(0, ">=", time.Date(2023, 3, 1, 5, 0, 0, 0, time.UTC)))
	day := 24 * time.Hour
	q := func(where string) string {
		return "SELECT status, sum(amount) FROM orders WHERE " + where + " GROUP BY status"
	}
	return []decideCase{
		{name: "last 12 weeks from 52", sql: q("created_at >= date_trunc('day', now()) - interval '12 weeks'"), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat},
		{name: "last 52 weeks, same day", sql: q(last52), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat, now: testNow.Add(5 * time.Hour)},
		{name: "last 52 weeks, a day later", sql: q(last52), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat, now: testNow.Add(day)},
		{name: "last 52 weeks, a day earlier", sql: q(last52), reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat, now: testNow.Add(-day)},
		{name: "last 60 weeks", sql: q("created_at >= date_trunc('day', now()) - interval '60 weeks'"), reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat},
		{name: "no time bound", sql: "SELECT status, count(*) FROM orders GROUP BY status", reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat},
		{name: "only an upper bound", sql: q("created_at < '2024-01-01'"), reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat},
		{name: "fixed range inside", sql: q("created_at >= '2023-06-01' AND created_at < '2023-07-01'"), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat},
		{name: "fixed range from the window's first day", sql: q("created_at >= '2023-03-17' AND created_at < '2023-04-01'"), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat},
		{name: "fixed range a day before the window", sql: q("created_at >= '2023-03-16' AND created_at < '2023-04-01'"), reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat},
		{name: "bound parameter inside", sql: q("created_at >= $1"), rollup: "orders_rolling", cfg: utcCfg, cat: utcCat,
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2023-09-01 00:00:00+00"}}},
		{name: "bound parameter outside", sql: q("created_at >= $1"), reason: ReasonNotCovered, cfg: utcCfg, cat: utcCat,
			params: []Param{{Type: pgtype.TimestamptzOID, Value: "2023-01-01 00:00:00+00"}}},
		{name: "the filter's own text off a bucket edge", sql: q("created_at > now() - interval '30 days'"), reason: ReasonUnalignedRange, cfg: strictCfg, cat: strictCat},
		{name: "strict window, next midnight", sql: q("created_at >= current_date - 29"), rollup: "orders_rolling", cfg: strictCfg, cat: strictCat},
		{name: "strict window, midnight before", sql: q("created_at >= current_date - 30"), reason: ReasonNotCovered, cfg: strictCfg, cat: strictCat},
		{name: "strict date window excludes its day", sql: q("created_at >= '2024-02-14'"), reason: ReasonNotCovered, cfg: edgeCfg, cat: edgeCat},
		{name: "strict date window, the day after", sql: q("created_at >= '2024-02-15'"), rollup: "orders_rolling", cfg: edgeCfg, cat: edgeCat},
		{name: "closed window, last week", sql: q("created_at >= current_date - 7 AND created_at < current_date"), rollup: "orders_rolling", cfg: rangeCfg, cat: rangeCat},
		{name: "closed window, through today", sql: q("created_at >= current_date - 7"), reason: ReasonNotCovered, cfg: rangeCfg, cat: rangeCat},
		{name: "closed window, the same text", sql: q("created_at >= current_date - 30 AND created_at < current_date"), rollup: "orders_rolling", cfg: rangeCfg, cat: rangeCat},
		{name: "New York build, New York session", zone: "America/New_York", sql: q(last52), rollup: "orders_rolling", cfg: nyCfg, cat: nyCat},
		{name: "New York build, UTC session's midnight is earlier", sql: q(last52), reason: ReasonNotCovered, cfg: nyCfg, cat: nyCat},
		{name: "New York build, UTC session, 51 weeks", sql: q("created_at >= date_trunc('day', now()) - interval '51 weeks'"), rollup: "orders_rolling", cfg: nyCfg, cat: nyCat},
		{name: "date column, strict window, its next day", sql: "SELECT status, count(*) FROM orders WHERE order_date >= '2024-02-14' GROUP BY status", rollup: "orders_rolling", cfg: dateCfg, cat: dateCat},
		{name: "date column, strict window, its own day", sql: "SELECT status, count(*) FROM orders WHERE order_date >= '2024-02-13' GROUP BY status", reason: ReasonNotCovered, cfg: dateCfg, cat: dateCat},
		{name: "date column, > a day is >= the next", sql: "SELECT status, count(*) FROM orders WHERE order_date > current_date - 31 GROUP BY status", rollup: "orders_rolling", cfg: dateCfg, cat: dateCat},
		{name: "timestamp column, New York window", sql: "SELECT status, count(*) FROM orders WHERE local_ts >= '2023-03-01' GROUP BY status", rollup: "orders_rolling", cfg: localCfg, cat: localCat},
		{name: "timestamp column, a month before", sql: "SELECT status, count(*) FROM orders WHERE local_ts >= '2023-02-01' GROUP BY status", reason: ReasonNotCovered, cfg: localCfg, cat: localCat},
		{name: "offline: folded as if built now", sql: q("created_at >= date_trunc('day', now()) - interval '12 weeks'"), rollup: "orders_rolling", cfg: utcCfg, cat: offlineCat},
		{name: "offline: the window's own text", sql: q(last52), rollup: "orders_rolling", cfg: utcCfg, cat: offlineCat},
		{name: "offline: 60 weeks", sql: q("created_at >= date_trunc('day', now()) - interval '60 weeks'"), reason: ReasonNotCovered, cfg: utcCfg, cat: offlineCat},
		{name: "offline: unbounded", sql: "SELECT status, count(*) FROM orders GROUP BY status", reason: ReasonNotCovered, cfg: utcCfg, cat: offlineCat},
		{name: "version without recorded windows", sql: q("created_at >= '2023-06-01'"), reason: ReasonFilterNotImplied, cfg: utcCfg, cat: oldCat},
		{name: "window on another column", sql: q("order_date >= current_date - 30 AND created_at >= '2024-03-01'"), reason: ReasonFilterNotImplied, cfg: otherCfg, cat: otherCat},
		{name: "not built yet", sql: q("created_at >= '2023-06-01'"), reason: ReasonNotBuilt, cfg: utcCfg, cat: func(c *Catalog) {
			utcCat(c)
			for _, r := range c.Rollups {
				r.Status, r.Version = StatusPending, ""
			}
		}},
	}
}

func TestRollingWindow(t *testing.T) { runCases(t, rollingCases()) }

// TestRollingWindowReason: the refusal names the window that was built.
func TestRollingWindowReason(t *testing.T) {
	c := rollingCases()[5]
	cfg := testConfig()
	c.cfg(cfg)
	cat := catalogOf(t, cfg, nil)
	c.cat(cat)
	d := decide(t, cat, Session{TimeZone: "UTC"}, c.sql)
	for _, want := range []string{"orders.created_at >= '2023-03-17 00:00:00+00'::timestamptz", "[unbounded, unbounded)", "interval '52 weeks'"} {
		if !strings.Contains(d.Reason.Message, want) {
			t.Errorf("reason %q lacks %q", d.Reason.Message, want)
		}
	}
}
