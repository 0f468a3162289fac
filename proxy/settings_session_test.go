package proxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The proxy knows extra_float_digits and statement_timeout after whatever
// changed them, so that floats print as the warehouse prints them, and
// reads them back from the warehouse only when it may not know them.
func TestSettingsFollowTheSession(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Router = answering(floatSQL, floatAnswer{}) })
	q := step{query: floatSQL}
	tests := []struct {
		name    string
		startup string // extra_float_digits in the startup packet
		steps   []step
		// fallbacks is how many answers the warehouse gave instead,
		// because the settings could not be read back in time.
		fallbacks float64
	}{
		{name: "pgjdbc: 2 at startup, then SET 3", startup: "2", steps: []step{{sql: "SET extra_float_digits = 3"}, q, q}},
		{name: "SET, then RESET", steps: []step{{sql: "SET extra_float_digits = 0"}, q, {sql: "RESET extra_float_digits"}, q}},
		{name: "RESET ALL", startup: "3", steps: []step{{sql: "RESET ALL"}, q}},
		{name: "DISCARD ALL", startup: "-2", steps: []step{q, {sql: "DISCARD ALL"}, q}},
		{name: "SET LOCAL ends with its block", steps: []step{{sql: "BEGIN"}, {sql: "SET LOCAL extra_float_digits = -3"}, q, {sql: "COMMIT"}, q}},
		{name: "SET in a block rolled back", steps: []step{{sql: "BEGIN"}, {sql: "SET extra_float_digits = -5"}, q, {sql: "ROLLBACK"}, q}},
		{name: "SET in a failed block", steps: []step{{sql: "BEGIN"}, {sql: "SET extra_float_digits = -5"}, {sql: "SELECT 1/0"}, q, {sql: "ROLLBACK"}, q}},
		{name: "savepoint rolled back", steps: []step{
			{sql: "BEGIN"}, {sql: "SAVEPOINT a"}, {sql: "SET extra_float_digits = -4"}, q,
			{sql: "ROLLBACK TO SAVEPOINT a"}, q, {sql: "COMMIT"}, q,
		}},
		{name: "set_config", steps: []step{{sql: "SELECT set_config('extra_float_digits', '0', false)"}, q}},
		{name: "a function that sets it without naming it", steps: []step{
			{sql: "CREATE FUNCTION pg_temp.digits() RETURNS text LANGUAGE sql AS $$ SELECT set_config('extra' || '_float_digits', '-6', false) $$"},
			q, {sql: "SELECT pg_temp.digits()"}, q,
		}},
		{name: "several statements in one Query", steps: []step{{sql: "SET extra_float_digits = 0; SELECT 1"}, q}},
		{name: "SET in an implicit transaction that fails", steps: []step{{sql: "SET extra_float_digits = -7; SELECT 1/0"}, q}},
		{name: "SET in the extended protocol", steps: []step{{batch: batch(extended("SET extra_float_digits = -8"))}, q}},
		{
			// The answer comes in the batch that changed the setting: the
			// proxy cannot ask before it, so the warehouse answers, and
			// the next batch is answered again.
			name: "SET earlier in the same batch", steps: []step{
				{batch: batch(extended("SET extra_float_digits = -9"), extended(floatSQL))}, q,
			},
			fallbacks: 1,
		},
		{
			// Npgsql resets a pooled connection with DISCARD ALL in the
			// batch of its next statement: the defaults are known.
			name: "Npgsql: DISCARD ALL in the batch of the answer", startup: "-2", steps: []step{
				{sql: "SET extra_float_digits = 1"}, q,
				{batch: batch(extended("DISCARD ALL"), extended(floatSQL))},
			},
		},
		{
			// pgjdbc without autocommit: every batch starts with a relayed
			// BEGIN, and the settings are read back after the SET's own.
			name: "pgjdbc without autocommit", startup: "2", steps: []step{
				{batch: batch(extended("SET extra_float_digits = 3"))},
				{batch: batch(extended("BEGIN"), extended(floatSQL))},
				{batch: batch(extended("COMMIT"))},
				{batch: batch(extended("BEGIN"), extended(floatSQL))},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxied, direct := connectBothWithDigits(t, p, tt.startup)
			fallbacks := func() float64 {
				return testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("settings_unknown")) +
					testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed"))
			}
			before := fallbacks()
			got := runScript(t, proxied.PgConn(), tt.steps)
			want := runScript(t, direct.PgConn(), tt.steps)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if n := fallbacks() - before; n != tt.fallbacks {
				t.Fatalf("%v answers fell back, want %v", n, tt.fallbacks)
			}
		})
	}
}

// sleepyAnswer answers localSQL after a while; it stops when its context
// ends, in Run or in its rows.
type sleepyAnswer struct {
	seriesAnswer
	inRun bool
	after time.Duration
}

func (a sleepyAnswer) Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error) {
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.after):
			return nil
		}
	}
	if a.inRun {
		if err := wait(); err != nil {
			return nil, err
		}
		return a.seriesAnswer.Run(ctx, sess, params)
	}
	res, err := a.seriesAnswer.Run(ctx, sess, params)
	if err != nil {
		return nil, err
	}
	res.Rows = &waitingRows{Rows: res.Rows, wait: wait}
	return res, nil
}

// waitingRows waits before its first row.
type waitingRows struct {
	Rows
	wait   func() error
	waited bool
	err    error
}

func (r *waitingRows) Next() bool {
	if !r.waited {
		r.waited = true
		if r.err = r.wait(); r.err != nil {
			return false
		}
	}
	return r.Rows.Next()
}

func (r *waitingRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// slowSQL is what the warehouse computes for sleepyAnswer{after: 400ms}.
const slowSQL = "select n::int8 as n, 'row ' || n as label from generate_series(1, 5) n, pg_sleep(0.4)"

// statement_timeout stops a local answer as it stops the warehouse's, with
// the same error, and fails a transaction block the same way.
func TestStatementTimeoutReachesLocalAnswers(t *testing.T) {
	for _, inRun := range []bool{false, true} {
		name := "rows wait"
		if inRun {
			name = "Run waits"
		}
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, func(o *Options) {
				o.Router = answering(slowSQL, sleepyAnswer{inRun: inRun, after: 400 * time.Millisecond})
			})
			simple, ext := step{sql: slowSQL}, step{query: slowSQL}
			tests := []struct {
				name    string
				runtime string // statement_timeout in the startup packet
				steps   []step
			}{
				{name: "SET", steps: []step{{sql: "SET statement_timeout = '50ms'"}, simple, ext, {sql: "SET statement_timeout = 0"}, simple, ext}},
				{name: "at startup", runtime: "50", steps: []step{simple, ext, {sql: "RESET statement_timeout"}, ext}},
				{name: "SET LOCAL in a block", steps: []step{
					{sql: "BEGIN"}, {sql: "SET LOCAL statement_timeout = '50ms'"}, ext, {sql: "SELECT 1"}, {sql: "ROLLBACK"}, ext,
				}},
				{name: "in a block, simple protocol", steps: []step{
					{sql: "BEGIN"}, {sql: "SET statement_timeout = '50ms'"}, simple, {sql: "SELECT 1"}, {sql: "ROLLBACK"}, simple,
				}},
				{name: "prepared, then SET", steps: []step{
					{prepare: slowSQL, name: "s1"}, {execute: "s1"}, {sql: "SET statement_timeout = '50ms'"}, {execute: "s1"},
				}},
				{name: "a row limit: each Execute has its time", steps: []step{
					{sql: "SET statement_timeout = '300ms'"}, {sql: "BEGIN"},
					{batch: []pgproto3.FrontendMessage{
						&pgproto3.Parse{Name: "s2", Query: slowSQL}, &pgproto3.Bind{DestinationPortal: "c", PreparedStatement: "s2"},
						&pgproto3.Execute{Portal: "c", MaxRows: 2}, &pgproto3.Sync{},
					}},
					{batch: batch([]pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "c", MaxRows: 2}})},
					{sql: "COMMIT"},
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					dsn, directDSN := p.dsn(trustUser, ""), cluster(t).DSNFor(trustUser, "", "postgres")
					if tt.runtime != "" {
						dsn += "&statement_timeout=" + tt.runtime
						directDSN += "&statement_timeout=" + tt.runtime
					}
					proxied, direct := connect(t, dsn), connect(t, directDSN)
					want := runScript(t, direct.PgConn(), tt.steps)
					start := time.Now()
					got := runScript(t, proxied.PgConn(), tt.steps)
					if got != want {
						t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
					}
					if !strings.Contains(got, "57014 canceling statement due to statement timeout") && tt.name != "a row limit: each Execute has its time" {
						t.Fatalf("no statement timed out:\n%s", got)
					}
					if d := time.Since(start); d > 5*time.Second {
						t.Fatalf("the script took %v", d)
					}
				})
			}
		})
	}
}

// A timed-out answer is Postgres's error, never relayed to the warehouse
// to be answered late.
func TestStatementTimeoutDoesNotFallBack(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = answering(slowSQL, slowAnswer{})
	})
	conn := connect(t, p.dsn(trustUser, ""))
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SET statement_timeout = '100ms'"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := conn.Exec(ctx, slowSQL)
	if got := errCode(err); got != "57014 canceling statement due to statement timeout" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timed out after %v", d)
	}
	if n := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed")); n != 0 {
		t.Fatalf("%v fallbacks", n)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(errors.Join(errors.New("session after the timeout"), err))
	}
}

// countingConn counts the settings reads written to the warehouse.
type countingConn struct {
	net.Conn
	reads *atomic.Int32
}

func (c countingConn) Write(b []byte) (int, error) {
	c.reads.Add(int32(bytes.Count(b, []byte(settingsQuery))))
	return c.Conn.Write(b)
}

// The settings cost a read when a session starts and after a statement
// that may have changed them, and nothing while nothing changes them.
func TestSettingsReadsOnlyWhenNeeded(t *testing.T) {
	q := step{query: floatSQL}
	repeat := func(n int, steps ...step) []step {
		var out []step
		for range n {
			out = append(out, steps...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		reads int32 // after the one at startup
	}{
		{name: "queries and answers", steps: repeat(10, step{sql: "SELECT 1"}, step{query: "SELECT count(*) FROM pg_class"}, q)},
		{name: "a workload that writes, with no answers", steps: append(
			[]step{{sql: "CREATE TEMP TABLE w (a int)"}},
			repeat(10, step{sql: "BEGIN"}, step{sql: "INSERT INTO w VALUES (1)"}, step{sql: "SELECT count(*) FROM w"}, step{sql: "COMMIT"})...)},
		{name: "one SET", steps: append([]step{q, {sql: "SET extra_float_digits = 0"}}, repeat(5, q)...), reads: 1},
		{name: "one write, then answers", steps: append([]step{{sql: "CREATE TEMP TABLE w (a int)"}}, repeat(5, q)...), reads: 1},
		{name: "SET LOCAL in a block", steps: []step{
			{sql: "BEGIN"}, {sql: "SET LOCAL extra_float_digits = 0"}, q, q, {sql: "COMMIT"}, q, q,
		}, reads: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, func(o *Options) { o.Router = answering(floatSQL, floatAnswer{}) })
			reads := &atomic.Int32{}
			dial := p.srv.warehouse.dial
			p.srv.warehouse.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: c, reads: reads}, nil
			}
			before := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("settings_unknown"))
			got := runScript(t, connect(t, p.dsn(trustUser, "")).PgConn(), tt.steps)
			want := runScript(t, connect(t, cluster(t).DSNFor(trustUser, "", "postgres")).PgConn(), tt.steps)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if n := reads.Load() - 1; n != tt.reads {
				t.Fatalf("%d reads after the one at startup, want %d", n, tt.reads)
			}
			if n := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("settings_unknown")) - before; n != 0 {
				t.Fatalf("%v fallbacks", n)
			}
		})
	}
}

// deadlineAnswer records the deadline its context has.
type deadlineAnswer struct {
	seriesAnswer
	deadlines chan time.Duration // 0: none
}

func (a deadlineAnswer) Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error) {
	var left time.Duration
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	a.deadlines <- left
	return a.seriesAnswer.Run(ctx, sess, params)
}

// An answer sees statement_timeout as its context's deadline, so that what
// it asks in turn (a worker over the network) can stop in time too.
func TestAnswerSeesTheDeadline(t *testing.T) {
	a := deadlineAnswer{deadlines: make(chan time.Duration, 10)}
	p := startProxy(t, func(o *Options) { o.Router = testRouter{answer: a} })
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	steps := []step{{sql: localSQL}, {sql: "SET statement_timeout = '10s'"}, {sql: localSQL}, {query: localSQL}}
	runScript(t, conn, steps)
	for i, want := range []bool{false, true, true} {
		left := <-a.deadlines
		if (left > 0) != want || want && (left < 9*time.Second || left > 10*time.Second) {
			t.Fatalf("answer %d: %v left, want a deadline: %v", i, left, want)
		}
	}
}

// renewingAnswer answers localSQL only with the context read for the
// current Probe, as the Router's answers do, and makes a new Probe as its
// first renew runs begin: the Prober moving on between the proxy's read of
// the context and the answer (ErrStaleContext).
type renewingAnswer struct {
	prober *switchProber
	renew  *atomic.Int32 // runs left that make a new Probe first
	runs   *atomic.Int32
}

func (a renewingAnswer) Columns() []Column    { return seriesAnswer{}.Columns() }
func (a renewingAnswer) ParamTypes() []uint32 { return nil }
func (a renewingAnswer) Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error) {
	a.runs.Add(1)
	if a.renew.Add(-1) >= 0 {
		a.prober.p.Store(&Probe{Select: "'ctx'", Columns: 1})
	}
	if sess.Probe != a.prober.Probe() {
		return nil, ErrStaleContext
	}
	if len(sess.Probed) != 1 || sess.Probed[0] != "ctx" {
		return nil, errors.New("context unknown")
	}
	return seriesAnswer{}.Run(ctx, sess, params)
}

// An answer whose session context went stale as it ran (the Prober made a
// new Probe after the proxy read the context) runs again with the context
// read for the new Probe, in both protocols, rather than failing or
// answering as if the context were unknown (EXPLAIN (ROLLUP) would say no
// rollup is readable). When the Probe keeps changing the answer gives up:
// it falls back to the warehouse, or fails when it may not.
func TestAnswerRunsAgainAfterANewProbe(t *testing.T) {
	ctx := context.Background()
	direct := connect(t, cluster(t).DSN("postgres"))
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	for _, fallback := range []bool{false, true} {
		prober := &switchProber{}
		prober.p.Store(&Probe{Select: "'ctx'", Columns: 1})
		renew, runs := &atomic.Int32{}, &atomic.Int32{}
		p := startProxy(t, func(o *Options) {
			o.Router = testRouter{answer: renewingAnswer{prober: prober, renew: renew, runs: runs}, fallback: fallback}
			o.Prober = prober
		})
		conn := connect(t, p.dsn(trustUser, ""))
		for _, mode := range modes {
			want := rows(t, direct, mode, localSQL)
			renew.Store(1)
			runs.Store(0)
			if got := rows(t, conn, mode, localSQL); got != want {
				t.Errorf("fallback %v, %v: after a new Probe\n%s\nwant\n%s", fallback, mode, got, want)
			}
			if n := runs.Load(); n != 2 {
				t.Errorf("fallback %v, %v: %d runs, want 2 (one again with the new Probe's context)", fallback, mode, n)
			}
			renew.Store(100)
			runs.Store(0)
			r, err := conn.Query(ctx, localSQL, mode)
			var got string
			if err == nil {
				var n int64
				var label string
				for r.Next() {
					if err := r.Scan(&n, &label); err == nil {
						got += label + ";"
					}
				}
				r.Close()
				err = r.Err()
			}
			switch {
			case fallback && err != nil:
				t.Errorf("%v: a Probe that keeps changing: %v, want the warehouse's answer", mode, err)
			case !fallback && err == nil:
				t.Errorf("%v: a Probe that keeps changing: answered %q, want an error", mode, got)
			}
			if n := runs.Load(); n != staleContextRetries+1 {
				t.Errorf("fallback %v, %v: %d runs while the Probe keeps changing, want %d", fallback, mode, n, staleContextRetries+1)
			}
		}
	}
}

// swappingRouter routes localSQL as testRouter does, and when armed makes
// the prober hand out a new Probe after a delay: while the proxy's read of
// the context for the old one is on its way.
type swappingRouter struct {
	testRouter
	prober *switchProber
	probe  func() *Probe
	armed  *atomic.Bool
}

func (r swappingRouter) Route(ctx context.Context, st *Statement, sess *SessionInfo) RouteDecision {
	if st.SQL == localSQL && r.armed.Swap(false) {
		time.AfterFunc(100*time.Millisecond, func() { r.prober.p.Store(r.probe()) })
	}
	return r.testRouter.Route(ctx, st, sess)
}

// A read of the context that comes back for a Probe the Prober replaced
// while it was on its way is made again for the new one, before the
// answer: the answer neither fails nor falls back.
func TestContextReadAgainForAProbeMadeDuringTheRead(t *testing.T) {
	// The read takes 300 ms, and the Probe changes 100 ms into it.
	probe := func() *Probe { return &Probe{Select: "(SELECT 'ctx' FROM pg_catalog.pg_sleep(0.3))", Columns: 1} }
	prober := &switchProber{}
	prober.p.Store(probe())
	armed := &atomic.Bool{}
	p := startProxy(t, func(o *Options) {
		o.Router = swappingRouter{testRouter: testRouter{answer: probedAnswer{prober}}, prober: prober, probe: probe, armed: armed}
		o.Prober = prober
	})
	direct := connect(t, cluster(t).DSN("postgres"))
	conn := connect(t, p.dsn(trustUser, ""))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		want := rows(t, direct, mode, localSQL)
		prober.p.Store(probe()) // the session's context is stale
		armed.Store(true)
		if got := rows(t, conn, mode, localSQL); got != want {
			t.Errorf("%v:\n%s\nwant\n%s", mode, got, want)
		}
	}
}
