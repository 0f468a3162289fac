package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestTLS(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.TLS = selfSignedTLS(t)
		o.Cleartext = CleartextNever
	})
	ctx := context.Background()
	// With TLS the password may be asked for even under the strictest policy.
	dsn := strings.Replace(p.dsn(scramUser, scramPassword), "sslmode=disable", "sslmode=require", 1)
	conn := connect(t, dsn)
	var ssl bool
	if err := conn.QueryRow(ctx, "select true").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("connection is not TLS")
	}
}

// rawConn is a client that speaks the protocol byte by byte, for input no
// well-behaved driver would send.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readError reads messages until an ErrorResponse and then expects the
// connection to close.
func readError(t *testing.T, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	fe := pgproto3.NewFrontend(c, c)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("no ErrorResponse before %v", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			// A reset is a close too: the server closes with our unread
			// bytes in its socket buffer, as Postgres itself does.
			if _, err := fe.Receive(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection still open after the error: %v", err)
			}
			return e
		}
	}
}

func startupBytes(user string) []byte {
	return startupPacket(protocolVersion30, []byte("user\x00"+user+"\x00database\x00postgres\x00\x00"))
}

func TestBadInput(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.MaxMessageBytes = 1 << 20 })
	bystander := connect(t, p.dsn(trustUser, ""))
	tests := []struct {
		name     string
		send     func(c net.Conn)
		wantCode string
	}{
		{"garbage instead of a startup packet", func(c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }, sqlstate.ProtocolViolation},
		{"protocol 2.0", func(c net.Conn) { c.Write(startupPacket(2<<16, []byte("user\x00x\x00\x00"))) }, sqlstate.FeatureNotSupported},
		{"protocol 4.0", func(c net.Conn) { c.Write(startupPacket(4<<16, []byte("user\x00x\x00\x00"))) }, sqlstate.FeatureNotSupported},
		{"no user", func(c net.Conn) { c.Write(startupPacket(protocolVersion30, []byte("database\x00x\x00\x00"))) }, sqlstate.InvalidAuthorizationSpecification},
		{"unknown message type", func(c net.Conn) {
			c.Write(startupBytes(trustUser))
			c.Write(appendMessage(nil, '!', []byte("x")))
		}, sqlstate.ProtocolViolation},
		{"oversized message", func(c net.Conn) {
			c.Write(startupBytes(trustUser))
			hdr := binary.BigEndian.AppendUint32([]byte{'Q'}, 2<<20)
			c.Write(hdr)
		}, sqlstate.ProtocolViolation},
		{"bad length", func(c net.Conn) {
			c.Write(startupBytes(trustUser))
			c.Write([]byte{'Q', 0, 0, 0, 1})
		}, sqlstate.ProtocolViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, p.addr)
			tt.send(c)
			e := readError(t, c)
			if e.Code != tt.wantCode || e.Severity != severityFatal {
				t.Fatalf("got %s %s %q, want FATAL %s", e.Severity, e.Code, e.Message, tt.wantCode)
			}
			var one int
			if err := bystander.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
				t.Fatalf("another session broke: %v", err)
			}
		})
	}
}

func TestShutdownDrainsSessions(t *testing.T) {
	p := startProxy(t, nil)
	busy := connect(t, p.dsn(trustUser, ""))
	idle := connect(t, p.dsn(trustUser, ""))
	ctx := context.Background()

	result := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, "select pg_sleep(0.5)")
		result <- err
	}()
	time.Sleep(100 * time.Millisecond)
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("the running statement did not complete: %v", err)
	}
	_, err := idle.Exec(ctx, "select 1")
	var pgErr *pgconn.PgError
	if err == nil || (errors.As(err, &pgErr) && pgErr.Code != sqlstate.AdminShutdown) {
		t.Fatalf("idle session after shutdown: %v", err)
	}
	if _, err := pgx.Connect(ctx, p.dsn(trustUser, "")); err == nil {
		t.Fatal("a new session was accepted after shutdown")
	}
}
