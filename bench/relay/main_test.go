package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

var testPG pgcluster.Shared

func TestMain(m *testing.M) { code := m.Run(); testPG.Exit(code) }

// TestRelay runs sessions of both protocols through each I/O model to a
// real Postgres: small answers, an answer of 20 MB (more than the sockets
// hold, so the epoll loop has to keep bytes for a peer that cannot take
// them and stop reading until it can), and several clients at once.
func TestRelay(t *testing.T) {
	cluster := testPG.Get(t)
	upstream := fmt.Sprintf("%s:%d", cluster.Host, cluster.Port)
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, listen string) error
	}{
		{"goroutine", func(ctx context.Context, listen string) error { return relayGoroutines(ctx, listen, upstream) }},
		{"epoll, two loops", func(ctx context.Context, listen string) error { return relayEpoll(ctx, listen, upstream, 2, false) }},
		// One loop: each raw loop holds a P while it waits.
		{"epoll raw wait", func(ctx context.Context, listen string) error { return relayEpoll(ctx, listen, upstream, 1, true) }},
		{"handoff", func(ctx context.Context, listen string) error {
			return relayHandoff(ctx, listen, upstream, false, true)
		}},
		{"shared", func(ctx context.Context, listen string) error {
			return relayHandoff(ctx, listen, upstream, false, false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			port, err := proc.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			listen := fmt.Sprintf("127.0.0.1:%d", port)
			errs := make(chan error, 1)
			go func() { errs <- tc.run(ctx, listen) }()
			u, err := url.Parse(cluster.DSN("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = listen
			u.RawQuery = "sslmode=disable"
			conn := connect(ctx, t, u.String(), errs)
			defer conn.Close(ctx)

			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
				var sum int64
				if err := conn.QueryRow(ctx, "SELECT sum(i) FROM generate_series(1, $1::int) i", mode, 1000).Scan(&sum); err != nil || sum != 500500 {
					t.Fatalf("%v: sum = %d, %v", mode, sum, err)
				}
				rows, err := conn.Query(ctx, "SELECT repeat('x', 1000) FROM generate_series(1, 20000)", mode)
				if err != nil {
					t.Fatal(err)
				}
				n, bytes := 0, 0
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					n, bytes = n+1, bytes+len(s)
					if n == 1 {
						time.Sleep(200 * time.Millisecond) // let the relay find the client's socket full
					}
				}
				if err := rows.Err(); err != nil || n != 20000 || bytes != 20000*1000 {
					t.Fatalf("%v: %d rows of %d bytes, %v", mode, n, bytes, err)
				}
			}

			// Sessions at once, each its own backend.
			pids := make(chan int32, 8)
			for i := 0; i < cap(pids); i++ {
				go func() {
					c, err := pgx.Connect(ctx, u.String())
					if err != nil {
						t.Error(err)
						pids <- 0
						return
					}
					defer c.Close(ctx)
					var pid int32
					if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
						t.Error(err)
					}
					pids <- pid
				}()
			}
			seen := map[int32]bool{}
			for i := 0; i < cap(pids); i++ {
				seen[<-pids] = true
			}
			if len(seen) != cap(pids) || seen[0] {
				t.Fatalf("backends of %d sessions: %v", cap(pids), seen)
			}
		})
	}
}

// connect retries until the relay listens.
func connect(ctx context.Context, t *testing.T, dsn string, errs <-chan error) *pgx.Conn {
	t.Helper()
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			return conn
		}
		select {
		case rerr := <-errs:
			t.Fatalf("relay: %v", rerr)
		case <-ctx.Done():
			t.Fatalf("no connection through the relay: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
