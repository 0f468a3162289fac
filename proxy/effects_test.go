package proxy

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestStatementEffects(t *testing.T) {
	tests := []struct {
		sql         string
		readOnly    bool
		endsTx      bool
		resets      []resetOp
		setsSession bool
	}{
		{sql: "SELECT status, count(*) FROM orders GROUP BY 1", readOnly: true},
		{sql: "  -- a comment\n/* and /* a nested */ one */ (SELECT 1) UNION (SELECT 2)", readOnly: true},
		{sql: "SELECT date_trunc('month', created_at), sum(price) FROM orders WHERE created_at >= now() - interval '1 day' GROUP BY 1", readOnly: true},
		{sql: "SELECT extract(year FROM d), d AT TIME ZONE 'UTC', substring(s FROM 2), trim(s), coalesce(a, b), greatest(a, b) FROM t", readOnly: true},
		{sql: "SELECT pg_catalog.count(*) FROM t", readOnly: true},
		{sql: "SELECT format_type(atttypid, atttypmod), pg_get_expr(adbin, adrelid) FROM pg_attribute", readOnly: true},
		{sql: "VALUES (1), (2)", readOnly: true},
		{sql: "TABLE orders", readOnly: true},
		{sql: "WITH x AS (SELECT 1) SELECT * FROM x", readOnly: true},
		{sql: "SELECT * FROM (SELECT count(*) FROM t WHERE id IN (SELECT id FROM u)) s", readOnly: true},
		{sql: "DECLARE c CURSOR FOR SELECT * FROM orders", readOnly: true},
		{sql: "EXPLAIN SELECT * FROM orders", readOnly: true},
		{sql: "SELECT 1;", readOnly: true},
		{sql: "", readOnly: true},
		{sql: "-- nothing", readOnly: true},
		{sql: "BEGIN", readOnly: true},
		{sql: "start transaction read only", readOnly: true},
		{sql: "SET extra_float_digits = 3", readOnly: true, setsSession: true},
		{sql: "SET ROLE outsider", readOnly: true, setsSession: true},
		{sql: "RESET search_path", readOnly: true, setsSession: true},
		{sql: "SELECT 1; SET search_path = other", readOnly: true, setsSession: true},
		{sql: "SHOW TimeZone", readOnly: true},
		{sql: "SAVEPOINT a", readOnly: true},
		{sql: "RELEASE a", readOnly: true},
		{sql: "FETCH 10 FROM c", readOnly: true},
		{sql: "PREPARE p AS INSERT INTO t VALUES (1)", readOnly: true},
		{sql: "ROLLBACK TO SAVEPOINT a", readOnly: true},
		{sql: "COMMIT", readOnly: true, endsTx: true},
		{sql: "end", readOnly: true, endsTx: true},
		{sql: "ROLLBACK AND CHAIN", readOnly: true, endsTx: true},
		{sql: "abort", readOnly: true, endsTx: true},
		{sql: "COMMIT; BEGIN", readOnly: true, endsTx: true},
		{sql: "DEALLOCATE s1", readOnly: true, resets: []resetOp{{kind: resetDeallocate, name: "s1"}}},
		{sql: "DEALLOCATE PREPARE \"S_1\"", readOnly: true, resets: []resetOp{{kind: resetDeallocate, name: "S_1"}}},
		{sql: "deallocate all", readOnly: true, resets: []resetOp{{kind: resetDeallocateAll}}},
		{sql: "DISCARD ALL", readOnly: true, resets: []resetOp{{kind: resetDiscardAll}}, setsSession: true},
		{sql: "DISCARD PLANS", readOnly: true, setsSession: true},
		{sql: "CLOSE ALL", readOnly: true, resets: []resetOp{{kind: resetCloseAll}}},
		{sql: "CLOSE c", readOnly: true},
		{sql: "SELECT 1; DEALLOCATE s1; DEALLOCATE s2", readOnly: true, resets: []resetOp{{kind: resetDeallocate, name: "s1"}, {kind: resetDeallocate, name: "s2"}}},
		// Not read-only.
		{sql: "INSERT INTO t VALUES (1)"},
		{sql: "update t set a = 1"},
		{sql: "DELETE FROM t"},
		{sql: "CREATE TEMP TABLE t (a int)"},
		{sql: "COPY t FROM STDIN"},
		{sql: "SELECT 1; INSERT INTO t VALUES (1)"},
		{sql: "BEGIN; INSERT INTO t VALUES (1)"},
		{sql: "WITH x AS (INSERT INTO t VALUES (1) RETURNING a) SELECT * FROM x"},
		{sql: "WITH x AS (SELECT 1) DELETE FROM t"},
		{sql: "SELECT * FROM t FOR UPDATE"},
		{sql: "SELECT * FROM t FOR SHARE SKIP LOCKED"},
		{sql: "SELECT * INTO u FROM t"},
		{sql: "SELECT nextval('s')"},
		{sql: "SELECT set_config('statement_timeout', '1s', false)"},
		{sql: "SELECT my_function(1)"},
		{sql: "SELECT public.count(*) FROM t"},
		{sql: "SELECT count(*) FROM t WHERE a OPERATOR(myschema.===) b"},
		{sql: "SELECT * FROM t WHERE a IN (SELECT pg_advisory_lock(1))"},
		{sql: "DECLARE c CURSOR FOR SELECT nextval('s')"},
		{sql: "EXPLAIN ANALYZE SELECT 1"},
		{sql: "EXPLAIN INSERT INTO t VALUES (1)"},
		{sql: "CALL p()"},
		{sql: "DO $$BEGIN END$$"},
		{sql: "EXECUTE p"},
		{sql: "LOCK TABLE t"},
		{sql: "SELEC 1"},
		{sql: "SELECT (", endsTx: true}, // unparsable: nothing is vouched for
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got := (&Statement{SQL: tt.sql}).effects()
			want := effects{readOnly: tt.readOnly, endsTx: tt.endsTx, resets: tt.resets, setsSession: tt.setsSession}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestFirstKeyword(t *testing.T) {
	tests := []struct {
		sql, want string
		class     keywordClass
	}{
		{"SELECT 1", "select", classQuery},
		{"  \n\tBegin;", "begin", 0},
		{"-- c\nINSERT", "insert", 0},
		{"/* a /* b */ c */update", "update", 0},
		{"((select 1))", "select", classQuery},
		{"With x as (select 1) table x", "with", classQuery},
		{"COMMIT", "commit", classTxEnd},
		{"end", "end", classTxEnd},
		{"Prepare transaction 'x'", "prepare", classTxEnd},
		{"rollback", "rollback", classTxEnd},
		{"selectx", "selectx", 0},
		{"averyveryverylongkeyword", "averyveryverylongkeyword", 0},
		{"-- only a comment", "", 0},
		{"/* unterminated", "", 0},
		{";", "", 0},
	}
	for _, tt := range tests {
		got, class := firstKeyword(tt.sql)
		if got != tt.want || class != tt.class {
			t.Errorf("firstKeyword(%q) = %q, %b; want %q, %b", tt.sql, got, class, tt.want, tt.class)
		}
	}
	// Every set keyword is classed as its sets say.
	for kw, k := range knownKeywords {
		if queryKeywords[kw] != (k.class&classQuery != 0) || txEndKeywords[kw] != (k.class&classTxEnd != 0) || k.word != kw {
			t.Errorf("knownKeywords[%q] = %+v", kw, k)
		}
	}
}

func TestMultipleStatements(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT 1", false},
		{"SELECT 1;", false},
		{"SELECT 1; \n ;", false},
		{"SELECT 1; SELECT 2", true},
		{"SELECT ';'", true}, // costs a parse, nothing more
	}
	for _, tt := range tests {
		if got := multipleStatements(tt.sql); got != tt.want {
			t.Errorf("multipleStatements(%q) = %v, want %v", tt.sql, got, tt.want)
		}
	}
}

func TestUpstreamNames(t *testing.T) {
	sel, ins := &Statement{SQL: "SELECT 1"}, &Statement{SQL: "INSERT INTO t VALUES (1)"}
	var n upstreamNames
	n.define("s1", sel)
	if n.lookup("s1") != sel {
		t.Fatal("a new name is not remembered")
	}
	// The warehouse refuses to redefine s1 and keeps running SELECT 1.
	n.define("s1", &Statement{SQL: "SELECT 1"})
	if n.lookup("s1") != sel {
		t.Fatal("the same statement again lost the name")
	}
	n.define("s1", ins)
	if n.lookup("s1") != nil {
		t.Fatal("a name redefined is still vouched for")
	}
	n.define("", sel)
	n.define("", ins)
	if n.lookup("") != ins {
		t.Fatal("the unnamed statement is not replaced")
	}
	n.forget("s1")
	n.define("s1", ins)
	if n.lookup("s1") != ins {
		t.Fatal("a name closed and defined again is not remembered")
	}
	for i := range maxUpstreamNames {
		n.define(string(rune('a'+i%26))+string(rune(i)), sel)
	}
	n.define("s2", sel)
	if n.lookup("s2") != nil {
		t.Fatal("after forgetting names, a named one is vouched for")
	}
	// The unnamed one is never refused, so it stays known.
	if n.lookup("") != ins || n.known("") {
		t.Fatalf("unnamed after the names were forgotten: %v, known %v", n.lookup(""), n.known(""))
	}
	n.forget("")
	if n.lookup("") != nil {
		t.Fatal("the unnamed statement is still vouched for after it was forgotten")
	}
	n.define("", sel)
	n.reset()
	if n.lookup("") != nil {
		t.Fatal("the unnamed statement is still vouched for after a reset")
	}
	n.define("s2", sel)
	if n.lookup("s2") != sel || !n.known("s2") {
		t.Fatal("after a reset, a new name is not remembered")
	}
	n.defineRaw("", sel, []byte("P"))
	if got := n.parses(); len(got) != 0 {
		t.Fatalf("parses holds the unnamed statement's Parse: %q", got)
	}
}

// TestUpstreamNamesLookupBytes checks that the name kept beside the map
// never answers other than the map: random definitions, redefinitions,
// forgets, resets and lookups of a few names, long ones too.
func TestUpstreamNamesLookupBytes(t *testing.T) {
	names := []string{"", "s1", "s2", strings.Repeat("n", 70), strings.Repeat("n", 64)}
	sts := []*Statement{nil, {SQL: "SELECT 1"}, {SQL: "SELECT 2"}, {SQL: "INSERT INTO t VALUES (1)"}}
	rnd := rand.New(rand.NewPCG(5, 6))
	var n upstreamNames
	for i := range 20000 {
		name := names[rnd.IntN(len(names))]
		switch rnd.IntN(6) {
		case 0:
			n.define(name, sts[rnd.IntN(len(sts))])
		case 1:
			n.forget(name)
		case 2:
			if rnd.IntN(50) == 0 {
				n.reset()
			}
		default:
			if got, want := n.lookupBytes([]byte(name)), n.lookup(name); got != want {
				t.Fatalf("step %d: lookupBytes(%.10q) = %v, lookup = %v", i, name, got, want)
			}
		}
	}
}
