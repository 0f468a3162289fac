package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// The BackendKeyData a client gets through pgrollup carries the warehouse
// backend's real pid, which clients compare with pg_backend_pid(),
// pg_stat_activity, the sender of a notification and the argument of
// pg_terminate_backend. Each test runs directly too, which shows that what
// it expects is what Postgres does.

// eachTarget runs f against Postgres itself and through the main pgrollup.
func eachTarget(t *testing.T, f func(t *testing.T, ctx context.Context, tg target)) {
	for _, tg := range targets() {
		t.Run(tg.name, func(t *testing.T) {
			f(t, testCtx(t, 30*time.Second), tg)
		})
	}
}

// TestPIDIsTheBackends checks the pid against the backend's own view and
// pg_stat_activity, and that pgx's liveness checks pass on the session.
func TestPIDIsTheBackends(t *testing.T) {
	eachTarget(t, func(t *testing.T, ctx context.Context, tg target) {
		super := superConn(t, ctx, dbMain)
		conn := connect(t, ctx, tg.DSN(userMD5, dbMain))
		pid := conn.PgConn().PID()
		var backend uint32
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
			t.Fatal(err)
		}
		if pid != backend {
			t.Fatalf("BackendKeyData pid %d, pg_backend_pid() %d", pid, backend)
		}
		if _, err := conn.Exec(ctx, "SET application_name = 'pid e2e "+tg.name+"'"); err != nil {
			t.Fatal(err)
		}
		var user, db, app string
		err := super.QueryRow(ctx, "SELECT usename, datname, application_name FROM pg_stat_activity WHERE pid = $1", pid).Scan(&user, &db, &app)
		if err != nil {
			t.Fatalf("pid %d in pg_stat_activity: %v", pid, err)
		}
		if user != userMD5 || db != dbMain || app != "pid e2e "+tg.name {
			t.Fatalf("pg_stat_activity for pid %d: %s/%s/%q, want %s/%s/%q", pid, user, db, app, userMD5, dbMain, "pid e2e "+tg.name)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("Conn.Ping: %v", err)
		}
		if err := conn.PgConn().Ping(ctx); err != nil {
			t.Fatalf("PgConn.Ping: %v", err)
		}
		//lint:ignore SA1019 deprecated, but still what older pgxpool versions and applications call
		if err := conn.PgConn().CheckConn(); err != nil {
			t.Fatalf("CheckConn: %v", err)
		}
	})
}

// TestPIDNotify checks the sender pid of notifications: a session's own,
// as asyncpg compares with get_server_pid(), and another session's.
func TestPIDNotify(t *testing.T) {
	eachTarget(t, func(t *testing.T, ctx context.Context, tg target) {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain))
		other := connect(t, ctx, tg.DSN(userTrust, dbMain))
		if _, err := conn.Exec(ctx, `LISTEN "pid e2e"`); err != nil {
			t.Fatal(err)
		}
		for _, sender := range []*pgx.Conn{conn, other} {
			if _, err := sender.Exec(ctx, `NOTIFY "pid e2e", 'hello'`); err != nil {
				t.Fatal(err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, err := conn.WaitForNotification(waitCtx)
			cancel()
			if err != nil {
				t.Fatalf("no notification: %v", err)
			}
			if n.PID != sender.PgConn().PID() || n.Payload != "hello" {
				t.Fatalf("notification from pid %d (%q), want the sender's pid %d (own session's %d)",
					n.PID, n.Payload, sender.PgConn().PID(), conn.PgConn().PID())
			}
		}
	})
}

// TestPIDContextCancel cancels a running statement the way pgx does when
// its context ends and it is set up to send a CancelRequest.
func TestPIDContextCancel(t *testing.T) {
	eachTarget(t, func(t *testing.T, ctx context.Context, tg target) {
		super := superConn(t, ctx, dbMain)
		cfg, err := pgx.ParseConfig(tg.DSN(userScram, dbMain))
		if err != nil {
			t.Fatal(err)
		}
		cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
			// A deadline far off: the answer must come from the cancel,
			// not from pgx closing the connection.
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 20 * time.Second}
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())

		qctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(qctx, "SELECT pg_sleep(30) /* pid e2e cancel "+tg.name+" */")
			done <- err
		}()
		if err := waitForActivity(ctx, super, "%pid e2e cancel "+tg.name+"%"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Fatalf("err = %v, want SQLSTATE 57014", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("cancel took %s, want < 2s", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("pg_sleep(30) not cancelled within 10s")
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("session after cancel: %d, %v", one, err)
		}
	})
}

// TestPIDTerminate ends a session with pg_terminate_backend of its pid,
// called from another session of the same role.
func TestPIDTerminate(t *testing.T) {
	eachTarget(t, func(t *testing.T, ctx context.Context, tg target) {
		victim := connect(t, ctx, tg.DSN(userScram, dbMain))
		killer := connect(t, ctx, tg.DSN(userScram, dbMain))
		var ok bool
		if err := killer.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", victim.PgConn().PID()).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d): %v, %v", victim.PgConn().PID(), ok, err)
		}
		// As pgx's own test of CheckConn: the check notices soon.
		deadline := time.Now().Add(5 * time.Second)
		//lint:ignore SA1019 deprecated, but still what older pgxpool versions and applications call
		for victim.PgConn().CheckConn() == nil {
			if time.Now().After(deadline) {
				t.Fatal("CheckConn still succeeds 5s after the backend was terminated")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := victim.Ping(ctx); err == nil {
			t.Fatal("Ping succeeds on a terminated session")
		}
		if !victim.IsClosed() {
			t.Fatal("the terminated session is not closed")
		}
		var one int
		if err := killer.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("the other session: %v", err)
		}
	})
}
