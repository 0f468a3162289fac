package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// TestRunReload runs a whole proxy in this process and reloads its
// configuration as SIGHUP does: a rollup added is built and answers in a
// session opened before the reload, a setting that needs a restart is named,
// a file that does not validate changes nothing, and a rollup removed stops
// answering. The session's warehouse connection survives every reload.
func TestRunReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatalf("needs Postgres: %v", err)
	}
	defer pg.Stop()
	direct, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	for _, s := range []string{
		`DROP TABLE IF EXISTS reload_items`,
		`CREATE TABLE reload_items (id int, status text, qty int)`,
		`INSERT INTO reload_items SELECT i, (ARRAY['a','b','c'])[1 + i % 3], i % 7 FROM generate_series(1, 2000) i`,
	} {
		if _, err := direct.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	listen, adminListen := jobstest.FreeAddr(t), jobstest.FreeAddr(t)
	base := fmt.Sprintf("listen: %s\nadmin: {listen: %s}\nwarehouse: {dsn: %q}\ndata_dir: %q\nworker: {concurrency: 1, duckdb_memory_limit: 256MB}\n",
		listen, adminListen, pg.DSN("postgres"), dir)
	const byStatus = "  - {name: by_status, table: public.reload_items, dimensions: [status], measures: [count(*)]}\n"
	const byQty = "  - {name: by_qty, table: public.reload_items, dimensions: [qty], measures: [count(*)]}\n"
	path := filepath.Join(dir, "pgrollup.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base + "rollups:\n" + byStatus)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	var logs jobstest.Buffer
	reloads := make(chan os.Signal, 1)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, cfg, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), ShutdownTimeout: 10 * time.Second,
			BuildWorker: true, Reloads: reloads})
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("Run did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	waitUntil(t, ctx, "the proxy ready", func() bool {
		resp, err := http.Get("http://" + adminListen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// The default sched_policy is batch: Run gave every thread SCHED_BATCH.
	checkThreadsBatch(t)

	u, err := url.Parse(pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = listen
	session, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	pid := backendPID(t, ctx, session)
	const qtyQuery = "SELECT qty, count(*) FROM reload_items GROUP BY qty ORDER BY qty"
	waitChosen(t, ctx, session, "SELECT status, count(*) FROM reload_items GROUP BY status", "by_status")
	if got := chosen(t, ctx, session, qtyQuery); got != "" {
		t.Fatalf("before the reload %q is answered by %s", qtyQuery, got)
	}

	// A rollup added, and a setting that needs a restart.
	write(base + "max_message_bytes: 2MB\nrollups:\n" + byStatus + byQty)
	reloads <- syscall.SIGHUP
	waitUntil(t, ctx, "the restart warning", func() bool { return strings.Contains(logs.String(), "take effect only after a restart") })
	if !strings.Contains(logs.String(), "max_message_bytes") {
		t.Error("the restart warning does not name max_message_bytes")
	}
	waitChosen(t, ctx, session, qtyQuery, "by_qty")
	if got, want := answer(t, ctx, session, qtyQuery), answer(t, ctx, direct, qtyQuery); got != want {
		t.Fatalf("%s after the reload:\nthrough pgrollup:\n%s\ndirectly:\n%s", qtyQuery, got, want)
	}

	// A file that does not validate changes nothing.
	write(base + "rollupz: []\n")
	reloads <- syscall.SIGHUP
	waitUntil(t, ctx, "the failed reload", func() bool { return strings.Contains(logs.String(), "config reload failed") })
	if got := chosen(t, ctx, session, qtyQuery); got != "by_qty" {
		t.Fatalf("after a failed reload %q is answered by %q, want by_qty still", qtyQuery, got)
	}

	// The rollup removed again.
	write(base + "rollups:\n" + byStatus)
	reloads <- syscall.SIGHUP
	waitChosen(t, ctx, session, qtyQuery, "")
	if got := backendPID(t, ctx, session); got != pid {
		t.Fatalf("the session's warehouse connection changed across the reloads: %d, then %d", pid, got)
	}
}

// chosen is the rollup EXPLAIN (ROLLUP) chooses for sql, or "".
func chosen(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) string {
	t.Helper()
	rows, err := conn.Query(ctx, "EXPLAIN (ROLLUP) "+sql)
	if err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	defer rows.Close()
	name := ""
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) >= 2 && fmt.Sprint(vals[1]) == "chosen" {
			name = fmt.Sprint(vals[0])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	return name
}

// waitChosen waits until EXPLAIN (ROLLUP) of sql chooses want ("" for none).
func waitChosen(t *testing.T, ctx context.Context, conn *pgx.Conn, sql, want string) {
	t.Helper()
	waitUntil(t, ctx, fmt.Sprintf("EXPLAIN (ROLLUP) %s to choose %q", sql, want), func() bool { return chosen(t, ctx, conn, sql) == want })
}

// answer is sql's rows as text, one line each, asked in the simple protocol.
func answer(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) string {
	t.Helper()
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func backendPID(t *testing.T, ctx context.Context, conn *pgx.Conn) int {
	t.Helper()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitUntil polls cond until it holds, failing the test when ctx ends first.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
