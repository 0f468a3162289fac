package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// serverReply is what a server sent before closing a connection.
type serverReply struct {
	raw    []byte
	closed bool // the server closed the connection (EOF or reset) within the wait
	fields map[byte]string
	v2     bool // a protocol-2 style error: 'E' and a C string, no length
}

func (r serverReply) String() string {
	return fmt.Sprintf("closed=%v v2=%v fields=%q raw=%q", r.closed, r.v2, r.fields, clip(string(r.raw)))
}

// readReply reads until the server closes the connection or wait passes.
func readReply(c net.Conn, wait time.Duration) serverReply {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var r serverReply
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		r.raw = append(r.raw, buf[:n]...)
		if err != nil {
			r.closed = errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
			break
		}
	}
	if len(r.raw) >= 5 && r.raw[0] == 'E' {
		if l := int(binary.BigEndian.Uint32(r.raw[1:5])); l >= 4 && l <= len(r.raw)-1 {
			r.fields = map[byte]string{}
			for _, f := range bytes.Split(r.raw[5:1+l], []byte{0}) {
				if len(f) > 0 {
					r.fields[f[0]] = string(f[1:])
				}
			}
		} else if bytes.HasPrefix(r.raw, []byte("EFATAL:")) {
			r.v2 = true
		}
	}
	return r
}

// startedConn opens a raw connection and completes a trust-user startup.
func startedConn(t *testing.T, ctx context.Context, addr string) net.Conn {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": userTrust, "database": dbMain}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("startup: %s", e.Message)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// protocol2Startup is a protocol 2.0 StartupPacket: fixed 296 bytes.
func protocol2Startup() []byte {
	b := append(be32(296), be32(2<<16)...)
	fixed := func(s string, n int) []byte { return append([]byte(s), make([]byte, n-len(s))...) }
	b = append(b, fixed(dbMain, 64)...)
	b = append(b, fixed(userTrust, 32)...)
	b = append(b, make([]byte, 64+64+64)...) // options, unused, tty
	return b
}

type badCase struct {
	name     string
	startup  bool     // complete a startup first, then send
	send     []byte   // bytes to write
	bodyLen  int      // extra bytes written in the background (for the oversized message)
	halfOpen bool     // close our write side after sending (a truncated message then close)
	codes    []string // acceptable SQLSTATEs of the proxy's FATAL error
	// compare: Postgres itself answers this with an error; the proxy's SQLSTATE must equal it.
	compare bool
	// optionalError: the client has gone, so an error may or may not be sent;
	// if one is, it must be well-formed.
	optionalError bool
	v2ok          bool // a protocol-2 style reply like Postgres's own is acceptable
}

var badCases = []badCase{
	{name: "garbage instead of a startup packet (an HTTP request)", send: []byte("GET / HTTP/1.1\r\nHost: pgrollup\r\n\r\n"), codes: []string{"08P01"}},
	{name: "garbage: zero length startup packet", send: make([]byte, 8), codes: []string{"08P01"}},
	{name: "garbage: unknown protocol version", send: append(be32(8), be32(0x12345678)...), codes: []string{"0A000"}, compare: true},
	{name: "protocol 2.0 startup packet", send: protocol2Startup(), codes: []string{"0A000"}, compare: true, v2ok: true},
	{name: "truncated startup packet, then close", send: append(append(be32(100), be32(3<<16)...), "user\x00e2e"...), halfOpen: true, optionalError: true, codes: []string{"08P01"}},
	{name: "truncated message after startup, then close", startup: true, send: append([]byte{'Q'}, append(be32(1000), "SELECT 1"...)...), halfOpen: true, optionalError: true, codes: []string{"08P01"}},
	{name: "message length below 4 after startup", startup: true, send: append([]byte{'Q'}, be32(2)...), codes: []string{"08P01"}},
	{name: "oversized message (2 MB > max_message_bytes 1MB)", startup: true, send: append([]byte{'Q'}, be32(2<<20+4)...), bodyLen: 2 << 20, codes: []string{"08P01", "54000"}},
	{name: "unknown message type after startup", startup: true, send: append([]byte{'y'}, be32(4)...), codes: []string{"08P01"}, compare: true},
}

// TestBadInput sends malformed traffic to the proxy. Each case must get a
// Postgres-style FATAL ErrorResponse and a closed connection, and a session
// opened before must keep working after every case.
func TestBadInput(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	keeper := connect(t, ctx, env.proxy.DSN(userScram, dbMain))
	super := superConn(t, ctx, dbMain)
	direct := targets()[0]
	for i, bc := range badCases {
		t.Run(bc.name, func(t *testing.T) {
			send := func(addr string, wait time.Duration) serverReply {
				var c net.Conn
				if bc.startup {
					c = startedConn(t, ctx, addr)
				} else {
					var d net.Dialer
					var err error
					if c, err = d.DialContext(ctx, "tcp", addr); err != nil {
						t.Fatal(err)
					}
				}
				defer c.Close()
				if _, err := c.Write(bc.send); err != nil {
					t.Fatalf("write: %v", err)
				}
				if bc.bodyLen > 0 {
					// The rest of the oversized message, in the background: the
					// proxy should answer from the length alone, and may close early.
					go func() {
						_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
						_, _ = c.Write(bytes.Repeat([]byte("x"), bc.bodyLen))
					}()
				}
				if bc.halfOpen {
					_ = c.(*net.TCPConn).CloseWrite()
				}
				return readReply(c, wait)
			}
			got := send(env.proxy.addr(), 5*time.Second)
			// Postgres keeps some of these connections open (it takes a 2 MB
			// query, for one); its answer only matters when it comes at once.
			want := send(direct.addr(), time.Second)
			t.Logf("Postgres: %s", want)
			t.Logf("pgrollup: %s", got)
			if !got.closed {
				t.Errorf("the proxy did not close the connection within 5s: %s", got)
			}
			switch {
			case got.v2 && bc.v2ok:
				// Postgres answers a protocol-2 client in that protocol; an equal answer is fine.
				if !bytes.Contains(got.raw, []byte("unsupported frontend protocol 2.0")) {
					t.Errorf("protocol-2 style reply does not name the protocol: %q", got.raw)
				}
			case got.fields == nil && bc.optionalError && len(got.raw) == 0:
				// The client left; closing without a word is fine.
			case got.fields == nil:
				t.Errorf("want a Postgres ErrorResponse, got %s", got)
			default:
				if got.fields['S'] != "FATAL" || got.fields['V'] != "FATAL" {
					t.Errorf("want severity FATAL (S and V fields), got %q", got.fields)
				}
				if !contains(bc.codes, got.fields['C']) {
					t.Errorf("SQLSTATE %q, want one of %v (message %q)", got.fields['C'], bc.codes, got.fields['M'])
				}
				if got.fields['M'] == "" {
					t.Errorf("ErrorResponse without a message: %q", got.fields)
				}
				if bc.compare && want.fields != nil && got.fields['C'] != want.fields['C'] {
					t.Errorf("SQLSTATE %q, Postgres says %q", got.fields['C'], want.fields['C'])
				}
			}
			// The session opened before the bad input still works.
			var v int
			if err := keeper.QueryRow(ctx, "SELECT $1::int", i).Scan(&v); err != nil || v != i {
				t.Fatalf("the other session broke after %q: %v", bc.name, err)
			}
		})
	}
	// No upstream session of a failed client may linger.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", userTrust).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d upstream sessions of %s still open 5s after the bad clients left", n, userTrust)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-env.proxy.exited:
		t.Fatalf("the proxy exited: %v", env.proxy.err)
	default:
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return strings.TrimSpace(s) == "" && len(list) == 0
}
