package ascii

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestContainsFold(t *testing.T) {
	tests := []struct {
		s, substr string
		want      bool
	}{
		{"SELECT * FROM Orders", "orders", true},
		{"select * from ORDERS_2024", "orders", true},
		{"SET Extra_Float_Digits = 3", "extra_float_digits", true},
		{"select 1", "orders", false},
		{"ord", "orders", false},
		{"", "x", false},
		{"anything", "", true},
		{"ÖRDERS orders", "orders", true},
	}
	for _, tt := range tests {
		if got := ContainsFold(tt.s, tt.substr); got != tt.want {
			t.Errorf("ContainsFold(%q, %q) = %v", tt.s, tt.substr, got)
		}
		if want := strings.Contains(strings.ToLower(tt.s), tt.substr); tt.s != "ÖRDERS orders" && want != tt.want {
			t.Errorf("table case %q/%q disagrees with strings.ToLower", tt.s, tt.substr)
		}
	}
}

func BenchmarkContainsFold(b *testing.B) {
	s := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"
	for b.Loop() {
		ContainsFold(s, "orders")
	}
}

func TestHasPrefixFold(t *testing.T) {
	tests := []struct {
		s, prefix string
		want      bool
	}{
		{"COPY t FROM STDIN", "copy", true},
		{"Copy", "copy", true},
		{"cop", "copy", false},
		{"xcopy", "copy", false},
		{"anything", "", true},
		{"ÖRDERS", "orders", false},
	}
	for _, tt := range tests {
		if got := HasPrefixFold(tt.s, tt.prefix); got != tt.want {
			t.Errorf("HasPrefixFold(%q, %q) = %v", tt.s, tt.prefix, got)
		}
	}
}

// TestMatcher checks that one pass finds what ContainsFold finds for each
// word.
func TestMatcher(t *testing.T) {
	words := []string{"orders", "order_items", "copy", "rollup", "x", "_t1"}
	m := NewMatcher(words)
	for _, s := range []string{
		"", "SELECT * FROM Orders", "select * from ORDER_ITEMS", "COPY", "show rollups",
		"no match here", "X", "from _T1", "ÖRDERS ordersx", "order",
	} {
		checkMatcher(t, m, words, s)
	}
	if !NewMatcher([]string{"a", ""}).Any("zzz") || NewMatcher(nil).Any("anything") || NewMatcher(nil).Mask("anything") != 0 {
		t.Error("empty word or no words")
	}
}

func BenchmarkMatcherAny(b *testing.B) {
	m := NewMatcher([]string{"orders", "order_items", "customers", "line_items", "events", "page_views", "rollup"})
	s := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"
	for b.Loop() {
		m.Any(s)
	}
}

// TestMatcherRandom compares Mask and Any with ContainsFold on texts made
// of the words' pieces in both cases, bytes outside ASCII and NULs.
func TestMatcherRandom(t *testing.T) {
	words := []string{"copy", "begin", "start", "statement_timeout", "set_config", "into", "x", "ab", "_t1", "order_items", "orders"}
	m := NewMatcher(words)
	// Words that start with few letters.
	few := []string{"copy", "x", "order_items", "orders", "_t1"}
	mf := NewMatcher(few)
	pieces := []string{"co", "COP", "y", "Be", "gin", "st", "ART", "sta", "tement_", "TIMEOUT", "set_", "conf", "ig", "in", "TO", "x", "X", "a", "B", "_", "t1", "ord", "ERS", "_items", " ", "\x00", "é", "Ö", "1", ";"}
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 20000; n++ {
		var b strings.Builder
		for k := rnd.IntN(12); k > 0; k-- {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		if !checkMatcher(t, m, words, b.String()) || !checkMatcher(t, mf, few, b.String()) {
			return
		}
	}
}

// checkMatcher compares m's Mask and Any on s with ContainsFold of each
// of words, and reports whether they agree.
func checkMatcher(t *testing.T, m *Matcher, words []string, s string) bool {
	t.Helper()
	var want uint64
	for i, w := range words {
		if ContainsFold(s, w) {
			want |= 1 << i
		}
	}
	ok := true
	if got := m.Mask(s); got != want {
		t.Errorf("Mask(%q) = %b, want %b", s, got, want)
		ok = false
	}
	if got := m.Any(s); got != (want != 0) {
		t.Errorf("Any(%q) = %v", s, got)
		ok = false
	}
	return ok
}

// BenchmarkMatcherOne is the router's check of a statement when no rollup
// is defined: the one word "rollup".
func BenchmarkMatcherOne(b *testing.B) {
	m := NewMatcher([]string{"rollup"})
	s := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"
	for b.Loop() {
		m.Any(s)
	}
}

// BenchmarkMatcherMask is the proxy's scan of a statement for the words it
// looks for.
func BenchmarkMatcherMask(b *testing.B) {
	m := NewMatcher([]string{"copy", "begin", "start", "deallocate", "discard", "close", "reset",
		"extra_float_digits", "statement_timeout", "set_config", "listen",
		"declare", "prepare", "rollback", "into", "analyze", "analyse"})
	s := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"
	for b.Loop() {
		m.Mask(s)
	}
}

// TestMatcherAutomaton checks Mask's automaton where words overlap and
// contain one another (its failure states), on random texts of their
// letters in both cases, against ContainsFold; and that words with more
// prefixes than it may hold are still found, by the filters.
func TestMatcherAutomaton(t *testing.T) {
	words := []string{"he", "she", "his", "hers", "s", "ersh", "hehe", "eh"}
	m := NewMatcher(words)
	if m.Mask("she"); m.auto == nil {
		t.Fatal("no automaton for a few short words")
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	letters := "hesriHESRx "
	for n := 0; n < 20000; n++ {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = letters[rnd.IntN(len(letters))]
		}
		if !checkMatcher(t, m, words, string(b)) {
			return
		}
	}
	var long []string
	for i := 0; i < 40; i++ {
		long = append(long, fmt.Sprintf("%c%c_table_%02d", 'a'+i%26, 'a'+i/26, i))
	}
	ml := NewMatcher(long)
	if ml.Mask(""); ml.auto != nil {
		t.Fatal("an automaton for more prefixes than maxAutomatonStates")
	}
	for _, s := range []string{"select * from Cb_TABLE_28", "aa_table_0", "xnb_table_39x", "ab_table_27"} {
		checkMatcher(t, ml, long, s)
	}
}
