package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The client's BackendKeyData names the warehouse backend by its real pid,
// with a secret of the proxy's under which the proxy finds the session.
func TestBackendKeyDataCarriesBackendPID(t *testing.T) {
	p := startProxy(t, nil)
	conn := connect(t, p.dsn(trustUser, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pid uint32
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := conn.PgConn().PID(); got != pid {
		t.Fatalf("BackendKeyData pid %d, pg_backend_pid() %d", got, pid)
	}
	secret := conn.PgConn().SecretKey()
	if len(secret) != 4 {
		t.Fatalf("secret key of %d bytes, want 4", len(secret))
	}
	p.srv.mu.Lock()
	sess := p.srv.keys[cancelKey{pid: pid, secret: binary.BigEndian.Uint32(secret)}]
	p.srv.mu.Unlock()
	if sess == nil {
		t.Fatal("no session registered under the client's key")
	}
	up := sess.upKey.Load()
	if up == nil || up.pid != pid {
		t.Fatalf("upstream key %+v, want pid %d", up, pid)
	}
	// The backend's own secret stays with the proxy (equal only by a
	// 1-in-2^32 chance).
	if bytes.Equal(up.secret, secret) {
		t.Fatal("the client was given the backend's own secret")
	}
}

// Sessions whose backends share a pid (a pid reused while the proxy winds a
// session down, or two warehouse hosts) get distinct keys, and a cancel
// reaches only the session it names.
func TestAssignKeyCollisions(t *testing.T) {
	p := startProxy(t, nil)
	srv := p.srv
	srv.mu.Lock()
	// The second draw repeats the first: the pair is taken, so it draws again.
	srv.random = bytes.NewReader([]byte{0, 0, 0, 7, 0, 0, 0, 7, 0, 0, 0, 9})
	srv.mu.Unlock()

	a, b := &session{srv: srv}, &session{srv: srv}
	for _, sess := range []*session{a, b} {
		if err := srv.register(sess); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(srv.metrics.ClientConnections); got != 2 {
		t.Fatalf("client connections %v, want 2", got)
	}
	ka, err := srv.assignKey(a, 4242)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := srv.assignKey(b, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if want := (cancelKey{pid: 4242, secret: 7}); ka != want {
		t.Fatalf("first key %+v, want %+v", ka, want)
	}
	if want := (cancelKey{pid: 4242, secret: 9}); kb != want {
		t.Fatalf("second key %+v, want %+v (drawn again past the taken one)", kb, want)
	}

	var cancelled []*session
	for _, sess := range []*session{a, b} {
		sess.running(func(error) { cancelled = append(cancelled, sess) })
	}
	srv.cancel(cancelKey{pid: 4242, secret: 8})
	if len(cancelled) != 0 {
		t.Fatalf("a cancel with a wrong secret reached %d sessions", len(cancelled))
	}
	srv.cancel(kb)
	if len(cancelled) != 1 || cancelled[0] != b {
		t.Fatalf("cancel of the second key reached %v, want only the second session", cancelled)
	}

	// A session keyed again gives up its old key.
	srv.mu.Lock()
	srv.random = bytes.NewReader([]byte{0, 0, 0, 11})
	srv.mu.Unlock()
	kb2, err := srv.assignKey(b, 5000)
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	old, now := srv.keys[kb], srv.keys[kb2]
	srv.mu.Unlock()
	if old != nil || now != b {
		t.Fatalf("after re-keying: old key -> %p, new key -> %p, want nil and %p", old, now, b)
	}

	// A source of secrets that fails fails the session, rather than looping.
	srv.mu.Lock()
	srv.random = bytes.NewReader(nil)
	srv.mu.Unlock()
	if _, err := srv.assignKey(&session{srv: srv}, 1); err == nil {
		t.Fatal("assignKey without randomness succeeded")
	}

	srv.unregister(a)
	srv.unregister(b)
	srv.unregister(b) // twice is harmless
	srv.mu.Lock()
	left := len(srv.keys) + len(srv.sessions)
	srv.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d keys and sessions left after unregistering", left)
	}
	if got := testutil.ToFloat64(srv.metrics.ClientConnections); got != 0 {
		t.Fatalf("client connections %v, want 0", got)
	}
}
