package rewrite

import (
	"errors"
	"fmt"
	"testing"
	"time"

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
		{name: "inside one bucket", sql: `SELECT count(*) FROM orders WHERE created_at BETWEEN '2024-02-01 10:05' AND '2024-02-01 10:55'`},
		{name: "exclusive aligned lower bound", sql: `SELECT count(*) FROM orders WHERE created_at > '2024-02-01 10:00' AND created_at < '2024-02-02'`,
			grain: config.Hour, from: "2024-02-01T11:00:00Z", to: "2024-02-02T00:00:00Z",
			want: []string{`WHERE orders.created_at > '2024-02-01 10:00:00+00'::timestamp with time zone AND orders.created_at < '2024-02-01 11:00:00+00'::timestamp with time zone`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			zone := c.zone
			if zone == "" {
				zone = "UTC"
			}
			sess := Session{TimeZone: zone, Now: testNow}
			var got *EdgeSplit
			var d Decision
			for _, l := range LambdaCores(FinishCores(tree)) {
				for _, s := range l.EdgeSplits(cat, sess) {
					if d = decide(t, cat, sess, s.SQL); d.Outcome == OutcomeRollup {
						got = s
						break
					}
					t.Logf("%s: %s", s.SQL, d.Reason)
				}
				if got != nil {
					break
				}
			}
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
