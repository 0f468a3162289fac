// Package parselimit decides whether a statement text may be given to the
// parser library (libpg_query, through pg_query_go) at all.
//
// libpg_query walks its parse trees recursively in C, on the thread's stack,
// without Postgres's stack depth check: a statement nested or chained deeply
// enough (SELECT 1+1+...+1 with twenty thousand terms) overflows that stack
// and kills the whole process, which Go's recover cannot catch. A statement
// with many tokens costs hundreds of bytes of parse tree per byte of text.
// So every text is first measured here, by one pass that neither recurses
// nor allocates, and only texts within Limits are parsed. The rest pass
// through to the warehouse unparsed, which answers them as Postgres does.
//
// The measure is conservative: it follows Postgres's lexical rules for
// literals, quoted identifiers, dollar quotes and comments (as libpg_query
// lexes them, with standard_conforming_strings on), and counts anything
// that may deepen the tree, whether or not it does in the end.
package parselimit

import (
	"fmt"
	"strings"
)

// Defaults. How they were chosen (README, "Statement limits"): the
// largest statements of the project's test corpora and of BI tools stay
// far below them, and libpg_query survives several times the depth even
// on a 1 MB thread stack (it crashes near 2,700 chained operators there,
// near 21,000 on the usual 8 MB); parse memory is about 500 bytes a token.
const (
	DefaultMaxBytes  = 1 << 20
	DefaultMaxDepth  = 500
	DefaultMaxTokens = 100000
)

// Limits bound what the parser library is given. A zero field takes its
// default, so the zero Limits are the defaults.
type Limits struct {
	// MaxBytes bounds the size of the text.
	MaxBytes int
	// MaxDepth bounds how deep the parse tree may get: each open
	// parenthesis, bracket or CASE counts one, and so does each operator,
	// JOIN or set operation (UNION, INTERSECT, EXCEPT) chained before a
	// point of the text within its expression. Commas, AND, OR, WHEN,
	// THEN and ELSE start a new expression: the parser makes lists of
	// what they separate, which add no depth.
	MaxDepth int
	// MaxTokens bounds the number of tokens (words, literals, parameters,
	// and each punctuation or operator character), which is what a parse
	// tree's size follows.
	MaxTokens int
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	return l
}

// Error reports a text beyond one of the Limits.
type Error struct {
	// Bound names the limit as the config file does: parse_max_bytes,
	// parse_max_depth or parse_max_tokens.
	Bound string
	Limit int
}

func (e *Error) Error() string {
	return fmt.Sprintf("statement not parsed: beyond %s (%d)", e.Bound, e.Limit)
}

// Check returns nil when sql may be parsed, and an *Error naming the first
// limit it exceeds otherwise. It stops as soon as one is exceeded, so a huge
// text costs no more than a small one.
func (l Limits) Check(sql string) error {
	l = l.WithDefaults()
	if len(sql) > l.MaxBytes {
		return &Error{Bound: "parse_max_bytes", Limit: l.MaxBytes}
	}
	m := measure(sql, l.MaxDepth, l.MaxTokens)
	switch {
	case m.Depth > l.MaxDepth:
		return &Error{Bound: "parse_max_depth", Limit: l.MaxDepth}
	case m.Tokens > l.MaxTokens:
		return &Error{Bound: "parse_max_tokens", Limit: l.MaxTokens}
	}
	return nil
}

// Stats are a text's measures as Check compares them with Limits.
type Stats struct {
	Bytes  int
	Depth  int
	Tokens int
	// Nesting is the deepest nesting of parentheses, brackets and CASE
	// alone, a part of Depth.
	Nesting int
}

// measureAll returns the measures of the whole text.
func measureAll(sql string) Stats {
	m := measure(sql, -1, -1)
	m.Bytes = len(sql)
	return m
}

// level is one open parenthesis, bracket or CASE.
type level struct {
	isCase bool
	// ops are the operators chained so far in the current expression at
	// this level; a comma or AND starts another. sets are the joins and
	// set operations at this level, which chain across those.
	ops, sets int32
}

// maxLevels caps the levels remembered: past it, deeper levels still
// count towards the depth but share one slot, as a conservative measure.
const maxLevels = 4096

// measure scans sql once. It returns early, with measures beyond the
// limits, once depth exceeds maxDepth or tokens exceed maxTokens (-1: no
// limit).
func measure(sql string, maxDepth, maxTokens int) Stats {
	var st Stats
	// The stack is allocated on demand and bounded by maxLevels; the
	// first levels fit in an array on the stack, so that the usual
	// statement costs no allocation.
	var fixed [32]level
	stack := fixed[:1] // stack[0] is the statement's top level
	overflow := 0      // levels beyond maxLevels
	depth := 0         // open levels plus the ops and sets of each
	nesting := 0
	note := func() bool {
		if depth > st.Depth {
			st.Depth = depth
		}
		if nesting > st.Nesting {
			st.Nesting = nesting
		}
		return maxDepth >= 0 && st.Depth > maxDepth || maxTokens >= 0 && st.Tokens > maxTokens
	}
	top := func() *level { return &stack[len(stack)-1] }
	// chain counts one more operator (or join or set operation) in the
	// current expression.
	chain := func(set bool) {
		t := top()
		if set {
			t.sets++
		} else {
			t.ops++
		}
		depth++
	}
	// restart begins a new expression at the current level.
	restart := func() {
		t := top()
		depth -= int(t.ops)
		t.ops = 0
	}
	push := func(isCase bool) {
		depth++
		nesting++
		if len(stack) >= maxLevels {
			overflow++
			return
		}
		stack = append(stack, level{isCase: isCase})
	}
	pop := func() {
		if overflow > 0 {
			overflow--
		} else if len(stack) > 1 {
			t := top()
			depth -= int(t.ops) + int(t.sets)
			stack = stack[:len(stack)-1]
		} else {
			return // an unbalanced closing: the parser rejects it
		}
		depth--
		nesting--
	}

	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < n && sql[i+1] == '-':
			// Up to a newline or a carriage return, as Postgres ends
			// it: ending it later would hide what the parser reads.
			if j := strings.IndexAny(sql[i:], "\n\r"); j >= 0 {
				i += j + 1
			} else {
				i = n
			}
			continue
		case c == '/' && i+1 < n && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
			continue
		}
		st.Tokens++
		switch {
		case c == '\'':
			i = skipQuoted(sql, i, '\'', false)
		case c == '"':
			i = skipQuoted(sql, i, '"', false)
		case c == '$':
			i = skipDollar(sql, i)
		case c == '(' || c == '[':
			push(false)
			i++
		case c == ')' || c == ']':
			pop()
			i++
		case c == ',' || c == ';':
			restart()
			if c == ';' {
				// A new statement: nothing before it is open any more.
				for len(stack) > 1 || overflow > 0 {
					pop()
				}
				t := top()
				depth -= int(t.sets)
				t.sets = 0
			}
			i++
		case isOperatorChar(c):
			chain(false)
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && sql[i+1] >= '0' && sql[i+1] <= '9':
			// A number: digits, a point, letters of an exponent, a hex or
			// binary prefix, underscores. The sign of an exponent counts
			// as an operator: never swallowing one keeps the measure an
			// overestimate.
			i++
			for i < n && (isIdentCont(sql[i]) || sql[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentCont(sql[j]) {
				j++
			}
			word := sql[i:j]
			if j < n && sql[j] == '\'' && isStringPrefix(word) {
				// E'...', B'...', X'...', N'...', U&'...': one literal.
				escapes := len(word) == 1 && (word[0] == 'e' || word[0] == 'E')
				i = skipQuoted(sql, j, '\'', escapes)
				break
			}
			if j+1 < n && sql[j] == '&' && (sql[j+1] == '\'' || sql[j+1] == '"') && (word == "u" || word == "U") {
				i = skipQuoted(sql, j+1, sql[j+1], false)
				break
			}
			i = j
			switch keyword(word) {
			case kwCase:
				push(true)
			case kwEnd:
				if len(stack) > 1 && top().isCase && overflow == 0 {
					pop()
				}
			case kwList:
				restart()
			case kwOperator:
				chain(false)
			case kwSet:
				chain(true)
			}
		default:
			// Other punctuation (., :, and bytes Postgres rejects) is a
			// token, which adds no depth.
			if c == ':' {
				chain(false) // the :: of a cast chains like an operator
			}
			i++
		}
		if note() {
			return st
		}
	}
	note()
	return st
}

type kwClass uint8

const (
	kwNone     kwClass = iota
	kwCase             // opens a level, which END closes
	kwEnd              // closes a CASE
	kwList             // starts another item of a list: AND, OR, WHEN, THEN, ELSE
	kwOperator         // chains within an expression
	kwSet              // chains joins and set operations
)

// keyword classifies the words that matter to the depth. Reserved words
// cannot be names unquoted; the few unreserved ones here (AT) are counted
// whatever they are, which only overestimates.
func keyword(w string) kwClass {
	if len(w) < 2 || len(w) > 9 {
		return kwNone
	}
	var buf [9]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(w)]) {
	case "case":
		return kwCase
	case "end":
		return kwEnd
	case "and", "or", "when", "then", "else":
		return kwList
	case "not", "is", "isnull", "notnull", "between", "like", "ilike", "similar",
		"collate", "at", "in", "overlaps", "escape", "operator", "any", "all", "some":
		return kwOperator
	case "join", "union", "intersect", "except":
		return kwSet
	}
	return kwNone
}

// isOperatorChar reports the characters Postgres builds operators from.
// Each one counts, which overestimates a multi-character operator.
func isOperatorChar(c byte) bool {
	switch c {
	case '+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?':
		return true
	}
	return false
}

func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || '0' <= c && c <= '9' || c == '$'
}

// isStringPrefix reports the words that, right before a quote, make it one
// literal with the quote: E, B, X, N.
func isStringPrefix(w string) bool {
	if len(w) != 1 {
		return false
	}
	switch w[0] {
	case 'e', 'E', 'b', 'B', 'x', 'X', 'n', 'N':
		return true
	}
	return false
}

// skipQuoted returns the index after the literal or quoted identifier
// opening at i with quote q, where a doubled quote stands for one and, with
// escapes, a backslash escapes the next byte. An unterminated one runs to
// the end, as the lexer reports it.
func skipQuoted(sql string, i int, q byte, escapes bool) int {
	n := len(sql)
	for i++; i < n; i++ {
		switch sql[i] {
		case '\\':
			if escapes {
				i++
			}
		case q:
			if i+1 < n && sql[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return n
}

// skipBlockComment returns the index after the block comment opening at i.
// Postgres nests them; the depth is a counter, not a recursion.
func skipBlockComment(sql string, i int) int {
	n := len(sql)
	depth := 0
	for i < n {
		switch {
		case sql[i] == '/' && i+1 < n && sql[i+1] == '*':
			depth++
			i += 2
		case sql[i] == '*' && i+1 < n && sql[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return n
}

// skipDollar returns the index after what starts with $ at i: a parameter
// ($1), a dollar-quoted literal ($$...$$, $tag$...$tag$), or a lone $.
func skipDollar(sql string, i int) int {
	n := len(sql)
	j := i + 1
	if j < n && sql[j] >= '0' && sql[j] <= '9' {
		for j < n && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		return j
	}
	for j < n && (isIdentStart(sql[j]) || j > i+1 && sql[j] >= '0' && sql[j] <= '9') {
		j++
	}
	if j >= n || sql[j] != '$' {
		return i + 1
	}
	tag := sql[i : j+1]
	if end := strings.Index(sql[j+1:], tag); end >= 0 {
		return j + 1 + end + len(tag)
	}
	return n
}
