package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestAuthMethods logs in with every method Postgres asks for, right and wrong,
// directly and through the proxy: the outcome and every error field must match.
func TestAuthMethods(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	cases := []struct{ user, password, database string }{
		{userTrust, "", dbMain},
		{userTrust, "ignored", dbMain},
		{userScram, passwords[userScram], dbMain},
		{userScram, "wrong", dbMain},
		{userScram, "", dbMain},
		{userMD5, passwords[userMD5], dbMain},
		{userMD5, "wrong", dbMain},
		{"no_such_user", "x", dbMain},
		{userScram, passwords[userScram], "no_such_db"},
		{userTrust, "", "no_such_db"},
	}
	out := differential(t, ctx, "authentication", func(t *testing.T, ctx context.Context, tg target) string {
		var b strings.Builder
		for _, c := range cases {
			fmt.Fprintf(&b, "== user=%s password=%v db=%s\n", c.user, c.password != "", c.database)
			conn, err := pgx.Connect(ctx, dsn(tg.host, tg.port, c.user, c.password, c.database, "disable"))
			if err != nil {
				fmt.Fprintf(&b, "%s\n", errorText(err))
				continue
			}
			var who, session, db string
			err = conn.QueryRow(ctx, "SELECT current_user, session_user, current_database()").Scan(&who, &session, &db)
			fmt.Fprintf(&b, "connected as %s/%s to %s %s\n", who, session, db, errorText(err))
			conn.Close(ctx)
		}
		return b.String()
	})
	mustContain(t, "authentication", out, "connected as e2e_trust/e2e_trust", "connected as e2e_scram/e2e_scram",
		"connected as e2e_md5/e2e_md5", "code=28P01", "code=3D000")
	if strings.Count(out, "code=28P01") != 4 {
		t.Errorf("want four password failures directly (scram wrong, scram empty, md5 wrong, unknown user):\n%s", out)
	}
}

// startupTranscript performs a raw startup as user and returns every message
// up to ReadyForQuery, with the cancel key masked.
func startupTranscript(ctx context.Context, addr string, params map[string]string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
	if err := fe.Flush(); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		msg, err := fe.Receive()
		if err != nil {
			fmt.Fprintf(&b, "receive: %v\n", err)
			return b.String(), nil
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			// Where the proxy refuses a startup on its own (no user name, say),
			// it cannot name Postgres's source file and line; everything else
			// must match. TestAuthMethods compares relayed errors in full.
			c := *e
			c.File, c.Line, c.Routine = "", 0, ""
			msg = &c
		}
		b.WriteString(renderMessage(msg, true) + "\n")
		switch msg.(type) {
		case *pgproto3.ReadyForQuery, *pgproto3.ErrorResponse:
			return b.String(), nil
		}
	}
}

// TestStartupTranscript compares the raw startup exchange of a trust user:
// AuthenticationOk, every ParameterStatus in order, BackendKeyData, ReadyForQuery.
func TestStartupTranscript(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	for _, params := range []map[string]string{
		{"user": userTrust, "database": dbMain},
		{"user": userTrust, "database": dbMain, "application_name": "raw ✓", "options": "-c DateStyle=German -c search_path=pg_catalog",
			"TimeZone": "Pacific/Chatham", "client_encoding": "LATIN1"},
		{"user": userTrust, "database": dbMain, "no_such_guc": "x"},
		{"user": userTrust},
		{"database": dbMain},
	} {
		out := differential(t, ctx, fmt.Sprintf("startup %v", params), func(t *testing.T, ctx context.Context, tg target) string {
			s, err := startupTranscript(ctx, tg.addr(), params)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
		if params["user"] != "" && params["database"] != "" && params["no_such_guc"] == "" {
			mustContain(t, "startup", out, `"Type":"AuthenticationOK"`, `"Type":"ReadyForQuery"`)
		}
	}
}

// TestSSLAndGSSNegotiation sends SSLRequest and GSSENCRequest by hand.
func TestSSLAndGSSNegotiation(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	negotiate := func(addr string, req pgproto3.FrontendMessage) (byte, net.Conn) {
		t.Helper()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf, err := req.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		if _, err := c.Read(one); err != nil {
			t.Fatalf("%s: no answer to %T: %v", addr, req, err)
		}
		return one[0], c
	}
	// The proxy cannot do GSS encryption (Debian's Postgres, built with GSSAPI,
	// says 'G' here); after 'N' the same connection carries a normal startup.
	answer, c := negotiate(env.proxy.addr(), &pgproto3.GSSEncRequest{})
	if answer != 'N' {
		t.Errorf("proxy: GSSENCRequest answered %q, want 'N'", answer)
	}
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": userTrust, "database": dbMain}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := fe.Receive(); err != nil {
		t.Errorf("proxy: startup after GSS 'N': %v", err)
	} else if _, ok := msg.(*pgproto3.AuthenticationOk); !ok {
		t.Errorf("proxy: startup after GSS 'N': got %s", renderMessage(msg, true))
	}
	c.Close()
	// Postgres in this suite has no certificate; the proxy has one.
	if answer, c := negotiate(env.pg.Host+":"+fmt.Sprint(env.pg.Port), &pgproto3.SSLRequest{}); answer != 'N' {
		t.Errorf("direct SSLRequest answered %q, want 'N'", answer)
	} else {
		c.Close()
	}
	answer, c = negotiate(env.proxy.addr(), &pgproto3.SSLRequest{})
	if answer != 'S' {
		t.Fatalf("proxy SSLRequest answered %q, want 'S' (a certificate is configured)", answer)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the handshake is tested
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS handshake after 'S': %v", err)
	}
	tc.Close()

	// A proxy without a certificate says 'N', and the startup goes on in the clear.
	plain, err := startProxy(ctx, "plain", proxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := plain.stop(10 * time.Second); err != nil {
			t.Errorf("stopping the plain proxy: %v", err)
		}
	}()
	if answer, c := negotiate(plain.addr(), &pgproto3.SSLRequest{}); answer != 'N' {
		t.Errorf("proxy without a certificate answered SSLRequest with %q, want 'N'", answer)
	} else {
		c.Close()
	}
	conn, err := pgx.Connect(ctx, strings.Replace(plain.DSN(userScram, dbMain), "sslmode=disable", "sslmode=prefer", 1))
	if err != nil {
		t.Fatalf("sslmode=prefer against a proxy without TLS: %v", err)
	}
	if _, ok := conn.PgConn().Conn().(*tls.Conn); ok {
		t.Errorf("sslmode=prefer got TLS from a proxy without a certificate")
	}
	conn.Close(ctx)
}

// TestCleartextPolicyNever starts a second proxy that must never ask for a
// password without TLS: a password user on a plain connection is refused
// before any password is requested, the same user over TLS gets in, and a trust
// user needs no password at all.
func TestCleartextPolicyNever(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	p, err := startProxy(ctx, "never", proxyOptions{TLS: true, Cleartext: "never"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("stopping the second proxy: %v", err)
		}
		if t.Failed() {
			t.Logf("pgrollup (never) log:\n%s", tail(p.log.Bytes(), 100))
		}
	}()
	for _, user := range []string{userScram, userMD5} {
		s, err := startupTranscript(ctx, p.addr(), map[string]string{"user": user, "database": dbMain})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, "Authentication") {
			t.Errorf("%s without TLS under policy never: the proxy asked for a password:\n%s", user, s)
		}
		if !strings.Contains(s, `"Type":"ErrorResponse","Severity":"FATAL"`) || !strings.Contains(s, `"Code":"28`) {
			t.Errorf("%s without TLS under policy never: want a FATAL class 28 (invalid authorization) error, got:\n%s", user, s)
		}
		// pgx reports the same refusal as a Postgres error.
		_, err = pgx.Connect(ctx, p.DSN(user, dbMain))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "28") {
			t.Errorf("%s via pgx without TLS: got %v, want a class 28 error", user, err)
		}
		conn, err := pgx.Connect(ctx, strings.Replace(p.DSN(user, dbMain), "sslmode=disable", "sslmode=require", 1))
		if err != nil {
			t.Errorf("%s over TLS under policy never: %v", user, err)
		} else {
			conn.Close(ctx)
		}
	}
	conn, err := pgx.Connect(ctx, p.DSN(userTrust, dbMain))
	if err != nil {
		t.Errorf("trust user without TLS under policy never: %v", err)
	} else {
		conn.Close(ctx)
	}
}
