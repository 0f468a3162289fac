package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// quickRecorder is a QuickRouter that decides every statement at a glance,
// as passing through, and records the Statements it was given.
type quickRecorder struct {
	mu    sync.Mutex
	seen  []*Statement
	texts []string
}

func (r *quickRecorder) Route(context.Context, *Statement, *SessionInfo) RouteDecision {
	return RouteDecision{Route: RoutePassthrough}
}

func (r *quickRecorder) RouteQuick(st *Statement) (RouteDecision, bool) {
	r.mu.Lock()
	r.seen = append(r.seen, st)
	r.texts = append(r.texts, strings.Clone(st.SQL)) // the text is the proxy's buffer
	r.mu.Unlock()
	return RouteDecision{Route: RoutePassthrough, Reason: "quick"}, true
}

func (r *quickRecorder) last() (*Statement, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1], r.texts[len(r.texts)-1]
}

func TestPlainText(t *testing.T) {
	for _, tt := range []struct {
		sql  string
		want bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 7;", true},
		{"select 1 as a", true},
		{"WITH x AS (SELECT 1) SELECT * FROM x", false}, // a parenthesis
		{"SELECT count(*) FROM t", false},
		{"SELECT 1; SELECT 2", false},
		{"SELECT * INTO t2 FROM t", false},
		{"SELECT 1 AS copy", false}, // a word the proxy looks for
		{"EXPLAIN ANALYZE SELECT 1", false},
		{"TABLE t", true},
		{"INSERT INTO t VALUES 1", false},
		{"SET search_path = x", false},
		{"BEGIN", false},
		{"", false},
	} {
		st := newStatement(tt.sql, nil)
		if got := plainText(st); got != tt.want {
			t.Errorf("plainText(%q) = %v, want %v", tt.sql, got, tt.want)
		}
		if plainText(st) && !settingsNeutralText(st) {
			t.Errorf("%q: plain but not settings-neutral", tt.sql)
		}
	}
}

// TestPlainQueryReusesStatement checks the plain Query path
// (relayPlainQuery): new plain texts outside a transaction block share the
// session's Statement and get their own answers; any other text, and a
// plain one in a block (whose effects parse it), gets a Statement of its
// own, which the cache then keeps.
func TestPlainQueryReusesStatement(t *testing.T) {
	rec := &quickRecorder{}
	p := startProxy(t, func(o *Options) { o.Router = rec })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	query := func(sql string) string {
		t.Helper()
		results, err := conn.Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		last := results[len(results)-1]
		if len(last.Rows) != 1 {
			return ""
		}
		return string(last.Rows[0][0])
	}
	if got := query("SELECT 1 AS a"); got != "1" {
		t.Fatalf("SELECT 1 AS a = %q", got)
	}
	first, _ := rec.last()
	if got := query("SELECT 2 AS b"); got != "2" {
		t.Fatalf("SELECT 2 AS b = %q", got)
	}
	second, text := rec.last()
	if second != first || text != "SELECT 2 AS b" {
		t.Fatalf("two plain Queries: Statements %p and %p (%q), want the session's one", first, second, text)
	}
	if got := query("SELECT abs(-3)"); got != "3" {
		t.Fatalf("SELECT abs(-3) = %q", got)
	}
	if other, _ := rec.last(); other == first {
		t.Fatal("a text with a parenthesis used the plain Query's Statement")
	}
	query("BEGIN")
	if got := query("SELECT 4 AS d"); got != "4" {
		t.Fatalf("in a block, SELECT 4 AS d = %q", got)
	}
	inBlock, _ := rec.last()
	query("COMMIT")
	if inBlock == first {
		t.Fatal("a plain Query in a block used the plain Query's Statement")
	}
	if _, ok := p.srv.stmts.cache.Peek("SELECT 4 AS d"); !ok {
		t.Error("a plain Query in a block, parsed for its effects, is not in the statement cache")
	}
	if _, ok := p.srv.stmts.cache.Peek("SELECT 2 AS b"); ok {
		t.Error("a plain Query outside a block is in the statement cache")
	}
	if got := query("SELECT 5 AS e"); got != "5" {
		t.Fatalf("after the block, SELECT 5 AS e = %q", got)
	}
	if again, _ := rec.last(); again != first {
		t.Fatal("after the block, a plain Query did not use the session's Statement")
	}
}

// TestPlainQueriesPipelined sends many plain Queries in one write, so that
// they lie together in the proxy's read buffer, each relayed over the
// bytes where it lies: every answer is its own statement's, in order.
func TestPlainQueriesPipelined(t *testing.T) {
	p := startProxy(t, nil)
	c := dialBench(t, p.dsn(trustUser, ""))
	const n = 200
	var msgs []byte
	for i := range n {
		msgs = appendMessage(msgs, 'Q', appendCString(nil, fmt.Sprintf("SELECT %d AS n, '%s' AS pad", i, strings.Repeat("x", i))))
	}
	if _, err := c.conn.Write(msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ready := 0; ready < n; {
		typ, body := c.readMessage(t)
		switch typ {
		case 'D':
			// One text column first: its length, then its bytes.
			size := int(binary.BigEndian.Uint32(body[2:6]))
			got = append(got, string(body[6:6+size]))
		case 'E':
			t.Fatalf("error: %q", body)
		case 'Z':
			ready++
		}
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("answer %d is %q (of %d answers)", i, v, len(got))
		}
	}
	if len(got) != n {
		t.Fatalf("%d answers, want %d", len(got), n)
	}
}

// TestExtendedPipelined sends many extended-protocol batches (Bind,
// Describe, Execute, Sync of one prepared statement, of sizes that cross
// the proxy's read buffers) in one write, so that the proxy relays each
// batch where it lies in its read buffer (session.relayAs), copied out
// where a read must come first: every answer is its own batch's, in order.
func TestExtendedPipelined(t *testing.T) {
	p := startProxy(t, nil)
	c := dialBench(t, p.dsn(trustUser, ""))
	parse := appendCString(appendCString(nil, "s1"), "SELECT $1::text AS v")
	c.roundTrip(t, appendMessage(appendMessage(nil, 'P', append(parse, 0, 0)), 'S', nil))
	const n = 300
	var msgs []byte
	for i := range n {
		value := strconv.Itoa(i) + strings.Repeat("x", i*7)
		bind := appendCString(nil, "")
		bind = appendCString(bind, "s1")
		bind = append(bind, 0, 0, 0, 1) // text parameters; one value
		bind = binary.BigEndian.AppendUint32(bind, uint32(len(value)))
		bind = append(bind, value...)
		bind = append(bind, 0, 0) // text results
		msgs = appendMessage(msgs, 'B', bind)
		msgs = appendMessage(msgs, 'D', []byte{'P', 0})
		msgs = appendMessage(msgs, 'E', []byte{0, 0, 0, 0, 0})
		msgs = appendMessage(msgs, 'S', nil)
	}
	go func() { _, _ = c.conn.Write(msgs) }()
	for i := 0; i < n; {
		typ, body := c.readMessage(t)
		switch typ {
		case 'D':
			size := int(binary.BigEndian.Uint32(body[2:6]))
			if want := strconv.Itoa(i) + strings.Repeat("x", i*7); string(body[6:6+size]) != want {
				t.Fatalf("answer %d is %.20q..., want %.20q...", i, body[6:6+size], want)
			}
		case 'E':
			t.Fatalf("batch %d: error %q", i, body)
		case 'Z':
			i++
		}
	}
}
