package parselimit

import (
	"errors"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// deepening are statements whose parse tree gets deeper with each
// repetition of a construct: the measure must count every repetition.
var deepening = []struct {
	name string
	gen  func(n int) string
}{
	{"operator chain", func(n int) string { return "SELECT 1" + strings.Repeat("+1", n) }},
	{"concatenation", func(n int) string { return "SELECT 'a'" + strings.Repeat(" || 'a'", n) }},
	{"casts", func(n int) string { return "SELECT 1" + strings.Repeat("::int", n) }},
	{"COLLATE", func(n int) string { return "SELECT 'a'" + strings.Repeat(` COLLATE "C"`, n) }},
	{"AT TIME ZONE", func(n int) string { return "SELECT now()" + strings.Repeat(" AT TIME ZONE 'UTC'", n) }},
	{"NOT", func(n int) string { return "SELECT " + strings.Repeat("NOT ", n) + "true" }},
	{"unary minus", func(n int) string { return "SELECT " + strings.Repeat("- ", n) + "x FROM t" }},
	{"parentheses", func(n int) string { return "SELECT " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) }},
	{"subqueries", func(n int) string { return strings.Repeat("SELECT (", n) + "SELECT 1" + strings.Repeat(")", n) }},
	{"FROM subqueries", func(n int) string {
		return "SELECT * FROM " + strings.Repeat("(SELECT * FROM ", n) + "t" + strings.Repeat(") s", n)
	}},
	{"CASE", func(n int) string {
		return "SELECT " + strings.Repeat("CASE WHEN x > 0 THEN ", n) + "1" + strings.Repeat(" ELSE 0 END", n) + " FROM t"
	}},
	{"CASE in ELSE", func(n int) string {
		return "SELECT " + strings.Repeat("CASE WHEN x = 1 THEN 1 ELSE ", n) + "0" + strings.Repeat(" END", n) + " FROM t"
	}},
	{"function calls", func(n int) string {
		return "SELECT " + strings.Repeat("coalesce(", n) + "1" + strings.Repeat(", 2)", n)
	}},
	{"arrays", func(n int) string { return "SELECT " + strings.Repeat("ARRAY[", n) + "1" + strings.Repeat("]", n) }},
	{"rows", func(n int) string { return "SELECT " + strings.Repeat("ROW(1, ", n) + "1" + strings.Repeat(")", n) }},
	{"UNION", func(n int) string { return "SELECT 1" + strings.Repeat(" UNION SELECT 1", n) }},
	{"UNION ALL with lists", func(n int) string { return "SELECT 1, 2" + strings.Repeat(" UNION ALL SELECT 1, 2 WHERE a AND b", n) }},
	{"JOIN", func(n int) string { return "SELECT 1 FROM t0" + strings.Repeat(" JOIN t ON a = 1 AND b = 2", n) }},
	{"CROSS JOIN", func(n int) string { return "SELECT 1 FROM t0" + strings.Repeat(" CROSS JOIN t", n) }},
	{"nested CTEs", func(n int) string {
		return strings.Repeat("WITH a AS (", n) + "SELECT 1" + strings.Repeat(") SELECT * FROM a", n)
	}},
	{"IN subqueries", func(n int) string {
		return "SELECT 1 FROM t WHERE x IN " + strings.Repeat("(SELECT x FROM t WHERE x IN ", n) + "(1)" + strings.Repeat(")", n)
	}},
	{"chain after comments", func(n int) string { return "SELECT 1" + strings.Repeat("/* ) , and */+1 -- ,\n", n) }},
	{"chain of JSON operators", func(n int) string { return "SELECT j" + strings.Repeat(" -> 'a'", n) + " FROM t" }},
	{"hex and exponents", func(n int) string { return "SELECT 0xE" + strings.Repeat("+0xE-1e-5", n) }},
	{"chain in parentheses each level", func(n int) string {
		return "SELECT " + strings.Repeat("(1+1+1+", n) + "1" + strings.Repeat(")", n)
	}},
}

// flat are statements whose parse tree stays shallow however long they get:
// lists, which BI tools make long. The measure must not count them as deep.
var flat = []struct {
	name string
	gen  func(n int) string
}{
	{"IN list", func(n int) string { return "SELECT 1 FROM t WHERE x IN (1" + strings.Repeat(", 1", n) + ")" }},
	{"select list", func(n int) string { return "SELECT a + 1" + strings.Repeat(", a + 1", n) + " FROM t" }},
	{"AND", func(n int) string { return "SELECT 1 FROM t WHERE a = 1" + strings.Repeat(" AND a = 1", n) }},
	{"OR", func(n int) string { return "SELECT 1 FROM t WHERE (a = 1)" + strings.Repeat(" OR (a = 1)", n) }},
	{"CASE branches", func(n int) string {
		return "SELECT CASE" + strings.Repeat(" WHEN x = 1 THEN 'a' || 'b'", n) + " ELSE 'c' END FROM t"
	}},
	{"VALUES", func(n int) string { return "VALUES (1, 'a')" + strings.Repeat(", (1, 'a')", n) }},
	{"subscripts", func(n int) string { return "SELECT a" + strings.Repeat("[1]", n) + " FROM t" }},
	{"qualified names", func(n int) string { return "SELECT a" + strings.Repeat(".b", n) + " FROM t" }},
	{"literals", func(n int) string { return "SELECT '" + strings.Repeat("((((+", n) + "'" }},
	{"statements", func(n int) string { return strings.Repeat("SELECT 1+1 UNION SELECT 2; ", n) }},
}

// treeDepth is how deep the parse tree of sql nests, in protobuf messages:
// what libpg_query's recursive walks follow.
func treeDepth(t *testing.T, sql string) int {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", clip(sql), err)
	}
	var walk func(m protoreflect.Message) int
	walk = func(m protoreflect.Message) int {
		deepest := 0
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Message() == nil || fd.IsMap():
			case fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					deepest = max(deepest, walk(v.List().Get(i).Message()))
				}
			default:
				deepest = max(deepest, walk(v.Message()))
			}
			return true
		})
		return deepest + 1
	}
	return walk(tree.ProtoReflect())
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TestMeasureBoundsTreeDepth checks that the measured depth grows with the
// parse tree's, for every construct that deepens it: a tree at most a
// constant factor deeper than the measure is what lets the limit keep
// libpg_query's recursion within its stack.
func TestMeasureBoundsTreeDepth(t *testing.T) {
	// One unit of measured depth may cost this many levels of tree. Nested
	// subqueries cost the most: SubLink, SelectStmt, its target list, the
	// ResTarget and their Node wrappers.
	const factor = 12
	for _, c := range deepening {
		for _, n := range []int{10, 100} {
			sql := c.gen(n)
			m := measureAll(sql)
			tree := treeDepth(t, sql)
			if m.Depth < n {
				t.Errorf("%s, %d deep: measured depth %d, want at least %d: %s", c.name, n, m.Depth, n, clip(sql))
			}
			if tree > factor*m.Depth+20 {
				t.Errorf("%s, %d deep: tree depth %d > %d × measured depth %d: %s", c.name, n, tree, factor, m.Depth, clip(sql))
			}
		}
	}
	for _, c := range flat {
		sql := c.gen(5000)
		m := measureAll(sql)
		if m.Depth > 10 {
			t.Errorf("%s: measured depth %d for a flat statement: %s", c.name, m.Depth, clip(sql))
		}
		if tree := treeDepth(t, sql); tree > factor*m.Depth+20 {
			t.Errorf("%s: tree depth %d > %d × measured depth %d: %s", c.name, tree, factor, m.Depth, clip(sql))
		}
	}
}

// TestLexicalRules checks that what is inside literals, quoted identifiers,
// dollar quotes and comments never counts, and that what is outside them
// always does, however they are written.
func TestLexicalRules(t *testing.T) {
	deep := strings.Repeat("(", 50) + "1" + strings.Repeat(")", 50)
	hidden := strings.Repeat("((((+", 20)
	tests := []struct {
		name  string
		sql   string
		depth int // at least this; -1: at most 5
	}{
		{"string", "SELECT '" + hidden + "'", -1},
		{"doubled quote", "SELECT 'it''s " + hidden + "'", -1},
		{"backslash is literal in a standard string", `SELECT '\' , ` + deep, 50},
		{"escape string", `SELECT E'\' ` + hidden + `'`, -1},
		{"escape string, lower case", `SELECT e'\\' , ` + deep, 50},
		{"E ending a name is no escape string", `SELECT nameE'\' , ` + deep, 50},
		{"bit, hex and national strings", "SELECT B'" + hidden + "', X'" + hidden + "', N'" + hidden + "'", -1},
		{"unicode string", `SELECT U&'\0041` + hidden + `'`, -1},
		{"quoted identifier", `SELECT "` + hidden + `"`, -1},
		{"quoted identifier with doubled quote", `SELECT "a""` + hidden + `"`, -1},
		{"unicode identifier", `SELECT U&"` + hidden + `"`, -1},
		{"dollar quote", "SELECT $$" + hidden + "$$", -1},
		{"tagged dollar quote", "SELECT $fn$ $$ " + hidden + " $fn$", -1},
		{"parameter then depth", "SELECT $1 + " + deep, 50},
		{"dollar in a name is no quote", "SELECT a$b$, " + deep + ", c$b$", 50},
		{"line comment", "SELECT 1 -- " + hidden + "\n", -1},
		{"line comment ends at a carriage return", "SELECT 1 -- x\r+" + deep, 50},
		{"block comment", "SELECT 1 /* " + hidden + " */", -1},
		{"nested block comment", "SELECT 1 /* /* */ " + hidden + " */", -1},
		{"comment closes, depth counts", "SELECT 1 /* /* */ */ + " + deep, 50},
		{"comment inside an operator", "SELECT 1 +/* ( */ " + deep, 50},
		{"unterminated string", "SELECT '" + hidden, -1},
		{"unterminated comment", "SELECT /* " + hidden, -1},
	}
	for _, tt := range tests {
		m := measureAll(tt.sql)
		switch {
		case tt.depth < 0 && m.Depth > 5:
			t.Errorf("%s: depth %d, want at most 5: %s", tt.name, m.Depth, clip(tt.sql))
		case tt.depth >= 0 && m.Depth < tt.depth:
			t.Errorf("%s: depth %d, want at least %d: %s", tt.name, m.Depth, tt.depth, clip(tt.sql))
		}
	}
}

func TestCheck(t *testing.T) {
	var l Limits
	if err := l.Check("SELECT status, sum(amount) FROM orders WHERE status = 'completed' GROUP BY 1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sql   string
		lim   Limits
		bound string
	}{
		{strings.Repeat("x", DefaultMaxBytes+1), Limits{}, "parse_max_bytes"},
		{"SELECT 1 FROM orders WHERE status = 'completed' AND 1" + strings.Repeat("+1", 30000), Limits{}, "parse_max_depth"},
		{"SELECT 1 FROM t WHERE x IN (1" + strings.Repeat(",1", 60000) + ")", Limits{}, "parse_max_tokens"},
		{"SELECT ((1))", Limits{MaxDepth: 1}, "parse_max_depth"},
		{"SELECT 1, 2", Limits{MaxTokens: 3}, "parse_max_tokens"},
		{"SELECT 1", Limits{MaxBytes: 7}, "parse_max_bytes"},
	}
	for _, tt := range tests {
		err := tt.lim.Check(tt.sql)
		var le *Error
		if !errors.As(err, &le) || le.Bound != tt.bound {
			t.Errorf("Check(%s) with %+v = %v, want beyond %s", clip(tt.sql), tt.lim, err, tt.bound)
		}
	}
	if err := (Limits{MaxDepth: 2}).Check("SELECT ((1))"); err != nil {
		t.Errorf("depth 2 within MaxDepth 2: %v", err)
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	sql := "SELECT date_trunc('day', created_at), status, sum(amount) FROM orders WHERE (status IN ('a', 'b')) GROUP BY 1, 2"
	var l Limits
	if n := testing.AllocsPerRun(100, func() { _ = l.Check(sql) }); n != 0 {
		t.Errorf("Check allocates %v times per call", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	sql := "SELECT date_trunc('day', created_at), status, sum(amount) FROM orders WHERE (status IN ('a', 'b')) GROUP BY 1, 2"
	var l Limits
	b.SetBytes(int64(len(sql)))
	for b.Loop() {
		_ = l.Check(sql)
	}
}
