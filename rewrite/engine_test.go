package rewrite

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

func mustParse(t testing.TB, sql string) *pg_query.ParseResult {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestEngineFoldsPerExecution: a prepared statement is reused with other
// parameter values and another clock, and each execution decides as an
// uncached decision with those values would.
func TestEngineFoldsPerExecution(t *testing.T) {
	cat := testCatalog(t)
	janFeb(cat)
	e := NewEngine(0)
	type exec struct {
		params []Param
		now    time.Time
		want   string // rollup or reason code
		files  int
	}
	stmts := []struct {
		sql   string
		execs []exec
	}{{
		sql: "SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2",
		execs: []exec{
			{params: tstz("2024-01-01", "2024-02-01"), want: "orders_daily", files: 1},
			{params: tstz("2024-01-01 00:30", "2024-02-01"), want: string(ReasonUnalignedRange)},
			{params: tstz("2024-01-01", "2024-03-01"), want: "orders_daily", files: 2},
			{params: tstz("2023-12-01", "2024-03-01"), want: string(ReasonNotCovered)},
			{params: []Param{{Type: pgtype.TimestamptzOID, Value: "2024-02-01 00:00:00+00"}}, want: string(ReasonParameter)},
			{params: tstz("2024-02-01", "2024-03-01"), want: "orders_daily", files: 1},
		},
	}, {
		sql: "SELECT date_trunc('day', created_at), count(*) FROM orders WHERE created_at >= date_trunc('month', now()) AND created_at < date_trunc('month', now()) + interval '1 month' GROUP BY 1",
		execs: []exec{
			{now: time.Date(2024, 1, 20, 0, 0, 0, 0, time.UTC), want: "orders_daily", files: 1},
			{now: time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC), want: "orders_daily", files: 1},
			{now: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), want: string(ReasonNotCovered)},
		},
	}, {
		sql: "SELECT status, count(*) FROM orders WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01' AND status = $1 GROUP BY 1 LIMIT $2",
		execs: []exec{
			{params: []Param{{Value: "paid"}, {Type: pgtype.Int8OID, Value: "10"}}, want: "orders_daily", files: 1},
			{params: []Param{{Null: true}, {Type: pgtype.Int8OID, Value: "10"}}, want: "orders_daily", files: 1},
			{params: []Param{{Value: "new"}, {Type: pgtype.Int8OID, Value: "-1"}}, want: string(ReasonShape)},
			{params: []Param{{Value: "new"}, {Type: pgtype.Int8OID, Null: true}}, want: "orders_daily", files: 1},
		},
	}}
	for _, st := range stmts {
		tree := mustParse(t, st.sql)
		for i, x := range st.execs {
			sess := Session{TimeZone: "UTC", Params: x.params, Now: x.now}
			if sess.Now.IsZero() {
				sess.Now = testNow
			}
			got := e.Decide(st.sql, tree, sess, cat)
			want := DecideAnalysis(Analyze(tree), sess, cat)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, execution %d: engine %+v\nuncached %+v", st.sql, i, got, want)
			}
			switch {
			case got.Outcome == OutcomeRollup && got.Rollup == x.want:
				if len(got.Files) != x.files {
					t.Errorf("%s, execution %d: %d files, want %d", st.sql, i, len(got.Files), x.files)
				}
			case got.Outcome == OutcomePassthrough && string(got.Reason.Code) == x.want:
			default:
				t.Errorf("%s, execution %d: want %s, got %s %s %v", st.sql, i, x.want, got.Outcome, got.Rollup, got.Reason)
			}
		}
	}
	if n := e.prepared.Len(); n != 4 {
		// The first statement is prepared twice: once with two parameters, once with one.
		t.Errorf("%d preparations cached, want 4", n)
	}
}

func tstz(lo, hi string) []Param {
	f := func(s string) string {
		if len(s) == 10 {
			s += " 00:00"
		}
		return s + ":00+00"
	}
	return []Param{{Type: pgtype.TimestamptzOID, Value: f(lo)}, {Type: pgtype.TimestamptzOID, Value: f(hi)}}
}

// TestEngineConcurrent decides a mix of statements from many goroutines on
// one Engine; run with -race it checks that executions share nothing mutable.
func TestEngineConcurrent(t *testing.T) {
	cat := testCatalog(t)
	e := NewEngine(16)
	sqls := []string{
		"SELECT count(*) FROM orders WHERE created_at >= $1 AND created_at < $2",
		"SELECT status, sum(amount) FROM orders WHERE status = $1 GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
		"SELECT date_trunc('month', created_at), count(*) FROM orders WHERE created_at >= now() - interval '3 months' GROUP BY 1",
		"SELECT date_trunc('month', created_at), count(*) FROM orders WHERE created_at >= date_trunc('month', now() - interval '3 months') GROUP BY 1",
	}
	trees := make([]*pg_query.ParseResult, len(sqls))
	for i, s := range sqls {
		trees[i] = mustParse(t, s)
	}
	zones := []string{"UTC", "Europe/Berlin", "Asia/Kolkata"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := (g + i) % len(sqls)
				day := 1 + (g*7+i)%27
				sess := Session{
					TimeZone: zones[(g+i)%len(zones)],
					Now:      time.Date(2024, 3, day, 10, 0, 0, 0, time.UTC),
				}
				switch k {
				case 0:
					sess.Params = tstz(fmt.Sprintf("2024-01-%02d", day), "2024-02-01")
				case 1:
					sess.Params = []Param{{Value: fmt.Sprint("s", day)}}
				}
				got := e.Decide(sqls[k], trees[k], sess, cat)
				want := DecideAnalysis(Analyze(trees[k]), sess, cat)
				if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("%s in %s: engine %+v, uncached %+v", sqls[k], sess.TimeZone, got, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestEngineNewCatalog: a new catalog snapshot is used at once, and the
// preparations for the old one are dropped.
func TestEngineNewCatalog(t *testing.T) {
	sql := "SELECT status, count(*) FROM orders GROUP BY 1"
	tree := mustParse(t, sql)
	e := NewEngine(0)
	cat1 := testCatalog(t)
	if d := e.Decide(sql, tree, Session{Now: testNow}, cat1); d.Rollup != "orders_daily" {
		t.Fatalf("want orders_daily, got %v %v", d.Rollup, d.Reason)
	}
	cat2 := testCatalog(t)
	cat2.Rollups[0].Status = StatusBuilding
	if d := e.Decide(sql, tree, Session{Now: testNow}, cat2); d.Rollup != "orders_hourly" {
		t.Fatalf("want orders_hourly from the new catalog, got %v %v", d.Rollup, d.Reason)
	}
	if n := e.prepared.Len(); n != 1 {
		t.Errorf("%d preparations cached after a catalog switch, want 1", n)
	}
}

// TestEngineForgetsBigStatements checks that a statement too big to keep
// is decided as any other, and leaves nothing in the caches.
func TestEngineForgetsBigStatements(t *testing.T) {
	sql := "SELECT status, count(*) FROM orders WHERE status IN ('a'" + strings.Repeat(", 'a'", maxCachedText/5) + ") GROUP BY 1"
	tree := mustParse(t, sql)
	e := NewEngine(0)
	cat := testCatalog(t)
	for range 2 {
		if d := e.Decide(sql, tree, Session{Now: testNow}, cat); d.Rollup != "orders_daily" {
			t.Fatalf("want orders_daily, got %v %v", d.Rollup, d.Reason)
		}
	}
	if e.analyses.Len() != 0 || e.prepared.Len() != 0 {
		t.Errorf("%d analyses and %d preparations cached for a %d-byte statement", e.analyses.Len(), e.prepared.Len(), len(sql))
	}
}

// TestWholeHours checks the zone periods walk behind the hour-grain reuse.
func TestWholeHours(t *testing.T) {
	var zc zoneCache
	for _, c := range []struct {
		zone string
		from string
		want bool
	}{
		{"UTC", "", true},
		{"Europe/Berlin", "", true},
		{"America/New_York", "", true},
		{"Asia/Kolkata", "", false},
		{"Asia/Kathmandu", "2000-01-01", false},
		{"Australia/Lord_Howe", "2000-01-01", false}, // half-hour DST
		{"Africa/Monrovia", "", false},               // -0:44:30 until 1972
		{"Africa/Monrovia", "1973-01-01", true},
	} {
		var lo time.Time
		if c.from != "" {
			lo = mustDay(c.from)
		}
		z := zc.get(c.zone)
		if z.err != nil {
			t.Fatalf("%s: %v", c.zone, z.err)
		}
		if got := z.wholeHoursFrom(lo); got != c.want {
			t.Errorf("%s from %q: whole hours %v, want %v", c.zone, c.from, got, c.want)
		}
		if zc.get(c.zone) != z {
			t.Errorf("%s: not cached", c.zone)
		}
	}
	if z := zc.get("Not/A_Zone"); z.err == nil {
		t.Error("an unknown zone must fail")
	}
}

// TestTruncTime: truncating a reading to the hour keeps its UTC offset, as
// Postgres's date_trunc does, so each pass of a DST fall-back's repeated
// hour is its own bucket; a day looks its midnight up in the zone again.
func TestTruncTime(t *testing.T) {
	for _, c := range []struct {
		zone  string
		at    string // RFC 3339
		grain config.Granularity
		want  string // RFC 3339, in UTC
	}{
		{"Europe/Berlin", "2023-10-29T00:40:00Z", config.Hour, "2023-10-29T00:00:00Z"}, // 02:40+02
		{"Europe/Berlin", "2023-10-29T01:40:00Z", config.Hour, "2023-10-29T01:00:00Z"}, // 02:40+01
		{"America/New_York", "2023-11-05T05:59:59.5Z", config.Hour, "2023-11-05T05:00:00Z"},
		{"America/New_York", "2023-11-05T06:30:00Z", config.Hour, "2023-11-05T06:00:00Z"},
		{"America/New_York", "2024-03-10T07:30:00Z", config.Hour, "2024-03-10T07:00:00Z"}, // 03:30-04
		{"Asia/Kolkata", "2024-01-01T00:10:00Z", config.Hour, "2023-12-31T23:30:00Z"},
		{"Europe/Berlin", "2023-10-29T12:00:00Z", config.Day, "2023-10-28T22:00:00Z"},
		{"America/New_York", "2023-11-05T12:00:00Z", config.Day, "2023-11-05T04:00:00Z"},
	} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		at, err1 := time.Parse(time.RFC3339Nano, c.at)
		want, err2 := time.Parse(time.RFC3339Nano, c.want)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", c.at, err1, err2)
		}
		if got := truncTime(at.In(loc), c.grain); !got.Equal(want) {
			t.Errorf("%s %s in %s: got %s, want %s", c.grain, c.at, c.zone, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}

// TestTemplate: placeholders in prepared SQL are replaced by their values and
// the file list, and a malformed template is refused.
func TestTemplate(t *testing.T) {
	segs, ok := parseTemplate("SELECT " + slotMark(1) + " FROM read_parquet([" + filesMark + "]) WHERE x = " + slotMark(0))
	if !ok {
		t.Fatal("template refused")
	}
	got := assemble(segs, []string{"'a'", "1"}, []string{"f1.parquet", "it's.parquet"})
	want := "SELECT 1 FROM read_parquet(['f1.parquet', 'it''s.parquet']) WHERE x = 'a'"
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	for _, bad := range []string{"x\x00", "x\x00y\x00", "x\x00-1\x00"} {
		if _, ok := parseTemplate(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	// The parser refuses NUL in statement text; parameters are checked here.
	d := decide(t, testCatalog(t), Session{Params: []Param{{Value: "a\x00b"}}}, "SELECT count(*) FROM orders WHERE status = $1")
	if d.Outcome != OutcomePassthrough {
		t.Errorf("a NUL in a parameter must pass through: %+v", d)
	}
}

// TestParseTimeText: the spellings read, and those left to Postgres.
func TestParseTimeText(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // RFC 3339 in UTC; "" when it must not parse
		zone bool
	}{
		{"2024-01-01", "2024-01-01T00:00:00Z", false},
		{"2024-01-01 12:30", "2024-01-01T12:30:00Z", false},
		{"2024-01-01T12:30:15", "2024-01-01T12:30:15Z", false},
		{"2024-01-01 00:00:00.5", "2024-01-01T00:00:00.5Z", false},
		{"2024-01-01 00:00:00.123456", "2024-01-01T00:00:00.123456Z", false},
		{"2024-01-01 00:00:00+01", "2023-12-31T23:00:00Z", true},
		{"2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", true},
		{"2024-01-01 00:00:00-05:30", "2024-01-01T05:30:00Z", true},
		{"2024-01-01t00:00:00.000z", "2024-01-01T00:00:00Z", true},
		{" 2024-02-29 ", "2024-02-29T00:00:00Z", false},
		{"2024-01-01 00:00:00.1234567", "", false}, // Postgres rounds to microseconds
		{"2023-02-29", "", false},
		{"2024-13-01", "", false},
		{"2024-01-01 24:00", "", false},
		{"2024-01-01 23:59:60", "", false},
		{"0000-01-01", "", false},
		{"2024-1-1", "", false},
		{"yesterday", "", false},
		{"2024-01-01 12", "", false},
		{"2024-01-01 12:3x", "", false},
	} {
		got, zone, ok := parseTimeText(c.in)
		switch {
		case c.want == "" && ok:
			t.Errorf("%q parsed as %v", c.in, got)
		case c.want != "" && !ok:
			t.Errorf("%q does not parse", c.in)
		case ok && (got.UTC().Format(time.RFC3339Nano) != c.want || zone != c.zone):
			t.Errorf("%q: got %s (zone %v), want %s (zone %v)", c.in, got.UTC().Format(time.RFC3339Nano), zone, c.want, c.zone)
		}
	}
}

// TestTimeLiteral compares the hand-written formatter with time.Format.
func TestTimeLiteral(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		ts := time.Unix(r.Int63n(1<<35)-1<<34, r.Int63n(1e9)).UTC().Truncate(time.Duration(1+r.Intn(3)) * time.Microsecond)
		if i%3 == 0 {
			ts = ts.Truncate(time.Second)
		}
		if ts.Year() < 1 || ts.Year() > 9999 {
			continue
		}
		for _, k := range []valueKind{vInstant, vLocal, vDate} {
			v := tval{k, ts}
			var want string
			switch k {
			case vInstant:
				want = "TIMESTAMPTZ " + sqlquote.Literal(ts.Format("2006-01-02 15:04:05.999999")+"+00")
			case vLocal:
				want = "TIMESTAMP " + sqlquote.Literal(ts.Format("2006-01-02 15:04:05.999999"))
			case vDate:
				want = "DATE " + sqlquote.Literal(ts.Format("2006-01-02"))
			}
			if got := timeLiteral(v); got != want {
				t.Fatalf("%v kind %d: got %s, want %s", ts, k, got, want)
			}
		}
	}
}

// TestNumericTextOrder: numerics held as Postgres's text sort by value, NULLs
// where the suffix puts them.
func TestNumericTextOrder(t *testing.T) {
	db := openDuck(t)
	vals := []string{"-10.000000000000000001", "-10", "-9.99", "-1.5", "-1", "-0.25", "-0.0001", "0", "0.0000", "0.0001", "0.25",
		"1", "1.50", "1.5000000000000000001", "9.9999999999999999999999", "10", "123456789012345678901234567890.5"}
	if _, err := db.Exec("CREATE TABLE n (v VARCHAR)"); err != nil {
		t.Fatal(err)
	}
	for i := len(vals) - 1; i >= 0; i-- {
		if _, err := db.Exec("INSERT INTO n VALUES ('" + vals[i] + "')"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO n VALUES (NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		rows, err := db.Query("SELECT v FROM n ORDER BY " + strings.Join(numericTextOrder(`"v"`, sortSuffix(desc, 0)), ", "))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var v *string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v == nil {
				got = append(got, "NULL")
			} else {
				got = append(got, *v)
			}
		}
		rows.Close()
		want := append([]string{}, vals...)
		want = append(want, "NULL") // NULLs sort last ascending, first descending
		if desc {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		// "0" and "0.0000" are equal: either order.
		norm := func(s []string) string { return strings.ReplaceAll(" "+strings.Join(s, " ")+" ", " 0.0000 ", " 0 ") }
		if norm(got) != norm(want) {
			t.Errorf("desc=%v:\n got %v\nwant %v", desc, got, want)
		}
	}
}

// TestLongArithmeticChains: every operand of a chain of additions is
// translated once (a day shift is looked for on each +), so a chain of
// hundreds of terms is decided at once, not in time exponential in its
// length.
func TestLongArithmeticChains(t *testing.T) {
	cat := testCatalog(t)
	for _, sql := range []string{
		"SELECT status, count(*) FROM orders WHERE 1" + strings.Repeat("+1", 400) + " > 0 GROUP BY status",
		"SELECT status, count(*) FROM orders WHERE order_date" + strings.Repeat(" + 1", 400) + " > DATE '2024-01-01' GROUP BY status",
		"SELECT date_trunc('week', created_at" + strings.Repeat(" + interval '1 day'", 200) + "), count(*) FROM orders GROUP BY 1",
	} {
		start := time.Now()
		decide(t, cat, Session{TimeZone: "UTC"}, sql)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("deciding a %d-byte chain took %s", len(sql), d)
		}
	}
}
