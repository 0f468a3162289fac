package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

// TestOpsReload: SIGHUP reads the configuration file again. A rollup added
// is built and answers in a session opened before the reload, one removed
// stops answering, a file that does not validate changes nothing and says
// where it is wrong, and settings that need a restart are named.
func TestOpsReload(t *testing.T) {
	o := startOpsProxy(t, "reload")
	ctx := testCtx(t, 2*time.Minute)
	const byQty = "SELECT qty, count(*) FROM items GROUP BY qty ORDER BY qty"

	session := connect(t, ctx, o.DSN(userScram, dbMain))
	direct := superConn(t, ctx, dbMain)
	var pid int
	if err := session.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := explainChosen(t, ctx, session, byQty); got != "" {
		t.Fatalf("before the reload %q is answered by %s", byQty, got)
	}

	text, err := os.ReadFile(o.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(text, &cfg); err != nil {
		t.Fatal(err)
	}
	original := cfg["rollups"].([]any)
	cfg["rollups"] = append(append([]any{}, original...), map[string]any{
		"name":           "items_by_qty",
		"table":          "public.items",
		"dimensions":     []string{"qty"},
		"time_dimension": "created_at",
		"granularity":    "day",
		"measures":       []string{"count(*)"},
		"refresh":        map[string]any{"every": "1h"},
	})
	cfg["max_message_bytes"] = "2MB" // needs a restart
	o.writeConfig(t, cfg)
	o.hangUp(t)

	o.waitLog(t, ctx, "take effect only after a restart")
	if !strings.Contains(o.logSince(0), "max_message_bytes") {
		t.Errorf("the restart warning does not name max_message_bytes:\n%s", tail(o.log.Bytes(), 20))
	}
	o.waitActive(t, ctx, "items_by_qty", "")
	waitChosen(t, ctx, session, byQty, "items_by_qty")
	if got, want := queryText(t, session, byQty, pgx.QueryExecModeSimpleProtocol), queryText(t, direct, byQty, pgx.QueryExecModeSimpleProtocol); got != want {
		t.Fatalf("%s after the reload:\nthrough pgrollup:\n%s\ndirectly:\n%s", byQty, got, want)
	}
	var samePID int
	if err := session.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&samePID); err != nil || samePID != pid {
		t.Fatalf("the session's warehouse connection changed across the reload: %d, then %d (%v)", pid, samePID, err)
	}

	// A file that does not validate: nothing changes, and the log says
	// which line is wrong.
	mark := len(o.log.Bytes())
	if err := os.WriteFile(o.cfgFile, append(append([]byte{}, text...), "rollupz: []\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	o.hangUp(t)
	o.waitLog(t, ctx, "config reload failed")
	if got := o.logSince(mark); !strings.Contains(got, "pgrollup.yaml:") || !strings.Contains(got, "rollupz") {
		t.Errorf("the failed reload does not name the file, line and key:\n%s", got)
	}
	if got := explainChosen(t, ctx, session, byQty); got != "items_by_qty" {
		t.Fatalf("after a failed reload %q is answered by %q, want items_by_qty still", byQty, got)
	}

	// Removing the rollup again: it stops answering and leaves the API.
	cfg["rollups"] = original
	o.writeConfig(t, cfg)
	o.hangUp(t)
	waitChosen(t, ctx, session, byQty, "")
	for _, r := range o.rollups(t) {
		if r.Name == "items_by_qty" {
			t.Fatalf("GET /api/rollups still lists the removed rollup: %+v", r)
		}
	}
	if got, want := queryText(t, session, byQty, pgx.QueryExecModeSimpleProtocol), queryText(t, direct, byQty, pgx.QueryExecModeSimpleProtocol); got != want {
		t.Fatalf("%s after removing the rollup:\nthrough pgrollup:\n%s\ndirectly:\n%s", byQty, got, want)
	}
}

func (o *opsProc) writeConfig(t *testing.T, cfg map[string]any) {
	t.Helper()
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.cfgFile, text, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (o *opsProc) hangUp(t *testing.T) {
	t.Helper()
	if err := o.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// logSince is the proxy's log from byte offset mark on.
func (o *opsProc) logSince(mark int) string { return string(o.log.Bytes()[mark:]) }

// waitLog waits for a line containing text in the proxy's log.
func (o *opsProc) waitLog(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	for !bytes.Contains(o.log.Bytes(), []byte(text)) {
		select {
		case <-ctx.Done():
			t.Fatalf("no %q in the log:\n%s", text, tail(o.log.Bytes(), 30))
		case <-o.exited:
			t.Fatalf("pgrollup exited: %v\n%s", o.err, tail(o.log.Bytes(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// explainChosen is the rollup EXPLAIN (ROLLUP) chooses for sql, or "".
func explainChosen(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) string {
	t.Helper()
	rows, err := conn.Query(ctx, "EXPLAIN (ROLLUP) "+sql)
	if err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	defer rows.Close()
	chosen := ""
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) >= 2 && fmt.Sprint(vals[1]) == "chosen" {
			chosen = fmt.Sprint(vals[0])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	return chosen
}

// waitChosen waits until EXPLAIN (ROLLUP) of sql chooses want ("" for none).
func waitChosen(t *testing.T, ctx context.Context, conn *pgx.Conn, sql, want string) {
	t.Helper()
	for {
		got := explainChosen(t, ctx, conn, sql)
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("EXPLAIN (ROLLUP) %s chooses %q, want %q:\n%s", sql, got, want, queryText(t, conn, "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
