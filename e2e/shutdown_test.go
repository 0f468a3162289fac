package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestGracefulShutdown sends SIGTERM to a separate proxy while a query runs
// through it: the query completes, new connections are refused meanwhile, and
// the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	p, err := startProxy(ctx, "shutdown", proxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case <-p.exited:
		default:
			p.kill()
		}
		if t.Failed() {
			t.Logf("pgrollup (shutdown) log:\n%s", tail(p.log.Bytes(), 100))
		}
	}()
	super := superConn(t, ctx, dbMain)
	conn, err := pgx.Connect(ctx, p.DSN(userScram, dbMain))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		v   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = conn.QueryRow(ctx, "SELECT 42 FROM pg_sleep(1) /* draining */").Scan(&r.v)
		done <- r
	}()
	if err := waitForActivity(ctx, super, "%draining%"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While the query runs, new connections must be refused.
	refused := false
	var r result
	gotResult := false
poll:
	for {
		select {
		case r = <-done:
			gotResult = true
			break poll
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := pgx.Connect(cctx, p.DSN(userTrust, dbMain))
		cancel()
		if err != nil {
			t.Logf("new connection during the drain: %v", err)
			refused = true
			break
		}
		c.Close(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	if !gotResult {
		r = <-done
	}
	if !refused {
		t.Errorf("new connections were still accepted until the in-flight query finished")
	}
	if r.err != nil || r.v != 42 {
		t.Errorf("the in-flight query did not complete: %v %v", r.v, r.err)
	}
	conn.Close(ctx)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("pgrollup exited with %v after SIGTERM, want 0", p.err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("pgrollup still running 15s after SIGTERM with no sessions left")
	}
}
