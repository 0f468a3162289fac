package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/proxy"
)

// TestExplainWithTheCurrentContext: EXPLAIN (ROLLUP) and SHOW ROLLUPS decide
// with the session's context as it is now, through the proxy after SET ROLE
// and after the watch made a new Probe between statements; and a context
// read for a Probe replaced while the answer ran is never taken for an
// unknown one (nothing readable, "no rollup"): the answer asks the proxy to
// read it again (proxy.ErrStaleContext), and so does an answer from the
// rollup rather than pass through.
func TestExplainWithTheCurrentContext(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	w := f.router.opts.Context
	if _, err := pool.Exec(ctx, `DROP ROLE IF EXISTS ectx_reader, ectx_nobody, ectx_renew;
		CREATE ROLE ectx_reader; CREATE ROLE ectx_nobody; CREATE ROLE ectx_renew; GRANT SELECT ON orders TO ectx_reader`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(ctx, "REVOKE ALL ON orders FROM ectx_reader, ectx_renew; DROP ROLE IF EXISTS ectx_reader, ectx_nobody, ectx_renew")
	})
	// renew changes what the watch follows (a grant to a role no session
	// takes, or its revocation) and waits for its new Probe.
	granted := false
	renew := func(t *testing.T) {
		t.Helper()
		old := w.Probe()
		change := "GRANT SELECT ON orders TO ectx_renew"
		if granted {
			change = "REVOKE SELECT ON orders FROM ectx_renew"
		}
		granted = !granted
		if _, err := pool.Exec(ctx, change); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); w.Probe() == old; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no new Probe within 10s")
			}
		}
	}
	renew(t)
	const q = "SELECT status, count(*) FROM orders GROUP BY status"

	t.Run("through the proxy", func(t *testing.T) {
		conn := f.connectAs(t, "postgres")
		for _, tt := range []struct {
			setup string
			sees  bool
			renew bool
		}{
			{setup: "SET ROLE ectx_reader", sees: true},
			{sees: true, renew: true},
			{setup: "SET ROLE ectx_nobody"},
			{renew: true},
			{setup: "SET ROLE ectx_reader", sees: true, renew: true},
			{setup: "RESET ROLE", sees: true},
		} {
			if tt.setup != "" {
				if _, err := conn.Exec(ctx, tt.setup); err != nil {
					t.Fatal(err)
				}
			}
			if tt.renew {
				renew(t)
			}
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				ex, err := answer(conn, mode, "EXPLAIN (ROLLUP) "+q)
				if err != nil {
					t.Fatal(err)
				}
				if chosen := strings.Contains(ex, "by_statuschosen"); chosen != tt.sees {
					t.Fatalf("%q (new Probe %v), %v: EXPLAIN (ROLLUP) chose by_status: %v, want %v:\n%s", tt.setup, tt.renew, mode, chosen, tt.sees, ex)
				}
				show, err := answer(conn, mode, "SHOW ROLLUPS")
				if err != nil {
					t.Fatal(err)
				}
				if lists := strings.Contains(show, "by_status"); lists != tt.sees {
					t.Fatalf("%q (new Probe %v), %v: SHOW ROLLUPS lists by_status: %v, want %v:\n%s", tt.setup, tt.renew, mode, lists, tt.sees, show)
				}
			}
		}
	})

	t.Run("probe replaced as the answer runs", func(t *testing.T) {
		// The session's context as the proxy reads it: the Probe's
		// values on the session's own connection.
		read := func(t *testing.T) *proxy.SessionInfo {
			t.Helper()
			p := w.Probe()
			rs, err := pool.Query(ctx, "SELECT "+p.Select, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var vals []string
			for rs.Next() {
				for _, v := range rs.RawValues() {
					vals = append(vals, string(v))
				}
			}
			if rs.Err() != nil || len(vals) != p.Columns {
				t.Fatalf("probe: %d values of %d: %v", len(vals), p.Columns, rs.Err())
			}
			return &proxy.SessionInfo{User: "postgres", Database: "postgres", Parameters: map[string]string{"TimeZone": "UTC"},
				TxStatus: 'I', Now: time.Now(), Probe: p, Probed: vals}
		}
		run := func(a proxy.Answer, sess *proxy.SessionInfo) (string, error) {
			res, err := a.Run(ctx, sess, nil)
			if err != nil {
				return "", err
			}
			defer res.Rows.Close()
			var b strings.Builder
			for res.Rows.Next() {
				fmt.Fprintln(&b, res.Rows.Values()...)
			}
			return b.String(), res.Rows.Err()
		}
		sess := read(t)
		explain := f.router.Route(ctx, &proxy.Statement{SQL: "EXPLAIN (ROLLUP) " + q}, sess).Answer
		show := f.router.Route(ctx, &proxy.Statement{SQL: "SHOW ROLLUPS"}, sess).Answer
		rollup := f.router.Route(ctx, &proxy.Statement{SQL: q}, sess).Answer
		if explain == nil || show == nil || rollup == nil {
			t.Fatalf("not answered by the proxy: %v %v %v", explain, show, rollup)
		}
		for _, a := range []proxy.Answer{explain, show, rollup} {
			out, err := run(a, sess)
			if err != nil || (a != rollup && !strings.Contains(out, "by_status")) {
				t.Fatalf("%T with the current Probe: %v\n%s", a, err, out)
			}
		}
		renew(t)
		for _, a := range []proxy.Answer{explain, show, rollup} {
			if out, err := run(a, sess); !errors.Is(err, proxy.ErrStaleContext) {
				t.Errorf("%T with a replaced Probe: %v, want proxy.ErrStaleContext:\n%s", a, err, out)
			}
		}
	})
}
