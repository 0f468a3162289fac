package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// routeCounts is what the metrics say about each route at one moment.
type routeCounts struct {
	queries   map[Route]float64 // pgrollup_queries_total
	observed  map[Route]uint64  // pgrollup_query_duration_seconds sample count
	fallbacks float64
}

func countsOf(t *testing.T, p *testProxy) routeCounts {
	t.Helper()
	c := routeCounts{queries: map[Route]float64{}, observed: map[Route]uint64{}, fallbacks: testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed"))}
	for _, r := range []Route{RoutePassthrough, RouteRollup, RouteAdmin, RouteError} {
		c.queries[r] = p.queries(t, r)
		c.observed[r] = p.timed(t, r)
	}
	return c
}

// delta reports what changed between two snapshots, for failure messages
// and comparisons: queries and observations per route, and fallbacks.
func (c routeCounts) delta(before routeCounts) string {
	var b strings.Builder
	for _, r := range []Route{RoutePassthrough, RouteRollup, RouteAdmin, RouteError} {
		if q, o := c.queries[r]-before.queries[r], c.observed[r]-before.observed[r]; q != 0 || o != 0 {
			fmt.Fprintf(&b, "%s: %v counted, %d timed; ", r, q, o)
		}
	}
	fmt.Fprintf(&b, "fallbacks: %v", c.fallbacks-before.fallbacks)
	return b.String()
}

// A statement that fell back to the warehouse counts once, as passthrough,
// plus a fallback, and is timed once under passthrough: never as a rollup
// hit. Both ways to fall back are covered: the answer fails to start, and
// it fails while streaming, before anything reached the client.
func TestFallbackCountsAsPassthrough(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = routerFunc(func(st *Statement) RouteDecision {
			switch st.SQL {
			case localSQL:
				return RouteDecision{Route: RouteRollup, Answer: seriesAnswer{fail: errors.New("worker gone")}, Fallback: true}
			case bigSQL:
				return RouteDecision{Route: RouteRollup, Answer: bigAnswer{n: 200000, failAt: 10}, Fallback: true}
			}
			return RouteDecision{Route: RoutePassthrough}
		})
	})
	conn := connect(t, p.dsn(trustUser, ""))
	want := "passthrough: 1 counted, 1 timed; fallbacks: 1"
	for name, mode := range execModes {
		for _, sql := range []string{localSQL, bigSQL} {
			before := countsOf(t, p)
			r, err := conn.Query(context.Background(), sql, mode)
			if err != nil {
				t.Fatal(err)
			}
			for r.Next() {
			}
			if err := r.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := countsOf(t, p).delta(before); got != want {
				t.Errorf("%s, %.30s...: %s, want %s", name, sql, got, want)
			}
		}
	}
}

// namedAnswer is seriesAnswer from a named rollup.
type namedAnswer struct{ seriesAnswer }

func (namedAnswer) RollupName() string { return "orders_daily" }

// lockedBuffer collects a server's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every answered statement is counted and timed exactly once under the route
// that answered it, and logged at debug level with the rollup or the reason,
// without parameter values or passwords.
func TestStatementsTimedAndLogged(t *testing.T) {
	logs := &lockedBuffer{}
	p := startProxy(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Router = routerFunc(func(st *Statement) RouteDecision {
			switch {
			case st.SQL == localSQL:
				return RouteDecision{Route: RouteRollup, Answer: namedAnswer{}, Fallback: true}
			case strings.HasPrefix(st.SQL, "show rollups"):
				return RouteDecision{Route: RouteAdmin, Answer: seriesAnswer{}}
			case strings.HasPrefix(st.SQL, "refuse"):
				return RouteDecision{Route: RouteError, Reason: "rollup_only", Answer: seriesAnswer{fail: Error(sqlstate.FeatureNotSupported, "refused")}}
			}
			return RouteDecision{Route: RoutePassthrough, Reason: "no_rollup"}
		})
	})
	conn := connect(t, p.dsn(scramUser, scramPassword))
	ctx := context.Background()
	before := countsOf(t, p)

	const secret = "s3cret-parameter-value"
	statements := 0
	for name, mode := range execModes {
		_ = rows(t, conn, mode, localSQL)
		_ = rows(t, conn, mode, "show rollups")
		if _, err := conn.Exec(ctx, "refuse this", mode); err == nil {
			t.Fatalf("%s: the refusal did not reach the client", name)
		}
		var got string
		if mode == pgx.QueryExecModeSimpleProtocol {
			// pgx interpolates the value into the text: no parameter to hide.
			if err := conn.QueryRow(ctx, "select 'plain'::text", mode).Scan(&got); err != nil {
				t.Fatal(err)
			}
		} else if err := conn.QueryRow(ctx, "select $1::text", mode, secret).Scan(&got); err != nil || got != secret {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
		statements += 4
	}
	// In a pipeline, an error makes the warehouse skip the rest of the batch:
	// the skipped statement was never answered, so it is neither counted nor timed.
	conversation(t, p.dsn(trustUser, ""),
		&pgproto3.Parse{Query: "select 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "select 2"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Sync{})
	statements++

	after := countsOf(t, p)
	n := float64(len(execModes))
	wantQueries := map[Route]float64{RouteRollup: n, RouteAdmin: n, RouteError: n, RoutePassthrough: n + 1}
	for r, want := range wantQueries {
		q, o := after.queries[r]-before.queries[r], after.observed[r]-before.observed[r]
		if q != want || float64(o) != want {
			t.Errorf("%s: counted %v and timed %d statements, want %v (%s)", r, q, o, want, after.delta(before))
		}
	}

	text := logs.String()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "msg=statement ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != statements {
		t.Errorf("%d statement log lines for %d statements:\n%s", len(lines), statements, strings.Join(lines, "\n"))
	}
	for _, want := range []string{
		"route=rollup rollup=orders_daily latency=",
		"route=admin latency=",
		"route=error reason=rollup_only latency=",
		"route=passthrough reason=no_rollup latency=",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no statement log line with %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	for _, leak := range []string{secret, scramPassword} {
		if strings.Contains(text, leak) {
			t.Errorf("the log holds %q:\n%s", leak, text)
		}
	}
}

// TestBoundReasons checks that a Bind's portal gets its statement's reason
// however the names go: the same again, alternating, longer than the name
// kept in place, and a statement prepared again under the same name.
func TestBoundReasons(t *testing.T) {
	var c statementClock
	long := strings.Repeat("n", 80)
	c.prepared("a", RouteDecision{Reason: "ra"})
	c.prepared("b", RouteDecision{Reason: "rb"})
	c.prepared(long, RouteDecision{Reason: "rlong"})
	for i, step := range []struct{ stmt, want string }{
		{"a", "ra"}, {"a", "ra"}, {"b", "rb"}, {"a", "ra"}, {long, "rlong"}, {long, "rlong"}, {"c", ""}, {"b", "rb"},
	} {
		c.bound("", []byte(step.stmt))
		if got := c.portalReasons.get("").reason; got != step.want {
			t.Fatalf("step %d: Bind of %.10q: reason %q, want %q", i, step.stmt, got, step.want)
		}
	}
	c.prepared("b", RouteDecision{Reason: "rb2"})
	c.bound("p", []byte("b"))
	if got := c.portalReasons.get("p").reason; got != "rb2" {
		t.Fatalf("b prepared again: reason %q, want rb2", got)
	}
}
