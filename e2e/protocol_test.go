package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// exchange is a raw protocol session: the test writes frontend messages and
// records every backend message, so that Postgres and the proxy can be
// compared message by message, in order.
type exchange struct {
	t   *testing.T
	fe  *pgproto3.Frontend
	log strings.Builder
}

func (x *exchange) send(msgs ...pgproto3.FrontendMessage) {
	x.t.Helper()
	for _, m := range msgs {
		x.fe.Send(m)
		fmt.Fprintf(&x.log, "> %T\n", m)
	}
	if err := x.fe.Flush(); err != nil {
		x.t.Fatalf("send: %v", err)
	}
}

// until reads and records messages until stop says so.
func (x *exchange) until(stop func(pgproto3.BackendMessage) bool) {
	x.t.Helper()
	for {
		msg, err := x.fe.Receive()
		if err != nil {
			fmt.Fprintf(&x.log, "< receive error: %v\n", err)
			x.t.Errorf("receive: %v\nso far:\n%s", err, x.log.String())
			return
		}
		fmt.Fprintf(&x.log, "< %s\n", renderMessage(msg, true))
		if stop(msg) {
			return
		}
	}
}

// rfq reads through n ReadyForQuery messages.
func (x *exchange) rfq(n int) {
	x.t.Helper()
	x.until(func(m pgproto3.BackendMessage) bool {
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			n--
		}
		return n == 0
	})
}

// value runs a simple query and returns the first column of its first row.
func (x *exchange) value(sql string) string {
	x.t.Helper()
	x.send(q(sql))
	var v string
	x.until(func(m pgproto3.BackendMessage) bool {
		if d, ok := m.(*pgproto3.DataRow); ok && v == "" && len(d.Values) > 0 {
			v = string(d.Values[0])
		}
		return isType[*pgproto3.ReadyForQuery](m)
	})
	return v
}

func isType[T pgproto3.BackendMessage](m pgproto3.BackendMessage) bool {
	_, ok := m.(T)
	return ok
}

type protocolCase struct {
	name string
	want []string // substrings the direct transcript must hold
	run  func(x *exchange)
}

func q(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }

var protocolCases = []protocolCase{
	{name: "named statement, named portal, row limits, Describe, Close",
		want: []string{`"Type":"PortalSuspended"`, `"Type":"ParameterDescription"`, `"Type":"CloseComplete"`},
		run: func(x *exchange) {
			x.send(
				&pgproto3.Parse{Name: "st", Query: "SELECT id, category, amount FROM items WHERE id <= $1 ORDER BY id"},
				&pgproto3.Describe{ObjectType: 'S', Name: "st"},
				&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "st", Parameters: [][]byte{[]byte("7")}, ResultFormatCodes: []int16{1, 0, 1}},
				&pgproto3.Describe{ObjectType: 'P', Name: "p"},
				&pgproto3.Execute{Portal: "p", MaxRows: 3},
				&pgproto3.Execute{Portal: "p", MaxRows: 3},
				&pgproto3.Execute{Portal: "p", MaxRows: 0},
				&pgproto3.Close{ObjectType: 'P', Name: "p"},
				&pgproto3.Close{ObjectType: 'S', Name: "st"},
				&pgproto3.Sync{},
			)
			x.rfq(1)
		}},
	{name: "Flush without Sync, then Sync",
		want: []string{`"CommandTag":"SELECT 1"`},
		run: func(x *exchange) {
			x.send(&pgproto3.Parse{Query: "SELECT 42 AS answer"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Flush{})
			x.until(isType[*pgproto3.CommandComplete])
			x.send(&pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "an error skips to Sync, the next Sync recovers",
		want: []string{`"Code":"42601"`, `"text":"after"`},
		run: func(x *exchange) {
			x.send(
				&pgproto3.Parse{Query: "SELEC 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
				&pgproto3.Parse{Query: "SELECT 'after'"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
			)
			x.rfq(2)
		}},
	{name: "simple query with several statements and an error",
		want: []string{`"Code":"22012"`},
		run: func(x *exchange) {
			x.send(q("SELECT 1 AS one; SELECT 1/0; SELECT 2"))
			x.rfq(1)
		}},
	{name: "empty and comment-only queries",
		want: []string{`"Type":"EmptyQueryResponse"`},
		run: func(x *exchange) {
			x.send(q(""))
			x.rfq(1)
			x.send(q("-- nothing here"))
			x.rfq(1)
			x.send(q(";;"))
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: ""}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "failed transaction state",
		want: []string{`"Code":"25P02"`, `"TxStatus":"E"`, `"TxStatus":"T"`},
		run: func(x *exchange) {
			for _, s := range []string{"BEGIN", "SELECT 1/0", "SELECT 1", "ROLLBACK", "COMMIT"} {
				x.send(q(s))
				x.rfq(1)
			}
		}},
	{name: "savepoints",
		want: []string{`"CommandTag":"ROLLBACK"`, `"text":"2"`},
		run: func(x *exchange) {
			x.send(q("BEGIN; CREATE TEMP TABLE sp (v int); INSERT INTO sp VALUES (1); SAVEPOINT a; INSERT INTO sp VALUES (1/0)"))
			x.rfq(1)
			x.send(q("ROLLBACK TO SAVEPOINT a"))
			x.rfq(1)
			x.send(q("INSERT INTO sp VALUES (2); RELEASE a; SELECT count(*), max(v) FROM sp; COMMIT"))
			x.rfq(1)
		}},
	{name: "parameter types in ParameterDescription",
		want: []string{`"ParameterOIDs":[23,25,1184]`},
		run: func(x *exchange) {
			x.send(&pgproto3.Parse{Name: "ps", Query: "SELECT $1::int AS a, $2::text AS b, $3 AS c", ParameterOIDs: []uint32{0, 0, 1184}},
				&pgproto3.Describe{ObjectType: 'S', Name: "ps"}, &pgproto3.Sync{})
			x.rfq(1)
			// Binary timestamptz parameter, text result.
			x.send(&pgproto3.Bind{PreparedStatement: "ps", ParameterFormatCodes: []int16{0, 0, 1},
				Parameters: [][]byte{[]byte("7"), []byte("seven"), {0, 0, 0, 0, 0, 0, 0, 0}}},
				&pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "COPY FROM STDIN, CopyFail, COPY TO STDOUT",
		want: []string{`"Type":"CopyInResponse"`, `"CommandTag":"COPY 2"`, `"Code":"57014"`, `"Type":"CopyOutResponse"`},
		run: func(x *exchange) {
			x.send(q("CREATE TEMP TABLE ci (a int, b text)"))
			x.rfq(1)
			x.send(q("COPY ci FROM STDIN"))
			x.until(isType[*pgproto3.CopyInResponse])
			x.send(&pgproto3.CopyData{Data: []byte("1\tx\n2\t")}, &pgproto3.CopyData{Data: []byte("y\n")}, &pgproto3.CopyDone{})
			x.rfq(1)
			x.send(q("COPY ci FROM STDIN"))
			x.until(isType[*pgproto3.CopyInResponse])
			x.send(&pgproto3.CopyData{Data: []byte("3\tz\n")}, &pgproto3.CopyFail{Message: "client gave up"})
			x.rfq(1)
			x.send(q("COPY (SELECT * FROM ci ORDER BY a) TO STDOUT WITH (FORMAT csv)"))
			x.rfq(1)
			// COPY in the extended protocol, as pgjdbc does it: Flush to get
			// CopyInResponse, Sync after CopyDone (a Sync during COPY is ignored).
			x.send(&pgproto3.Parse{Query: "COPY ci FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
			x.until(isType[*pgproto3.CopyInResponse])
			x.send(&pgproto3.CopyData{Data: []byte("4\tw\n")}, &pgproto3.Sync{}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "unnamed portal is gone after Sync",
		want: []string{`"Code":"34000"`},
		run: func(x *exchange) {
			x.send(&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Sync{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(2)
		}},
	{name: "portal kept across Syncs inside a transaction",
		want: []string{`"Type":"PortalSuspended"`, `"CommandTag":"SELECT 1"`},
		run: func(x *exchange) {
			x.send(q("BEGIN"))
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: "SELECT g FROM generate_series(1, 5) g"}, &pgproto3.Bind{DestinationPortal: "pp"},
				&pgproto3.Execute{Portal: "pp", MaxRows: 2}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Execute{Portal: "pp", MaxRows: 2}, &pgproto3.Sync{}, &pgproto3.Execute{Portal: "pp", MaxRows: 2}, &pgproto3.Sync{})
			x.rfq(2)
			x.send(q("COMMIT"))
			x.rfq(1)
		}},
	{name: "cursors in a simple query",
		want: []string{`"CommandTag":"FETCH 3"`, `"CommandTag":"DECLARE CURSOR"`},
		run: func(x *exchange) {
			x.send(q("BEGIN; DECLARE cur CURSOR FOR SELECT g FROM generate_series(1, 10) g; FETCH 3 FROM cur; FETCH 3 FROM cur; MOVE 2 IN cur; FETCH ALL FROM cur; CLOSE cur; COMMIT"))
			x.rfq(1)
			x.send(q("DECLARE held CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id"))
			x.rfq(1)
			x.send(q("FETCH 2 FROM held"))
			x.rfq(1)
			x.send(q("CLOSE held"))
			x.rfq(1)
		}},
	{name: "errors about statements and portals",
		want: []string{`"Code":"26000"`, `"Code":"42P05"`, `"Code":"34000"`},
		run: func(x *exchange) {
			x.send(&pgproto3.Describe{ObjectType: 'S', Name: "nope"}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Parse{Name: "dup", Query: "SELECT 1"}, &pgproto3.Sync{}, &pgproto3.Parse{Name: "dup", Query: "SELECT 2"}, &pgproto3.Sync{})
			x.rfq(2)
			x.send(&pgproto3.Execute{Portal: "never-bound"}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Bind{PreparedStatement: "dup", Parameters: [][]byte{[]byte("1")}}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(q("DEALLOCATE dup"), &pgproto3.Parse{Name: "dup", Query: "SELECT 3"}, &pgproto3.Bind{PreparedStatement: "dup"}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(2)
		}},
	{name: "one unnamed statement, several binds",
		want: []string{`"text":"1"`, `"text":"2"`},
		run: func(x *exchange) {
			x.send(&pgproto3.Parse{Query: "SELECT $1::int AS v"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("2")}}, &pgproto3.Execute{},
				&pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "notices and a NOTIFY to oneself in the extended protocol",
		want: []string{`"Severity":"NOTICE"`, `"Type":"NotificationResponse"`},
		run: func(x *exchange) {
			x.send(q("LISTEN self"))
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: "DO $$BEGIN RAISE NOTICE 'from DO'; PERFORM pg_notify('self', 'hi'); END$$"},
				&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "large rows and a large query below max_message_bytes",
		want: []string{`"CommandTag":"SELECT 1"`},
		run: func(x *exchange) {
			x.send(q("SELECT md5(repeat('x', 500000)), length(repeat('y', 300000)), repeat('z', 300000) AS big"))
			x.rfq(1)
			lit := strings.Repeat("abcdefghij", 60000) // a 600 kB statement
			x.send(q("SELECT md5('" + lit + "')"))
			x.rfq(1)
		}},
	{name: "client_encoding LATIN1: bytes pass untouched both ways",
		want: []string{`"Name":"client_encoding","Value":"LATIN1"`, `"text":"2"`},
		run: func(x *exchange) {
			x.send(q("SET client_encoding = 'LATIN1'"))
			x.rfq(1)
			// \xe9 is é in Latin-1 and not valid UTF-8 on its own.
			x.send(q("SELECT '\xe9t\xe9' AS latin1, length('\xe9t\xe9'), octet_length(convert_to('\xe9', 'UTF8'))"))
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: "SELECT $1::text || '\xe9' AS p"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("\xe0")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "invalid UTF-8 gets Postgres's own error",
		want: []string{`"Code":"22021"`},
		run: func(x *exchange) {
			x.send(q("SELECT '\xff\xfe' AS bad"))
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: "SELECT '\xc3' AS bad"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "FunctionCall (the fast-path protocol pgjdbc's large objects use)",
		want: []string{`"Type":"FunctionCallResponse"`},
		run: func(x *exchange) {
			oid := x.value("SELECT 'int4abs'::regproc::oid")
			n, err := strconv.ParseUint(oid, 10, 32)
			if err != nil {
				x.t.Fatalf("oid of int4abs: %q", oid)
			}
			x.send(&pgproto3.FunctionCall{Function: uint32(n), ArgFormatCodes: []uint16{1}, Arguments: [][]byte{{0xff, 0xff, 0xff, 0xf9}}, ResultFormatCode: 1})
			x.rfq(1)
			x.send(&pgproto3.FunctionCall{Function: 1, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte("1")}})
			x.rfq(1)
		}},
	{name: "bare Syncs, a Flush with nothing pending, Close of what does not exist",
		want: []string{`"Type":"CloseComplete"`},
		run: func(x *exchange) {
			x.send(&pgproto3.Sync{}, &pgproto3.Sync{}, &pgproto3.Sync{})
			x.rfq(3)
			x.send(&pgproto3.Flush{}, &pgproto3.Close{ObjectType: 'S', Name: "never"}, &pgproto3.Close{ObjectType: 'P', Name: "never"}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Parse{Query: ""}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "COPY in the middle of a multi-statement simple query",
		want: []string{`"Type":"CopyOutResponse"`, `"Type":"CopyInResponse"`, `"text":"3"`},
		run: func(x *exchange) {
			x.send(q("SELECT 1 AS a; COPY (SELECT 2) TO STDOUT; SELECT 3 AS c"))
			x.rfq(1)
			x.send(q("CREATE TEMP TABLE mid (v int); COPY mid FROM STDIN; SELECT count(*) FROM mid"))
			x.until(isType[*pgproto3.CopyInResponse])
			x.send(&pgproto3.CopyData{Data: []byte("1\n2\n3\n")}, &pgproto3.CopyDone{})
			x.rfq(1)
			// COPY OUT from an extended-protocol portal, described first.
			x.send(&pgproto3.Parse{Query: "COPY mid TO STDOUT"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "statements shared by SQL PREPARE and protocol Parse; DISCARD ALL; DEALLOCATE ALL",
		want: []string{`"text":"15"`, `"text":"14"`, `"CommandTag":"DISCARD ALL"`, `"Code":"26000"`},
		run: func(x *exchange) {
			x.send(q("PREPARE sqlprep(int) AS SELECT $1 * 3 AS tripled"))
			x.rfq(1)
			x.send(&pgproto3.Bind{PreparedStatement: "sqlprep", Parameters: [][]byte{[]byte("5")}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Parse{Name: "protoprep", Query: "SELECT $1::int * 2 AS doubled"}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(q("EXECUTE protoprep(7)"))
			x.rfq(1)
			x.send(q("DISCARD ALL"))
			x.rfq(1)
			x.send(&pgproto3.Bind{PreparedStatement: "protoprep", Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(&pgproto3.Parse{Name: "protoprep", Query: "SELECT 'reparsed' AS again"}, &pgproto3.Bind{PreparedStatement: "protoprep"}, &pgproto3.Execute{}, &pgproto3.Sync{})
			x.rfq(1)
			x.send(q("DEALLOCATE ALL"))
			x.rfq(1)
			x.send(&pgproto3.Describe{ObjectType: 'S', Name: "protoprep"}, &pgproto3.Sync{})
			x.rfq(1)
		}},
	{name: "SET and SHOW report through ParameterStatus",
		want: []string{`"Name":"TimeZone","Value":"Asia/Tokyo"`},
		run: func(x *exchange) {
			x.send(q("SET TimeZone = 'Asia/Tokyo'; SHOW TimeZone; SELECT '2024-01-01 00:00:00+00'::timestamptz"))
			x.rfq(1)
			x.send(q("BEGIN; SET LOCAL DateStyle = 'German'; SELECT '2024-01-02'::date; ROLLBACK"))
			x.rfq(1)
		}},
}

// TestProtocolTranscripts speaks the wire protocol by hand and requires the
// proxy's replies to equal Postgres's, message for message.
func TestProtocolTranscripts(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	for _, pc := range protocolCases {
		t.Run(pc.name, func(t *testing.T) {
			out := differential(t, ctx, pc.name, func(t *testing.T, ctx context.Context, tg target) string {
				conn, err := pgconn.Connect(ctx, tg.DSN(userTrust, dbMain))
				if err != nil {
					t.Fatal(err)
				}
				hj, err := conn.Hijack()
				if err != nil {
					t.Fatal(err)
				}
				defer hj.Conn.Close()
				_ = hj.Conn.SetDeadline(time.Now().Add(15 * time.Second))
				x := &exchange{t: t, fe: hj.Frontend}
				pc.run(x)
				x.send(&pgproto3.Terminate{})
				return x.log.String()
			})
			mustContain(t, pc.name, out, pc.want...)
		})
	}
}
