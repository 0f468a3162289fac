package proxy

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// waitParked waits until at least n loops are parked.
func waitParked(t *testing.T, p *testProxy, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.srv.idle.parked() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d loops parked, want at least %d", p.srv.idle.parked(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleSessionsPark: silent sessions give up their goroutines, and a
// parked session still hears what the warehouse says on its own
// (notifications, its backend's termination) and answers its client at
// once, over plain TCP and TLS.
func TestIdleSessionsPark(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sessions park on Linux only")
	}
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, func(o *Options) {
				if tc.tls {
					o.TLS = selfSignedTLS(t)
				}
			})
			dsn := p.dsn(scramUser, scramPassword)
			if tc.tls {
				dsn = strings.Replace(dsn, "sslmode=disable", "sslmode=require", 1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			listener := connect(t, dsn)
			other := connect(t, dsn)
			if _, err := listener.Exec(ctx, "LISTEN pgrollup_idle"); err != nil {
				t.Fatal(err)
			}
			waitParked(t, p, 4)

			// A notification wakes the listener's warehouse side alone.
			if _, err := other.Exec(ctx, "NOTIFY pgrollup_idle, 'hello'"); err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			n, err := listener.WaitForNotification(wctx)
			wcancel()
			if err != nil {
				t.Fatalf("notification to a parked session: %v", err)
			}
			if n.Payload != "hello" || n.PID != other.PgConn().PID() {
				t.Fatalf("notification %+v, want hello from %d", n, other.PgConn().PID())
			}

			// The client side wakes for the next statement.
			waitParked(t, p, 4)
			var v int
			if err := listener.QueryRow(ctx, "SELECT 41 + 1").Scan(&v); err != nil || v != 42 {
				t.Fatalf("statement on a parked session: %d, %v", v, err)
			}

			// The warehouse ending a parked session's backend ends it.
			waitParked(t, p, 4)
			if _, err := other.Exec(ctx, "SELECT pg_terminate_backend($1)", listener.PgConn().PID()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for sessions(p) > 1 {
				if time.Now().After(deadline) {
					t.Fatalf("%d sessions after the backend was terminated, want 1", sessions(p))
				}
				time.Sleep(5 * time.Millisecond)
			}
			err = listener.Ping(ctx)
			var pgErr *pgconn.PgError
			if err == nil {
				t.Fatal("a terminated session still answers")
			}
			if errors.As(err, &pgErr) && pgErr.Code != sqlstate.AdminShutdown {
				t.Fatalf("terminated session: %v", err)
			}
			if err := other.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIdleSessionsHoldNoGoroutine: many silent sessions cost no goroutine
// once parked, and all of them answer afterwards.
func TestIdleSessionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sessions park on Linux only")
	}
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients = 40
	before := runtime.NumGoroutine()
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = connect(t, p.dsn(scramUser, scramPassword))
	}
	waitParked(t, p, 2*clients)
	if extra := runtime.NumGoroutine() - before; extra > clients/4 {
		t.Fatalf("%d goroutines more with %d parked sessions", extra, clients)
	}
	for i, c := range conns {
		var got int
		if err := c.QueryRow(ctx, "SELECT $1::int", i).Scan(&got); err != nil || got != i {
			t.Fatalf("session %d: %d, %v", i, got, err)
		}
	}
}

func sessions(p *testProxy) int {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	return len(p.srv.sessions)
}

// TestDetachedTimeout: the dial's context ends with its parent or its
// timeout, and leaves the parent without children.
func TestDetachedTimeout(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := detachedTimeout(parent, time.Hour)
	defer cancel()
	if ctx.Err() != nil {
		t.Fatal("ended at once")
	}
	cancelParent()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parent's end did not reach the child")
	}

	ctx, cancel = detachedTimeout(context.Background(), time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("ended with %v", ctx.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timeout did not end the child")
	}
}
