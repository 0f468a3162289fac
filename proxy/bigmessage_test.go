package proxy

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// TestBigMessagesPassThrough sends statements, parameters, rows and COPY
// data far beyond what the proxy holds in memory, in both directions and in
// both protocols, and checks they arrive whole.
func TestBigMessagesPassThrough(t *testing.T) {
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	const n = 3 << 20
	lit := strings.Repeat("x", n)
	want := strconv.Itoa(n)
	one := func(what string, res *pgconn.ResultReader) {
		t.Helper()
		r := res.Read()
		if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != want {
			t.Fatalf("%s: %v, %d rows", what, r.Err, len(r.Rows))
		}
	}
	results, err := conn.Exec(ctx, "SELECT length('"+lit+"')").ReadAll()
	if err != nil || string(results[0].Rows[0][0]) != want {
		t.Fatalf("a 3 MB Query: %v", err)
	}
	results, err = conn.Exec(ctx, "SELECT repeat('x', "+want+")").ReadAll()
	if err != nil || string(results[0].Rows[0][0]) != lit {
		t.Fatalf("a 3 MB row: %v", err)
	}
	if _, err := conn.Prepare(ctx, "big", "SELECT length('"+lit+"') + $1::int", nil); err != nil {
		t.Fatalf("a 3 MB Parse: %v", err)
	}
	one("a statement prepared from a 3 MB Parse", conn.ExecPrepared(ctx, "big", [][]byte{[]byte("0")}, nil, nil))
	one("a 3 MB parameter", conn.ExecParams(ctx, "SELECT length($1::text)", [][]byte{[]byte(lit)}, nil, nil, nil))
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE big (t text)").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, strings.NewReader(lit+"\n"), "COPY big FROM STDIN"); err != nil {
		t.Fatalf("a 3 MB COPY row: %v", err)
	}
	var out bytes.Buffer
	if _, err := conn.CopyTo(ctx, &out, "COPY big TO STDOUT"); err != nil || out.String() != lit+"\n" {
		t.Fatalf("a 3 MB COPY row out: %v, %d bytes", err, out.Len())
	}
	one("after them", conn.ExecParams(ctx, "SELECT length(t) FROM big", nil, nil, nil, nil))
}

// TestBigQueryHeldInPart checks that relaying a Query far beyond the parse
// limits costs the proxy next to nothing in memory: it is relayed as it is
// read, never held whole.
func TestBigQueryHeldInPart(t *testing.T) {
	p := startProxy(t, nil)
	c := rawConn(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": trustUser, "database": "postgres"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	readyFor := func() []byte {
		t.Helper()
		var got []byte
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			switch m := msg.(type) {
			case *pgproto3.DataRow:
				got = append([]byte(nil), m.Values[0]...)
			case *pgproto3.ErrorResponse:
				t.Fatalf("error: %s", m.Message)
			case *pgproto3.ReadyForQuery:
				return got
			}
		}
	}
	readyFor()
	const n = 32 << 20
	query := appendMessage(nil, 'Q', []byte("SELECT length('"+strings.Repeat("x", n)+"')\x00"))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := c.Write(query); err != nil {
		t.Fatal(err)
	}
	got := readyFor()
	runtime.ReadMemStats(&after)
	if string(got) != strconv.Itoa(n) {
		t.Fatalf("answer %q", got)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("relaying a 32 MB Query allocated %d MB", alloc>>20)
	}
}

// TestIdleSessionsHoldNoBuffers checks that sessions between statements
// give their read and write buffers back, whatever they sent or received.
func TestIdleSessionsHoldNoBuffers(t *testing.T) {
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 8 {
		conn := connect(t, p.dsn(trustUser, "")).PgConn()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sql := "SELECT g, repeat('y', 100) FROM generate_series(1, " + strconv.Itoa(1+i*3000) + ") g"
			if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for p.srv.bufs.out.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d buffers held by idle sessions", p.srv.bufs.out.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamedParseAndBindOfLocalNames checks that a Parse too big to hold
// still names its statement, so that Postgres's rules on names hold.
func TestStreamedParseAndBindOfLocalNames(t *testing.T) {
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	big := "SELECT length('" + strings.Repeat("z", 2<<20) + "')"
	if _, err := conn.Prepare(ctx, "s1", big, nil); err != nil {
		t.Fatal(err)
	}
	var pe *pgconn.PgError
	if _, err := conn.Prepare(ctx, "s1", big, nil); !errors.As(err, &pe) || pe.Code != sqlstate.DuplicatePreparedStatement {
		t.Fatalf("preparing s1 again: %v, want 42P05", err)
	}
	r := conn.ExecPrepared(ctx, "s1", nil, nil, nil).Read()
	if r.Err != nil || string(r.Rows[0][0]) != strconv.Itoa(2<<20) {
		t.Fatalf("executing s1: %v", r.Err)
	}
}
