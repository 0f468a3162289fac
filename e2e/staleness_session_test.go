package e2e

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSessionStaleness: a session's pgrollup.max_staleness, from the
// startup options or by SET, SET LOCAL, set_config and RESET, replaces
// routing.max_staleness for that session alone; the warehouse gets the
// setting unchanged (SHOW answers it), and every answer equals Postgres's.
func TestSessionStaleness(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	p := startBoundProxy(t, ctx)
	const stmt = "SELECT qty, count(*), sum(amount) FROM sales WHERE status = 'completed' GROUP BY qty ORDER BY qty"
	// Unnamed statements: a statement prepared while the setting kept rollups
	// out stays with the warehouse for its life.
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	direct := connect(t, ctx, directDSN(userScram, boundDB))
	want := map[pgx.QueryExecMode]string{}
	for _, mode := range modes {
		w, err := boundRender(ctx, direct, mode, boundCase{sql: stmt})
		if err != nil {
			t.Fatal(err)
		}
		want[mode] = w
	}
	// served runs stmt on conn, in the simple and the extended protocol,
	// and reports whether a rollup answered both.
	served := func(t *testing.T, conn *pgx.Conn) bool {
		t.Helper()
		hits := 0.0
		for _, mode := range modes {
			before, err := diffScrape(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := boundRender(ctx, conn, mode, boundCase{sql: stmt})
			if err != nil {
				t.Fatal(err)
			}
			requireSame(t, stmt, want[mode], got)
			after, err := diffScrape(p)
			if err != nil {
				t.Fatal(err)
			}
			hits += after.sum("pgrollup_rollup_hits_total") - before.sum("pgrollup_rollup_hits_total")
		}
		if hits == 1 {
			t.Errorf("answered from a rollup in one protocol and not in the other")
		}
		return hits == 2
	}
	exec := func(t *testing.T, conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	show := func(t *testing.T, conn *pgx.Conn) string {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SHOW pgrollup.max_staleness").Scan(&v); err != nil {
			t.Fatalf("SHOW pgrollup.max_staleness: %v", err)
		}
		return v
	}

	t.Run("startup options", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(p.DSN(userScram, boundDB))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["options"] = "-c pgrollup.max_staleness=0"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if v := show(t, conn); v != "0" {
			t.Fatalf("SHOW pgrollup.max_staleness = %q through pgrollup, want 0", v)
		}
		if served(t, conn) {
			t.Error("answered from a rollup with pgrollup.max_staleness=0 in the startup options")
		}
		exec(t, conn, "SET pgrollup.max_staleness = '1h'")
		if !served(t, conn) {
			t.Error("not answered from a rollup after SET pgrollup.max_staleness = '1h'")
		}
		// RESET returns to the value the session started with.
		exec(t, conn, "RESET pgrollup.max_staleness")
		if served(t, conn) {
			t.Error("answered from a rollup after RESET to the startup option's 0")
		}
	})

	t.Run("set", func(t *testing.T) {
		conn := connect(t, ctx, p.DSN(userScram, boundDB))
		other := connect(t, ctx, p.DSN(userScram, boundDB))
		if !served(t, conn) {
			t.Fatal("not answered from a rollup without the setting")
		}
		for _, c := range []struct {
			set    string
			served bool
		}{
			{"SET pgrollup.max_staleness = '0'", false},
			{"SET pgrollup.max_staleness = '1h'", true},
			// The rollups were built more than a millisecond ago.
			{"SET pgrollup.max_staleness = '1ms'", false},
			{"SET pgrollup.max_staleness = '10 minutes'", true},
			{"SELECT pg_catalog.set_config('pgrollup.max_staleness', '0', false)", false},
			{"SET pgrollup.max_staleness TO 'whenever'", false},
			{"RESET pgrollup.max_staleness", true},
		} {
			exec(t, conn, c.set)
			if got := served(t, conn); got != c.served {
				t.Errorf("after %s: answered from a rollup %v, want %v", c.set, got, c.served)
			}
		}
		exec(t, conn, "SET pgrollup.max_staleness = '0'")
		if !served(t, other) {
			t.Error("another session's setting kept this one from its rollup")
		}
		exec(t, conn, "RESET ALL")
		if !served(t, conn) {
			t.Error("not answered from a rollup after RESET ALL")
		}
	})

	t.Run("set local", func(t *testing.T) {
		conn := connect(t, ctx, p.DSN(userScram, boundDB))
		exec(t, conn, "BEGIN")
		exec(t, conn, "SET LOCAL pgrollup.max_staleness = 0")
		if v := show(t, conn); v != "0" {
			t.Fatalf("SHOW pgrollup.max_staleness = %q in the block, want 0", v)
		}
		if served(t, conn) {
			t.Error("answered from a rollup in a block with SET LOCAL pgrollup.max_staleness = 0")
		}
		exec(t, conn, "COMMIT")
		if !served(t, conn) {
			t.Error("not answered from a rollup after the block that set it locally")
		}
	})
}
