package proxy

import (
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The warehouse ignores a Sync during COPY FROM STDIN: the proxy waits for
// no answer to it, and answers statements itself afterwards.
func TestSyncDuringCopy(t *testing.T) {
	copyIn := func(query string, data string, ready int) step {
		return step{batch: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: query}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.CopyData{Data: []byte(data)}, &pgproto3.Sync{}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
		}, ready: ready}
	}
	after := []step{{sql: localSQL}, {query: localSQL}, {prepare: localSQL, name: "s1"}, {execute: "s1"}}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "copied", steps: []step{copyIn("COPY ci FROM STDIN", "1\tx\n", 1), {query: "SELECT count(*) FROM ci"}}},
		{name: "bad data", steps: []step{copyIn("COPY ci FROM STDIN", "x\tx\n", 2), {query: "SELECT count(*) FROM ci"}}},
		{name: "no such table", steps: []step{copyIn("COPY nowhere FROM STDIN", "1\tx\n", 2)}},
		{name: "not a copy in", steps: []step{copyIn("COPY ci TO STDOUT", "1\tx\n", 2)}},
		{name: "simple protocol", steps: []step{{batch: []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "COPY ci FROM STDIN"}, &pgproto3.CopyData{Data: []byte("2\ty\n")}, &pgproto3.CopyDone{},
		}, ready: 1}}},
	}
	runs := &atomic.Int32{}
	p := startProxy(t, func(o *Options) { o.Router = testRouter{answer: seriesAnswer{runs: runs}} })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := append([]step{{sql: "CREATE TEMP TABLE ci (a int, b text)"}}, tt.steps...)
			steps = append(steps, after...)
			want := runScript(t, connect(t, cluster(t).DSN("postgres")).PgConn(), steps)
			before := runs.Load()
			got := runScript(t, connect(t, p.dsn(trustUser, "")).PgConn(), steps)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if n := runs.Load() - before; n != 3 {
				t.Fatalf("the proxy answered %d times, want 3", n)
			}
		})
	}
}
