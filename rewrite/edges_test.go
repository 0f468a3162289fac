package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
)

// TestEdgeSplits checks the splits of ranges that cut through buckets: the
// whole buckets a rollup answers, and the edges the warehouse reads with
// the bounds folded to literals.
func TestEdgeSplits(t *testing.T) {
	cat := testCatalog(t)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		sql      string
		zone     string
		grain    config.Granularity // the first split's; "" for none
		from, to string
		want     []string // substrings of the statement
	}{
		{name: "grafana timeFilter", sql: `SELECT status, sum(amount), count(*) FROM orders WHERE created_at BETWEEN '2024-02-03T10:17:00Z' AND '2024-03-09T22:41:13.5Z' GROUP BY status ORDER BY status`,
			grain: config.Hour, from: "2024-02-03T11:00:00Z", to: "2024-03-09T22:00:00Z",
			want: []string{`WHERE (orders.created_at >= '2024-02-03 10:17:00+00'::timestamp with time zone AND orders.created_at < '2024-02-03 11:00:00+00'::timestamp with time zone) OR (orders.created_at >= '2024-03-09 22:00:00+00'::timestamp with time zone AND orders.created_at <= '2024-03-09 22:41:13.5+00'::timestamp with time zone) GROUP BY status`}},
		{name: "last 36 hours in New York", zone: "America/New_York", sql: `SELECT date_trunc('day', created_at) AS d, count(*) FROM orders o WHERE created_at >= localtimestamp - interval '36 hours' AND status <> 'x' GROUP BY 1`,
			grain: config.Hour, from: "2024-03-13T23:00:00Z",
			want: []string{`WHERE status <> 'x' AND (o.created_at >= '2024-03-13 22:30:00+00'::timestamp with time zone AND o.created_at < '2024-03-13 23:00:00+00'::timestamp with time zone) GROUP BY`}},
		{name: "grouping without aggregates", sql: `SELECT date_trunc('year', o.created_at) AS c1 FROM orders o WHERE o.created_at >= DATE '2024-01-22' AND o.created_at <= (DATE '2024-03-07') GROUP BY 1 ORDER BY 1`,
			grain: config.Hour, from: "2024-01-22T00:00:00Z", to: "2024-03-07T00:00:00Z",
			want: []string{`SELECT "pgrollup_k1" FROM (SELECT NULL::pg_catalog.timestamptz AS "pgrollup_k1" WHERE false UNION ALL SELECT date_trunc('year', o.created_at) AS pgrollup_k1 FROM orders o WHERE o.created_at >= '2024-03-07 00:00:00+00'::timestamp with time zone AND o.created_at <= '2024-03-07 00:00:00+00'::timestamp with time zone GROUP BY`}},
		// New York skips 02:00-03:00 on 10 March 2024: Postgres reads
		// 02:30 with the offset before the change (07:30 UTC).
		{name: "a bound in the hour New York skips", zone: "America/New_York", sql: `SELECT status, count(*) FROM orders WHERE created_at >= '2024-03-10 02:30' AND created_at < '2024-03-12 10:00' GROUP BY status`,
			grain: config.Hour, from: "2024-03-10T08:00:00Z", to: "2024-03-12T14:00:00Z",
			want: []string{`WHERE orders.created_at >= '2024-03-10 07:30:00+00'::timestamp with time zone AND orders.created_at < '2024-03-10 08:00:00+00'::timestamp with time zone GROUP BY`}},
		{name: "inside one bucket", sql: `SELECT count(*) FROM orders WHERE created_at BETWEEN '2024-02-01 10:05' AND '2024-02-01 10:55'`},
		{name: "exclusive aligned lower bound", sql: `SELECT count(*) FROM orders WHERE created_at > '2024-02-01 10:00' AND created_at < '2024-02-02'`,
			grain: config.Hour, from: "2024-02-01T11:00:00Z", to: "2024-02-02T00:00:00Z",
			want: []string{`WHERE orders.created_at > '2024-02-01 10:00:00+00'::timestamp with time zone AND orders.created_at < '2024-02-01 11:00:00+00'::timestamp with time zone`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, d := answeredSplit(t, cat, c.sql, c.zone, false)
			if c.grain == "" {
				if got != nil {
					t.Fatalf("want no split, got %s split %q", got.Grain, got.SQL)
				}
				return
			}
			if got == nil {
				t.Fatal("no split answered")
			}
			if got.Grain != c.grain || (c.from != "" && !got.From.Equal(at(c.from))) || (c.to != "" && !got.To.Equal(at(c.to))) || (c.to == "" && !got.To.IsZero()) {
				t.Fatalf("split %s [%s, %s), want %s [%s, %s)", got.Grain, got.From, got.To, c.grain, c.from, c.to)
			}
			sql, err := got.Statement(d.Columns, nil)
			checkStatement(t, sql, err, c.want)
		})
	}
}

// answeredSplit is the first split of sql's partial cores, in zone (""
// for UTC), whose whole buckets cat answers, and its decision: at the
// edges of lambda rollups' buckets (LambdaEdgeSplits) or ordinary ones'.
func answeredSplit(t *testing.T, cat *Catalog, sql, zone string, lambda bool) (*EdgeSplit, Decision) {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	if zone == "" {
		zone = "UTC"
	}
	sess := Session{TimeZone: zone, Now: testNow}
	splits := (*LambdaCore).EdgeSplits
	if lambda {
		splits = (*LambdaCore).LambdaEdgeSplits
	}
	for _, l := range LambdaCores(FinishCores(tree)) {
		for _, s := range splits(l, cat, sess) {
			d := decide(t, cat, sess, s.SQL)
			if d.Outcome == OutcomeRollup {
				return s, d
			}
			t.Logf("%s: %s", s.SQL, d.Reason)
		}
	}
	return nil, Decision{}
}

// TestEdgeSplitsKept checks that a core writes each split's parts once and
// fills the bounds in at every execution: a relative range moves its edges
// with the clock, and its whole buckets once a bucket, and every split reads
// as one written afresh by a new core.
func TestEdgeSplitsKept(t *testing.T) {
	cat := testCatalog(t)
	const sql = "SELECT status, count(*) FROM orders WHERE created_at >= now() - interval '36 hours' AND created_at < now() - interval '20 minutes' GROUP BY status"
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	cores := LambdaCores(FinishCores(tree))
	if len(cores) != 1 {
		t.Fatalf("%d partial cores", len(cores))
	}
	kept := cores[0]
	for _, step := range []time.Duration{0, 7 * time.Second, 90 * time.Second, 70 * time.Minute, 7 * time.Second} {
		sess := Session{TimeZone: "UTC", Now: testNow.Add(step)}
		got := kept.EdgeSplits(cat, sess)
		want := LambdaCores(FinishCores(tree))[0].EdgeSplits(cat, sess)
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("at %s: %d splits, a new core has %d", sess.Now, len(got), len(want))
		}
		for i := range got {
			if got[i].SQL != want[i].SQL || got[i].fresh != want[i].fresh || !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
				t.Errorf("at %s, split %d:\n%s\n%s\na new core's:\n%s\n%s", sess.Now, i, got[i].SQL, got[i].fresh, want[i].SQL, want[i].fresh)
			}
		}
	}
}

// TestMemo checks that a memo computes a key once, keeps errors too, and
// stays within memoEntries.
func TestMemo(t *testing.T) {
	var m memo[string]
	calls := 0
	get := func(key string) (string, error) {
		return m.get(key, func() (string, error) {
			calls++
			if key == "bad" {
				return "", errors.New("bad")
			}
			return key + "!", nil
		})
	}
	for range 3 {
		if v, err := get("a"); v != "a!" || err != nil {
			t.Fatalf("get(a) = %q, %v", v, err)
		}
		if _, err := get("bad"); err == nil {
			t.Fatal("get(bad): no error")
		}
	}
	if calls != 2 {
		t.Fatalf("%d computations, want 2", calls)
	}
	for i := range 3 * memoEntries {
		if _, err := get(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.m) > memoEntries {
		t.Fatalf("%d entries kept, at most %d", len(m.m), memoEntries)
	}
}

// TestLambdaEdgeSplits checks the splits of ranges that cut through a
// lambda rollup's buckets: the rollup answers the whole buckets (its rows
// below the cutoff), and the warehouse part reads the edges and the whole
// buckets' rows at or above the cutoff, with either bound absent, over the
// time column or an id column.
func TestLambdaEdgeSplits(t *testing.T) {
	cutoff := time.Date(2024, 3, 15, 10, 17, 42, 123456000, time.UTC)
	const cut = `'2024-03-15 10:17:42.123456+00'::pg_catalog.timestamptz`
	const day = "+00'::timestamp with time zone"
	cases := []struct {
		name     string
		sql      string
		zone     string
		id       bool // the lambda column is id (nullable), cutoff -42
		local    bool // created_at is a timestamp: wall clocks in build_timezone
		from, to string
		want     []string // substrings of the statement
		below    []string // substrings of the whole buckets below the cutoff
		none     bool
	}{
		{name: "grafana timeFilter up to now", sql: `SELECT status, sum(amount), count(*) FROM orders WHERE created_at BETWEEN '2024-03-10T21:17:03Z' AND '2024-03-15T10:29:03.512Z' GROUP BY status ORDER BY status`,
			from: "2024-03-11T00:00:00Z", to: "2024-03-15T00:00:00Z",
			want: []string{`WHERE (orders.created_at >= '2024-03-10 21:17:03` + day + ` AND orders.created_at < '2024-03-11 00:00:00` + day + `) OR (orders.created_at >= '2024-03-15 00:00:00` + day + ` AND orders.created_at <= '2024-03-15 10:29:03.512` + day + `) OR (orders.created_at >= '2024-03-11 00:00:00` + day + ` AND orders.created_at < '2024-03-15 00:00:00` + day + ` AND orders.created_at >= ` + cut + `) GROUP BY status`,
				`) AS "pgrollup_l" GROUP BY "pgrollup_k1"`, "ORDER BY status"},
			below: []string{`WHERE orders.created_at >= '2024-03-11 00:00:00` + day + ` AND orders.created_at < '2024-03-15 00:00:00` + day + ` AND orders.created_at < ` + cut + ` GROUP BY status`}},
		{name: "last 36 hours, open to now", sql: `SELECT status, count(*), avg(amount) FROM orders o WHERE created_at >= now() - interval '36 hours' AND status <> 'x' GROUP BY status`,
			from: "2024-03-14T00:00:00Z",
			want: []string{`WHERE status <> 'x' AND ((o.created_at >= '2024-03-13 22:30:00` + day + ` AND o.created_at < '2024-03-14 00:00:00` + day + `) OR (o.created_at >= '2024-03-14 00:00:00` + day + ` AND o.created_at >= ` + cut + `)) GROUP BY status`}},
		{name: "upper bound only, in New York", zone: "America/New_York", sql: `SELECT count(*) FROM orders WHERE created_at < '2024-03-12 10:00'`,
			to:   "2024-03-12T00:00:00Z",
			want: []string{`WHERE (orders.created_at >= '2024-03-12 00:00:00` + day + ` AND orders.created_at < '2024-03-12 14:00:00` + day + `) OR (orders.created_at < '2024-03-12 00:00:00` + day + ` AND orders.created_at >= ` + cut + `)`}},
		{name: "id column", id: true, sql: `SELECT status, sum(amount) FROM orders o WHERE o.created_at BETWEEN '2024-03-10T21:17:03Z' AND '2024-03-15T10:29:03.512Z' GROUP BY status`,
			from: "2024-03-11T00:00:00Z", to: "2024-03-15T00:00:00Z",
			want:  []string{`OR (o.created_at >= '2024-03-11 00:00:00` + day + ` AND o.created_at < '2024-03-15 00:00:00` + day + ` AND (o.id >= '-42'::pg_catalog.int8 OR o.id IS NULL))`},
			below: []string{`WHERE o.created_at >= '2024-03-11 00:00:00` + day + ` AND o.created_at < '2024-03-15 00:00:00` + day + ` AND o.id < '-42'::pg_catalog.int8 GROUP BY status`}},
		{name: "a timestamp column, in New York", zone: "America/New_York", local: true, sql: `SELECT status, count(*) FROM orders WHERE created_at >= localtimestamp - interval '36 hours' GROUP BY status`,
			from:  "2024-03-14T00:00:00Z",
			want:  []string{`WHERE (orders.created_at >= '2024-03-13 18:30:00'::timestamp AND orders.created_at < '2024-03-14 00:00:00'::timestamp) OR (orders.created_at >= '2024-03-14 00:00:00'::timestamp AND orders.created_at >= '2024-03-15 10:17:42.123456'::pg_catalog.timestamp) GROUP BY status`},
			below: []string{`WHERE orders.created_at >= '2024-03-14 00:00:00'::timestamp AND orders.created_at < '2024-03-15 10:17:42.123456'::pg_catalog.timestamp GROUP BY status`}},
		{name: "aligned: the lambda answer itself", sql: `SELECT count(*) FROM orders WHERE created_at >= '2024-03-11' AND created_at < '2024-03-14'`, none: true},
		{name: "inside one bucket", sql: `SELECT count(*) FROM orders WHERE created_at BETWEEN '2024-03-11 10:00' AND '2024-03-11 12:00'`, none: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cat := lambdaCatalog(t, cutoff)
			st := cat.Rollups[0]
			if c.id {
				id := int64(-42)
				st.Def.Lambda, st.LambdaCutoff, st.LambdaCutoffID = &config.Lambda{Column: "id"}, time.Time{}, &id
			}
			if c.local {
				cat.Tables["public.orders"].column("created_at").Type = plain(pgtype.TimestampOID)
			}
			column, cutLit, _, ok := cat.LambdaCutoff(st)
			if !ok {
				t.Fatal("no cutoff")
			}
			if s, _ := answeredSplit(t, cat, c.sql, c.zone, false); s != nil {
				t.Errorf("a lambda rollup's split among the ordinary ones: %s", s.SQL)
			}
			got, d := answeredSplit(t, cat, c.sql, c.zone, true)
			if c.none {
				if got != nil {
					t.Fatalf("want no split, got %q", got.SQL)
				}
				return
			}
			if got == nil {
				t.Fatal("no split answered")
			}
			at := func(s string) time.Time {
				if s == "" {
					return time.Time{}
				}
				v, err := time.Parse(time.RFC3339, s)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if got.LambdaColumn != column || !got.From.Equal(at(c.from)) || !got.To.Equal(at(c.to)) {
				t.Fatalf("split on %q [%s, %s), want on %q [%s, %s)", got.LambdaColumn, got.From, got.To, column, c.from, c.to)
			}
			if _, err := got.Statement(d.Columns, nil); err == nil {
				t.Error("a lambda split's statement without its cutoff")
			}
			if _, err := got.LambdaStatement(d.Columns, nil, "amount", cutLit); err == nil {
				t.Error("a lambda split's statement with another column's cutoff")
			}
			one := "1"
			row := make([]*string, len(d.Columns))
			for i := range row {
				row[i] = &one
			}
			for _, rows := range [][][]*string{nil, {row}} {
				sql, err := got.LambdaStatement(d.Columns, rows, column, cutLit)
				checkStatement(t, sql, err, c.want)
			}
			below, err := got.BelowCutoff("public.orders", column, cutLit)
			checkStatement(t, below, err, c.below)
			if strings.Contains(below, "UNION") || strings.Contains(below, " OR ") {
				t.Errorf("the whole buckets below the cutoff:\n%s", below)
			}
		})
	}
	// Ordinary rollups make no lambda splits.
	tree, err := pg_query.Parse(cases[0].sql)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range LambdaCores(FinishCores(tree)) {
		if s := l.LambdaEdgeSplits(testCatalog(t), Session{TimeZone: "UTC", Now: testNow}); len(s) != 0 {
			t.Errorf("%d lambda splits over ordinary rollups", len(s))
		}
	}
}

// TestDateEdgeSplits checks the splits of ranges on a date column with a
// monthly rollup: only bounds that fold to dates split, on whole days of
// the calendar, with date literals in both parts, for ordinary and lambda
// rollups; a bound that is a time passes through.
func TestDateEdgeSplits(t *testing.T) {
	cfg := testConfig()
	cfg.Rollups = []config.Rollup{{
		Name: "orders_date_monthly", Table: "public.orders",
		Dimensions:    []string{"status"},
		TimeDimension: "order_date", Granularity: config.Month,
		Measures: []string{"count(*)", "sum(amount)", "count(amount)"},
	}}
	cat := catalogOf(t, cfg, nil)
	day := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		return mustDay(s)
	}
	cases := []struct {
		name     string
		sql      string
		zone     string
		from, to string   // the whole buckets; both "" for no split
		want     []string // substrings of the statement
	}{
		{name: "between two dates cutting months", sql: `SELECT status, count(*), sum(amount) FROM orders WHERE order_date BETWEEN '2024-01-15' AND '2024-03-10' GROUP BY status ORDER BY status`,
			from: "2024-02-01", to: "2024-03-01",
			want: []string{`WHERE (orders.order_date >= '2024-01-15'::date AND orders.order_date < '2024-02-01'::date) OR (orders.order_date >= '2024-03-01'::date AND orders.order_date < '2024-03-11'::date) GROUP BY status`, "ORDER BY status"}},
		{name: "typed dates, > and <=", sql: `SELECT count(*) FROM orders o WHERE o.order_date > DATE '2024-01-14' AND o.order_date <= CAST('2024-03-10' AS date)`,
			from: "2024-02-01", to: "2024-03-01",
			want: []string{`WHERE (o.order_date >= '2024-01-15'::date AND o.order_date < '2024-02-01'::date) OR (o.order_date >= '2024-03-01'::date AND o.order_date < '2024-03-11'::date)`}},
		{name: "last 30 days, open", sql: `SELECT status, avg(amount) FROM orders WHERE order_date >= current_date - 30 GROUP BY status`,
			from: "2024-03-01",
			want: []string{`WHERE orders.order_date >= '2024-02-14'::date AND orders.order_date < '2024-03-01'::date GROUP BY status`}},
		{name: "last 45 days in Kiritimati, already tomorrow", zone: "Pacific/Kiritimati", sql: `SELECT count(*) FROM orders WHERE order_date >= current_date - 45 AND order_date < CAST(now() AS date)`,
			from: "2024-02-01", to: "2024-03-01",
			want: []string{`WHERE (orders.order_date >= '2024-01-31'::date AND orders.order_date < '2024-02-01'::date) OR (orders.order_date >= '2024-03-01'::date AND orders.order_date < '2024-03-16'::date)`}},
		{name: "no whole month in the last 30 days", zone: "Pacific/Kiritimati", sql: `SELECT count(*) FROM orders WHERE order_date >= current_date - 30 AND order_date < current_date`},
		{name: "a Cube month range ends on the month's last day", sql: `SELECT count(*) FROM orders WHERE order_date >= '2024-01-20' AND order_date <= '2024-03-31'`,
			from: "2024-02-01", to: "2024-04-01",
			want: []string{`WHERE orders.order_date >= '2024-01-20'::date AND orders.order_date < '2024-02-01'::date`}},
		{name: "inside one month", sql: `SELECT count(*) FROM orders WHERE order_date BETWEEN '2024-02-03' AND '2024-02-20'`},
		{name: "aligned", sql: `SELECT count(*) FROM orders WHERE order_date >= '2024-02-01' AND order_date <= '2024-03-31'`},
		{name: "a timestamp bound", sql: `SELECT count(*) FROM orders WHERE order_date >= '2024-01-15 00:00'::timestamp AND order_date < '2024-03-10'`},
		{name: "a timestamp bound at a month's midnight", sql: `SELECT count(*) FROM orders WHERE order_date >= '2024-02-01 00:00'::timestamp AND order_date < '2024-03-10'`},
		{name: "a timestamptz bound", sql: `SELECT count(*) FROM orders WHERE order_date BETWEEN now() - interval '60 days' AND '2024-03-10'`},
		{name: "date minus an interval is a timestamp", sql: `SELECT count(*) FROM orders WHERE order_date >= current_date - interval '30 days'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, d := answeredSplit(t, cat, c.sql, c.zone, false)
			if c.want == nil {
				if got != nil {
					t.Fatalf("want no split, got %s split %q", got.Grain, got.SQL)
				}
				return
			}
			if got == nil {
				t.Fatal("no split answered")
			}
			if got.Grain != config.Month || !got.From.Equal(day(c.from)) || !got.To.Equal(day(c.to)) {
				t.Fatalf("split %s [%s, %s), want month [%s, %s)", got.Grain, got.From, got.To, c.from, c.to)
			}
			if !strings.Contains(got.SQL, "'::date") || strings.Contains(got.SQL, "timestamp") {
				t.Errorf("the whole buckets are not bounded by dates:\n%s", got.SQL)
			}
			sql, err := got.Statement(d.Columns, nil)
			checkStatement(t, sql, err, c.want)
			if strings.Contains(sql, "timestamp") {
				t.Errorf("the edges read times:\n%s", sql)
			}
		})
	}
	// ISO weeks of a date column start on Mondays, as date_trunc's do.
	wcfg := testConfig()
	wcfg.Rollups = []config.Rollup{cfg.Rollups[0]}
	wcfg.Rollups[0].Name, wcfg.Rollups[0].Granularity = "orders_date_weekly", config.Week
	s, d := answeredSplit(t, catalogOf(t, wcfg, nil), `SELECT count(*) FROM orders WHERE order_date BETWEEN '2024-02-07' AND '2024-02-22'`, "", false)
	if s == nil || s.Grain != config.Week || !s.From.Equal(day("2024-02-12")) || !s.To.Equal(day("2024-02-19")) {
		t.Fatalf("weekly split %+v", s)
	}
	sql, err := s.Statement(d.Columns, nil)
	checkStatement(t, sql, err, []string{`WHERE (orders.order_date >= '2024-02-07'::date AND orders.order_date < '2024-02-12'::date) OR (orders.order_date >= '2024-02-19'::date AND orders.order_date < '2024-02-23'::date)`})

	// A lambda rollup over a date column splits on whole days too; its
	// cutoff is a day.
	cfg.Rollups[0].Lambda = &config.Lambda{Column: "order_date"}
	lcat := catalogOf(t, cfg, nil)
	lcat.Rollups[0].LambdaCutoff = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	column, cutLit, _, ok := lcat.LambdaCutoff(lcat.Rollups[0])
	if !ok || column != "order_date" || cutLit != `'2024-03-01'::pg_catalog.date` {
		t.Fatalf("cutoff %s %s %v", column, cutLit, ok)
	}
	for _, c := range []struct{ sql, want, below string }{
		{cases[0].sql,
			`WHERE (orders.order_date >= '2024-01-15'::date AND orders.order_date < '2024-02-01'::date) OR (orders.order_date >= '2024-03-01'::date AND orders.order_date < '2024-03-11'::date) OR (orders.order_date >= '2024-02-01'::date AND orders.order_date < '2024-03-01'::date AND orders.order_date >= '2024-03-01'::pg_catalog.date) GROUP BY status`,
			`WHERE orders.order_date >= '2024-02-01'::date AND orders.order_date < '2024-03-01'::date AND orders.order_date < '2024-03-01'::pg_catalog.date GROUP BY status`},
		{`SELECT count(*) FROM orders WHERE order_date >= current_date - 60`,
			`WHERE (orders.order_date >= '2024-01-15'::date AND orders.order_date < '2024-02-01'::date) OR (orders.order_date >= '2024-02-01'::date AND orders.order_date >= '2024-03-01'::pg_catalog.date)`,
			`WHERE orders.order_date >= '2024-02-01'::date AND orders.order_date < '2024-03-01'::pg_catalog.date`},
	} {
		if s, _ := answeredSplit(t, lcat, c.sql, "", false); s != nil {
			t.Errorf("a lambda rollup's split among the ordinary ones: %s", s.SQL)
		}
		s, d := answeredSplit(t, lcat, c.sql, "", true)
		if s == nil {
			t.Fatalf("%s: no lambda split answered", c.sql)
		}
		sql, err := s.LambdaStatement(d.Columns, nil, column, cutLit)
		checkStatement(t, sql, err, []string{c.want})
		below, err := s.BelowCutoff("public.orders", column, cutLit)
		checkStatement(t, below, err, []string{c.below})
	}
	// A time on a lambda rollup's date column does not split either.
	if s, _ := answeredSplit(t, lcat, `SELECT count(*) FROM orders WHERE order_date >= now() - interval '60 days'`, "", true); s != nil {
		t.Errorf("a time bound on a lambda rollup's date column split: %s", s.SQL)
	}
}
