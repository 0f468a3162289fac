package proxy

import (
	"testing"

	"github.com/pgrollup/pgrollup/internal/ascii"
)

// TestScanText checks that the one pass over a statement finds what a
// search of each word, the first keyword and the semicolons find.
func TestScanText(t *testing.T) {
	for _, sql := range []string{
		"",
		"SELECT abalance FROM pgbench_accounts WHERE aid = 123;",
		"select count(*) from t",
		"SET Extra_Float_Digits = 3",
		"COPY t FROM STDIN",
		"BEGIN; DEALLOCATE ALL; DISCARD ALL; CLOSE ALL",
		"/* c */ (SELECT 1) INTO x",
		"EXPLAIN ANALYSE select 1; rollback",
		"start transaction; prepare transaction 'x'",
		"select set_config('statement_timeout', '1s', false)",
		"LISTEN x; DECLARE c CURSOR FOR select 1; RESET ALL",
		"ÉCOPY discarD",
		"deallocat",
		"analyze",
	} {
		got := scanText(sql)
		var want words
		for bit, w := range mentionWords {
			if ascii.ContainsFold(sql, w) {
				want |= 1 << bit
			}
		}
		if got.words != want {
			t.Errorf("%q: words %b, want %b", sql, got.words, want)
		}
		if first, class := firstKeyword(sql); got.first != first || got.class != class || got.multiple != multipleStatements(sql) || got.paren != ascii.ContainsFold(sql, "(") {
			t.Errorf("%q: %+v", sql, got)
		}
		// A statement made by the cache is scanned at once, one made as
		// a literal on first use: the same either way.
		if eager, lazy := newStatement(sql, nil), (&Statement{SQL: sql}); *eager.text() != *lazy.text() {
			t.Errorf("%q: scanned at once %+v, on first use %+v", sql, *eager.text(), *lazy.text())
		}
	}
}

// TestFirstKeywordAllocs checks that a known first keyword, in any case,
// costs no allocation.
func TestFirstKeywordAllocs(t *testing.T) {
	for _, sql := range []string{"SELECT 1", "Begin", "  (select 1)", "COMMIT", "DEALLOCATE ALL"} {
		if n := testing.AllocsPerRun(100, func() { firstKeyword(sql) }); n != 0 {
			t.Errorf("firstKeyword(%q): %v allocations", sql, n)
		}
	}
}
