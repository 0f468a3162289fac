package routing

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

func strs(vals ...string) []*string {
	out := make([]*string, len(vals))
	for i, v := range vals {
		if v != "NULL" {
			out[i] = &vals[i]
		}
	}
	return out
}

// TestCompareRows: values as text, floats within the last bits, a multiset
// unless ordered, and the first differing row named.
func TestCompareRows(t *testing.T) {
	cols := []rewrite.ResultColumn{
		{Name: "region", Type: rewrite.Type{OID: pgtype.TextOID}},
		{Name: "sum", Type: rewrite.Type{OID: pgtype.Float8OID}},
	}
	a := [][]*string{strs("east", "1.5"), strs("north", "0.30000000000000004")}
	for _, tt := range []struct {
		name      string
		rollup    [][]*string
		warehouse [][]*string
		ordered   bool
		want      string // "" equal, else a part of the difference
	}{
		{"same", a, [][]*string{strs("east", "1.5"), strs("north", "0.30000000000000004")}, true, ""},
		{"float last bits", a, [][]*string{strs("east", "1.5"), strs("north", "0.3")}, true, ""},
		{"other order, unordered", a, [][]*string{strs("north", "0.3"), strs("east", "1.5")}, false, ""},
		{"other order, ordered", a, [][]*string{strs("north", "0.3"), strs("east", "1.5")}, true, "row 1: rollup (region='east'"},
		{"value", a, [][]*string{strs("east", "1.5"), strs("north", "0.4")}, true, "row 2: rollup (region='north', sum='0.30000000000000004'), warehouse (region='north', sum='0.4')"},
		{"NULL", a, [][]*string{strs("east", "NULL"), strs("north", "0.3")}, true, "sum=NULL"},
		{"missing row", a, [][]*string{strs("east", "1.5"), strs("north", "0.3"), strs("west", "2")}, false, "first missing: (region='west'"},
		{"extra row", a, [][]*string{strs("east", "1.5")}, false, "first extra: (region='north'"},
		{"text is exact", [][]*string{strs("a ", "1")}, [][]*string{strs("a", "1")}, false, "row 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := compareRows(tt.rollup, tt.warehouse, cols, tt.ordered)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("compareRows = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOrderAndLimit(t *testing.T) {
	for _, tt := range []struct {
		sql              string
		ordered, limited bool
	}{
		{"SELECT a, count(*) FROM t GROUP BY a", false, false},
		{"SELECT a, count(*) FROM t GROUP BY a ORDER BY a", true, false},
		{"SELECT a, count(*) FROM t GROUP BY a ORDER BY 2 DESC LIMIT 5", true, true},
		{"SELECT * FROM (SELECT a FROM t ORDER BY a) s", false, false},
		{"SELECT a FROM t GROUP BY a OFFSET 2", false, true},
	} {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		if o, l := orderAndLimit(tree); o != tt.ordered || l != tt.limited {
			t.Errorf("%s: ordered %v limited %v, want %v %v", tt.sql, o, l, tt.ordered, tt.limited)
		}
	}
}

func TestUncheckable(t *testing.T) {
	sess := func(db, enc string) *proxy.SessionInfo {
		return &proxy.SessionInfo{Database: db, Parameters: map[string]string{"client_encoding": enc}}
	}
	for _, tt := range []struct {
		sql  string
		sess *proxy.SessionInfo
		view *sessionView
		want string
	}{
		{"SELECT a, count(*) FROM t GROUP BY a", sess("shop", "UTF8"), nil, ""},
		{"SELECT a, count(*) FROM t GROUP BY a", sess("other", "UTF8"), nil, "database"},
		{"SELECT a, count(*) FROM t GROUP BY a", sess("shop", "LATIN1"), nil, "client_encoding"},
		{"SELECT a, count(*) FROM t WHERE d >= NOW() - interval '1 day' GROUP BY a", sess("shop", "UTF8"), nil, "clock"},
		{"SELECT a, count(*) FROM t WHERE d >= current_date GROUP BY a", sess("shop", "UTF8"), nil, "clock"},
		{"SELECT known, count(*) FROM t GROUP BY known", sess("shop", "UTF8"), nil, ""},
		{"SELECT a, count(*) FROM t GROUP BY a", sess("shop", "UTF8"), &sessionView{rowFilters: map[string]string{"public.t": "a = 1"}}, "row-level security"},
	} {
		if got := uncheckable(tt.sql, tt.sess, "shop", tt.view); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.sql, got, tt.want)
		}
	}
}

// TestVerifierOffer: sampling, the rate limit and the queue decide at once;
// nothing blocks, and what is not taken is dropped.
func TestVerifierOffer(t *testing.T) {
	d := &rewrite.Decision{Rollup: "r", Version: "v1"}
	sess := &proxy.SessionInfo{Parameters: map[string]string{"TimeZone": "UTC"}}
	for _, tt := range []struct {
		name      string
		fraction  float64
		perMinute int
		offers    int
		want      int
	}{
		{"off", 0, 60, 100, 0},
		{"all, within the burst", 1, 600, 5, 5},
		{"the rate limit's burst", 1, 3, 100, 3},
		{"the queue", 1, 100_000, 100, verifyQueue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(VerifyOptions{Fraction: tt.fraction, MaxPerMinute: tt.perMinute})
			for range tt.offers {
				v.offer(d, "SELECT 1", nil, sess, nil, nil)
			}
			if got := len(v.queue); got != tt.want {
				t.Errorf("%d queued, want %d", got, tt.want)
			}
		})
	}
	var nilV *Verifier
	nilV.offer(d, "SELECT 1", nil, sess, nil, nil) // a router without verification
	nilV.Series("r")
}

// BenchmarkVerifierOffer is what verification adds to a hit's answer: the
// sampling, the rate limit and the queue, taken or dropped.
func BenchmarkVerifierOffer(b *testing.B) {
	d := &rewrite.Decision{Rollup: "r", Version: "v1"}
	sess := &proxy.SessionInfo{Parameters: map[string]string{"TimeZone": "UTC", "DateStyle": "ISO, MDY", "client_encoding": "UTF8"}}
	tree, err := pg_query.Parse("SELECT region, sum(amount) FROM sales GROUP BY region ORDER BY region")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name     string
		fraction float64
	}{{"default 0.01", 0.01}, {"every hit, queue full", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			v := NewVerifier(VerifyOptions{Fraction: bc.fraction, MaxPerMinute: 1_000_000_000})
			b.ReportAllocs()
			for b.Loop() {
				v.offer(d, "SELECT region, sum(amount) FROM sales GROUP BY region ORDER BY region", tree, sess, nil, nil)
			}
		})
	}
}

// TestVerifierSetBudget: a reload's budget applies to the next hits.
func TestVerifierSetBudget(t *testing.T) {
	d := &rewrite.Decision{Rollup: "r", Version: "v1"}
	sess := &proxy.SessionInfo{}
	v := NewVerifier(VerifyOptions{Fraction: 0, MaxPerMinute: 60})
	v.offer(d, "SELECT 1", nil, sess, nil, nil)
	if len(v.queue) != 0 {
		t.Fatal("sampled with fraction 0")
	}
	v.SetBudget(1, 2)
	for range 10 {
		v.offer(d, "SELECT 1", nil, sess, nil, nil)
	}
	if len(v.queue) != 2 {
		t.Errorf("%d queued after SetBudget(1, 2), want the burst of 2", len(v.queue))
	}
}
