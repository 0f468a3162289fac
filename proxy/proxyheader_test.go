package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pires/go-proxyproto"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// startProxyProtocol starts a proxy that trusts PROXY headers from trusted,
// logging into the returned buffer.
func startProxyProtocol(t *testing.T, trusted string) (*testProxy, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	p := startProxy(t, func(o *Options) {
		o.ProxyTrusted = []netip.Prefix{netip.MustParsePrefix(trusted)}
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return p, logs
}

// v2Header is what HAProxy's send-proxy-v2 writes for a client at src.
func v2Header(t *testing.T, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:7432")))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// connectWithHeader connects to the proxy as user, writing header first.
func connectWithHeader(ctx context.Context, p *testProxy, header []byte, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.dsn(user, password))
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(header); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// TestProxyHeaderClientAddress: behind a trusted balancer the client's
// address is the header's, for logs and for the loopback cleartext policy
// (SCRAM through the proxy needs the password in clear).
func TestProxyHeaderClientAddress(t *testing.T) {
	p, logs := startProxyProtocol(t, "127.0.0.1/32")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A client on the balancer's own host: loopback, cleartext allowed.
	conn, err := connectWithHeader(ctx, p, v2Header(t, "127.0.0.1:40001"), scramUser, scramPassword)
	if err != nil {
		t.Fatalf("a loopback client behind the balancer: %v", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A remote client: no password in clear without TLS, though the TCP
	// peer (the balancer) is on loopback.
	for name, header := range map[string][]byte{
		"v2": v2Header(t, "203.0.113.7:5555"),
		"v1": []byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 7432\r\n"),
	} {
		_, err = connectWithHeader(ctx, p, header, scramUser, scramPassword)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.InvalidAuthorizationSpecification {
			t.Fatalf("%s: a remote client asked for a password in clear: err = %v, want SQLSTATE %s", name, err, sqlstate.InvalidAuthorizationSpecification)
		}
	}
	if !strings.Contains(logs.String(), "client=203.0.113.7:5555") {
		t.Errorf("the log does not name the client's address:\n%s", logs.String())
	}
	// A LOCAL header (the balancer's health check) keeps the peer's address.
	local, err := proxyproto.HeaderProxyFromAddrs(2, nil, nil).Format()
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectWithHeader(ctx, p, local, trustUser, "")
	if err != nil {
		t.Fatalf("LOCAL header: %v", err)
	}
	c.Close(ctx)
}

// rawSession writes b on a new connection and returns what the proxy
// answers until it closes the connection.
func rawSession(t *testing.T, p *testProxy, b []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	// Nothing more comes: a truncated header ends at once, not at the
	// header timeout.
	_ = c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", b, err)
	}
	return string(out)
}

// TestProxyHeaderBadInput: a header from an untrusted address, a malformed
// header and a missing one from a trusted balancer each end their own
// connection with a FATAL protocol error saying why, and a warning; a
// session already open goes on.
func TestProxyHeaderBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("untrusted", func(t *testing.T) {
		p, logs := startProxyProtocol(t, "10.0.0.0/8")
		open := connect(t, p.dsn(trustUser, ""))
		for name, header := range map[string][]byte{
			"v2": v2Header(t, "203.0.113.7:5555"),
			"v1": []byte("PROXY TCP4 203.0.113.7 127.0.0.1 5555 7432\r\n"),
		} {
			got := rawSession(t, p, append(header, startupBytes(trustUser)...))
			if !strings.HasPrefix(got, "E") || !strings.Contains(got, "FATAL") || !strings.Contains(got, sqlstate.ProtocolViolation) ||
				!strings.Contains(got, "PROXY protocol header from an address that is not a trusted load balancer") {
				t.Errorf("%s: answer %q, want a FATAL %s refusing the header", name, got, sqlstate.ProtocolViolation)
			}
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "not in proxy_protocol.trusted") {
			t.Errorf("no warning about the untrusted header:\n%s", logs.String())
		}
		if err := open.Ping(ctx); err != nil {
			t.Errorf("the open session: %v", err)
		}
		// Clients that send no header are served as before.
		c := connect(t, p.dsn(trustUser, ""))
		if err := c.Ping(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Run("trusted", func(t *testing.T) {
		p, logs := startProxyProtocol(t, "127.0.0.1/32")
		open, err := connectWithHeader(ctx, p, v2Header(t, "192.0.2.1:1000"), trustUser, "")
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close(ctx)
		badVersion := v2Header(t, "192.0.2.1:1000")
		badVersion[12] = 0x31 // version 3
		long := append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 120)...)
		for _, c := range []struct {
			name  string
			bytes []byte
			want  string
		}{
			{"v1 garbage", []byte("PROXY GARBAGE\r\n"), "malformed PROXY protocol header"},
			{"v1 too long", long, "longer than 107 bytes"},
			{"v2 version", badVersion, "malformed PROXY protocol header"},
			{"v2 truncated", v2Header(t, "192.0.2.1:1000")[:14], "reading the PROXY protocol header"},
			{"missing", startupBytes(trustUser), "no PROXY protocol header from a trusted load balancer"},
		} {
			got := rawSession(t, p, c.bytes)
			if !strings.HasPrefix(got, "E") || !strings.Contains(got, sqlstate.ProtocolViolation) || !strings.Contains(got, c.want) {
				t.Errorf("%s: answer %q, want a FATAL %s with %q", c.name, got, sqlstate.ProtocolViolation, c.want)
			}
		}
		if n := strings.Count(logs.String(), "connection from a trusted load balancer refused"); n != 5 {
			t.Errorf("%d warnings, want one per refused connection:\n%s", n, logs.String())
		}
		if err := open.Ping(ctx); err != nil {
			t.Errorf("the open session: %v", err)
		}
	})
}
