package proxy

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// DEALLOCATE, DISCARD ALL and CLOSE ALL, as SQL, treat the statements and
// portals the proxy holds for the client as Postgres treats its own.
func TestResetsDropWhatTheProxyHolds(t *testing.T) {
	prepare := step{prepare: localSQL, name: "s1"}
	execute := step{execute: "s1"}
	bindPortal := step{batch: []pgproto3.FrontendMessage{
		&pgproto3.Parse{Name: "s1", Query: localSQL}, &pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "s1"}, &pgproto3.Sync{},
	}}
	executePortal := step{batch: batch([]pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "p1"}})}
	tests := []struct {
		name  string
		steps []step
		// local is how many answers the proxy gives itself.
		local int32
	}{
		{name: "the differential suite's script", local: 3, steps: func() []step {
			var steps []step
			for _, reset := range []string{"DISCARD ALL", "DEALLOCATE s1", "DEALLOCATE ALL"} {
				steps = append(steps, prepare, step{sql: reset}, prepare, execute, step{sql: "DEALLOCATE ALL"})
			}
			return steps
		}()},
		{name: "DEALLOCATE PREPARE", local: 1, steps: []step{prepare, {sql: "DEALLOCATE PREPARE s1"}, execute, prepare, execute}},
		{name: "DEALLOCATE of a statement nobody holds", steps: []step{{sql: "DEALLOCATE s1"}, {sql: "DEALLOCATE s1; SELECT 1"}}},
		{name: "DEALLOCATE in the extended protocol", local: 1, steps: []step{
			prepare, {query: "DEALLOCATE s1"}, {query: "DEALLOCATE s1"}, prepare, execute,
		}},
		{name: "DEALLOCATE prepared, run after the statement went", steps: []step{
			prepare, {prepare: "DEALLOCATE s1", name: "d"}, {execute: "d"}, {execute: "d"}, execute,
		}},
		{name: "DEALLOCATE among other statements", local: 1, steps: []step{
			prepare, {sql: "SELECT 1; DEALLOCATE s1; SELECT 2"}, execute, prepare, execute,
		}},
		{name: "DEALLOCATE in a transaction block", local: 1, steps: []step{
			prepare, {sql: "BEGIN"}, {sql: "DEALLOCATE s1"}, {sql: "ROLLBACK"}, execute, prepare, execute,
		}},
		{name: "DEALLOCATE in a failed transaction block", local: 1, steps: []step{
			prepare, {sql: "BEGIN"}, {sql: "SELECT 1/0"}, {sql: "DEALLOCATE s1"}, {query: "DEALLOCATE s1"}, {sql: "ROLLBACK"}, execute,
		}},
		{name: "DISCARD ALL in a transaction block drops nothing", local: 1, steps: []step{
			prepare, {sql: "BEGIN"}, {sql: "DISCARD ALL"}, {sql: "ROLLBACK"}, execute, prepare,
		}},
		{name: "DISCARD ALL among other statements", local: 1, steps: []step{prepare, {sql: "SELECT 1; DISCARD ALL"}, execute, prepare}},
		{name: "DISCARD ALL in the extended protocol", steps: []step{prepare, {query: "DISCARD ALL"}, execute}},
		{
			// Npgsql resets a pooled connection with DISCARD ALL in the
			// same batch as its next statements, which it prepares again.
			name: "Npgsql: DISCARD ALL pipelined with the next Parse", local: 1, steps: []step{
				prepare,
				{batch: batch(extended("DISCARD ALL"), []pgproto3.FrontendMessage{
					&pgproto3.Parse{Name: "s1", Query: localSQL}, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{},
				})},
			},
		},
		{name: "DEALLOCATE ALL leaves portals", local: 1, steps: []step{
			{sql: "BEGIN"}, bindPortal, {sql: "DEALLOCATE ALL"}, executePortal, execute, {sql: "COMMIT"},
		}},
		{name: "CLOSE ALL closes portals", steps: []step{
			{sql: "BEGIN"}, bindPortal, {sql: "CLOSE ALL"}, executePortal, {sql: "ROLLBACK"},
		}},
		{name: "DISCARD ALL closes portals", steps: []step{bindPortal, {sql: "DISCARD ALL"}, executePortal}},
	}
	runs := &atomic.Int32{}
	p := startProxy(t, func(o *Options) { o.Router = testRouter{answer: seriesAnswer{runs: runs}} })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := runScript(t, connect(t, cluster(t).DSN("postgres")).PgConn(), tt.steps)
			before := runs.Load()
			got := runScript(t, connect(t, p.dsn(trustUser, "")).PgConn(), tt.steps)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if n := runs.Load() - before; n != tt.local {
				t.Fatalf("the proxy answered %d times, want %d", n, tt.local)
			}
		})
	}
}

// A statement the proxy holds that also went to the warehouse (after an
// answer fell back) is deallocated there, and by the proxy once the
// warehouse says so.
func TestDeallocateOfAStatementBothHold(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = testRouter{answer: seriesAnswer{fail: errors.New("worker gone")}, fallback: true}
	})
	steps := []step{
		{prepare: localSQL, name: "s1"}, {execute: "s1"}, {sql: "DEALLOCATE s1"}, {execute: "s1"},
		{prepare: localSQL, name: "s1"}, {execute: "s1"}, {sql: "SELECT 1; DEALLOCATE s1"}, {prepare: localSQL, name: "s1"},
	}
	want := runScript(t, connect(t, cluster(t).DSN("postgres")).PgConn(), steps)
	got := runScript(t, connect(t, p.dsn(trustUser, "")).PgConn(), steps)
	if got != want {
		t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
	}
}
