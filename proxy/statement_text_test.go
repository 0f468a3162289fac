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

// TestPlainStatement checks what a plain statement (statementText.plain)
// is taken to be: for each text, settingsMayChange's short cut leaves the
// session as the general path (settingsChange) does.
func TestPlainStatement(t *testing.T) {
	plain := 0
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 123;",
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		"select * from t for update",
		"select count(*) from t",
		"values (1)",
		"TABLE t",
		"explain select 1",
		"explain analyze select 1",
		"with x as (select 1) select * from x",
		"select 1 into x",
		"select 1; select 2",
		"select x from t where s = 'set_config'",
		"select current_user",
		"COMMIT",
		"SET search_path = x",
		"COPY t FROM STDIN",
		"DISCARD ALL",
		"DECLARE c CURSOR FOR select 1",
		"select * from t -- rollback",
		"",
	} {
		st := newStatement(sql, nil)
		txt := st.text()
		if txt.plain {
			plain++
			if !settingsNeutralText(st) || endsTransaction(st) || changesSession(st) || txt.words != 0 || txt.multiple {
				t.Errorf("%q is plain but %+v", sql, *txt)
			}
		}
		for _, tx := range []byte{'I', 'T'} {
			short, general := &session{}, &session{}
			short.txStatus.Store(uint32(tx))
			general.txStatus.Store(uint32(tx))
			short.set.known, general.set.known = true, true // tracked: a change would show
			short.settingsMayChange(st)
			general.settingsChange(st)
			if short.dirty.Load() != general.dirty.Load() || short.set.known != general.set.known || short.set.gen != general.set.gen || short.set.readWanted.Load() != general.set.readWanted.Load() || short.set.staleAtBlockEnd != general.set.staleAtBlockEnd {
				t.Errorf("%q in %c: the session differs from the general path's", sql, tx)
			}
		}
	}
	if plain < 5 {
		t.Errorf("%d plain statements, want at least 5", plain)
	}
}
