package proxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// localSQL is answered by the test router in the proxy; the warehouse
// computes the same result, so every answer can be compared with it.
const localSQL = "select n::int8 as n, 'row ' || n as label from generate_series(1, 5) n"

// seriesAnswer computes localSQL in Go.
type seriesAnswer struct {
	fail error
	runs *atomic.Int32
}

func (a seriesAnswer) Columns() []Column {
	return []Column{
		{Name: "n", TypeOID: pgtype.Int8OID, TypeSize: 8, Typmod: -1},
		{Name: "label", TypeOID: pgtype.TextOID, TypeSize: -1, Typmod: -1},
	}
}

func (a seriesAnswer) ParamTypes() []uint32 { return nil }

func (a seriesAnswer) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	if a.runs != nil {
		a.runs.Add(1)
	}
	if a.fail != nil {
		return nil, a.fail
	}
	var rows [][]any
	for n := int64(1); n <= 5; n++ {
		rows = append(rows, []any{n, fmt.Sprintf("row %d", n)})
	}
	return &Result{Rows: SliceRows(rows), Tag: "SELECT"}, nil
}

// testRouter answers localSQL with answer and relays everything else.
type testRouter struct {
	answer   Answer
	fallback bool
}

func (r testRouter) Route(_ context.Context, st *Statement, _ *SessionInfo) RouteDecision {
	if st.SQL != localSQL {
		return RouteDecision{Route: RoutePassthrough}
	}
	return RouteDecision{Route: RouteRollup, Answer: r.answer, Fallback: r.fallback}
}

// rows runs sql with pgx in mode and returns its field names, type OIDs and
// rows as text, for comparing a proxy's answer with the warehouse's.
func rows(t *testing.T, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) string {
	t.Helper()
	r, err := conn.Query(context.Background(), sql, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	for _, f := range r.FieldDescriptions() {
		fmt.Fprintf(&b, "%s:%d:%d:%d:%d ", f.Name, f.DataTypeOID, f.DataTypeSize, f.TypeModifier, f.TableOID)
	}
	for r.Next() {
		vals, err := r.Values()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n%v", vals)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\n%s", r.CommandTag())
	return b.String()
}

var execModes = map[string]pgx.QueryExecMode{
	"simple":          pgx.QueryExecModeSimpleProtocol,
	"cache statement": pgx.QueryExecModeCacheStatement,
	"cache describe":  pgx.QueryExecModeCacheDescribe,
	"describe exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
}

func TestLocalAnswerEqualsWarehouse(t *testing.T) {
	runs := &atomic.Int32{}
	p := startProxy(t, func(o *Options) { o.Router = testRouter{answer: seriesAnswer{runs: runs}} })
	direct := connect(t, cluster(t).DSN("postgres"))
	proxied := connect(t, p.dsn(trustUser, ""))
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			before := runs.Load()
			want := rows(t, direct, mode, localSQL)
			got := rows(t, proxied, mode, localSQL)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if runs.Load() == before {
				t.Fatal("the statement was not answered by the proxy")
			}
			// The session goes on normally with the warehouse.
			if got, want := rows(t, proxied, mode, "select 42 as x"), rows(t, direct, mode, "select 42 as x"); got != want {
				t.Fatalf("after a local answer: %s, want %s", got, want)
			}
		})
	}
	if got := p.queries(t, RouteRollup); got != float64(len(execModes)) {
		t.Fatalf("rollup route counted %v times, want %d", got, len(execModes))
	}
}

func TestLocalAnswerFallsBack(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = testRouter{answer: seriesAnswer{fail: errors.New("worker gone")}, fallback: true}
	})
	direct := connect(t, cluster(t).DSN("postgres"))
	proxied := connect(t, p.dsn(trustUser, ""))
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			if got, want := rows(t, proxied, mode, localSQL), rows(t, direct, mode, localSQL); got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
		})
	}
	if got := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed")); got < float64(len(execModes)) {
		t.Fatalf("fallbacks counted %v, want at least %d", got, len(execModes))
	}
	if got := p.queries(t, RouteRollup); got != 0 {
		t.Fatalf("a fallback was counted as a rollup hit %v times", got)
	}
}

func TestLocalAnswerErrorWithoutFallback(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = testRouter{answer: seriesAnswer{fail: Error(sqlstate.InternalError, "no rollup can answer this")}}
	})
	proxied := connect(t, p.dsn(trustUser, ""))
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			_, err := proxied.Exec(context.Background(), localSQL, mode)
			if err == nil || !strings.Contains(err.Error(), "no rollup can answer this") {
				t.Fatalf("err = %v", err)
			}
			if got := rows(t, proxied, mode, "select 1 as one"); !strings.Contains(got, "[1]") {
				t.Fatalf("session broken after the error: %s", got)
			}
		})
	}
}

// conversation sends raw extended-protocol messages and returns what comes
// back up to ReadyForQuery, as text, for comparing the proxy with Postgres
// message by message.
func conversation(t *testing.T, dsn string, msgs ...pgproto3.FrontendMessage) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := connect(t, dsn)
	pc := conn.PgConn()
	if err := pc.SyncConn(ctx); err != nil {
		t.Fatal(err)
	}
	return exchange(t, ctx, pc, msgs, 0)
}

func TestLocalExtendedConversations(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Router = testRouter{answer: seriesAnswer{}} })
	tests := []struct {
		name string
		msgs []pgproto3.FrontendMessage
	}{
		{"row limit suspends the portal", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s1", Query: localSQL},
			&pgproto3.Bind{DestinationPortal: "c1", PreparedStatement: "s1"},
			&pgproto3.Describe{ObjectType: 'P', Name: "c1"},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Sync{},
		}},
		{"binary results and describe statement", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s2", Query: localSQL},
			&pgproto3.Describe{ObjectType: 'S', Name: "s2"},
			&pgproto3.Bind{PreparedStatement: "s2", ResultFormatCodes: []int16{1}},
			&pgproto3.Execute{},
			&pgproto3.Close{ObjectType: 'S', Name: "s2"},
			&pgproto3.Sync{},
		}},
		{"mixed with the warehouse in one pipeline", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "select 1 as a"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Parse{Name: "s3", Query: localSQL},
			&pgproto3.Bind{PreparedStatement: "s3"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Parse{Query: "select 2 as b"},
			&pgproto3.Bind{},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		{"an error skips the rest of the batch", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "select 1/0"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Parse{Name: "s4", Query: localSQL},
			&pgproto3.Bind{PreparedStatement: "s4"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Parse{Name: "s4", Query: localSQL},
			&pgproto3.Bind{PreparedStatement: "s4"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		{"a Bind with more parameters than the statement has", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s6", Query: localSQL},
			&pgproto3.Bind{PreparedStatement: "s6", Parameters: [][]byte{[]byte("1"), []byte("2")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		{"redefining a named statement", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s5", Query: localSQL},
			&pgproto3.Parse{Name: "s5", Query: localSQL},
			&pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "s5"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := conversation(t, cluster(t).DSN("postgres"), tt.msgs...)
			got := conversation(t, p.dsn(trustUser, ""), tt.msgs...)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
		})
	}
}

func TestDecodeBind(t *testing.T) {
	bind := &pgproto3.Bind{
		DestinationPortal: "p", PreparedStatement: "s",
		ParameterFormatCodes: []int16{1, 0},
		Parameters:           [][]byte{{0, 0, 0, 7}, nil},
		ResultFormatCodes:    []int16{1},
	}
	raw, err := bind.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	params, formats, err := decodeBind(raw[5:], []uint32{pgtype.Int4OID, pgtype.TextOID})
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{{TypeOID: pgtype.Int4OID, Format: 1, Value: []byte{0, 0, 0, 7}}, {TypeOID: pgtype.TextOID}}
	if !reflect.DeepEqual(params, want) || !reflect.DeepEqual(formats, []int16{1}) {
		t.Fatalf("got %+v %v", params, formats)
	}
	if _, _, err := decodeBind(raw[5:len(raw)-1], []uint32{pgtype.Int4OID, pgtype.TextOID}); err == nil {
		t.Fatal("truncated Bind accepted")
	}
}

// floatAnswer computes select 0.1::float8 + 0.2 as x, whose text depends on
// extra_float_digits.
type floatAnswer struct{}

const floatSQL = "select 0.1::float8 + 0.2 as x"

func (floatAnswer) Columns() []Column {
	return []Column{{Name: "x", TypeOID: pgtype.Float8OID, TypeSize: 8, Typmod: -1}}
}
func (floatAnswer) ParamTypes() []uint32 { return nil }
func (floatAnswer) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	a, b := 0.1, 0.2 // variables: constant arithmetic in Go is exact
	return &Result{Rows: SliceRows([][]any{{a + b}}), Tag: "SELECT"}, nil
}

// Floats print per extra_float_digits, which Postgres never reports: the
// proxy takes it from the startup packet or asks the warehouse once, and
// leaves floats to the warehouse after a statement may have changed it.
func TestFloatTextNeedsKnownDigits(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Router = answering(floatSQL, floatAnswer{}) })
	ctx := context.Background()
	text := func(conn *pgx.Conn) string {
		t.Helper()
		res := conn.PgConn().ExecParams(ctx, floatSQL, nil, nil, nil, []int16{0}).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return string(res.Rows[0][0])
	}
	tests := []struct {
		name      string
		startup   string // extra_float_digits in the startup packet; "" for none
		set       string // a SET before the query
		wantLocal bool
	}{
		{"given at startup", "3", "", true},
		{"given as 0 at startup", "0", "", true},
		{"not given", "", "", true},
		{"a role default", "", "ALTER ROLE " + trustUser + " SET extra_float_digits = -2", true},
		{"changed by SET", "3", "SET extra_float_digits = 0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.set, "ALTER ROLE") {
				admin := connect(t, cluster(t).DSN("postgres"))
				if _, err := admin.Exec(ctx, tt.set); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { admin.Exec(ctx, "ALTER ROLE "+trustUser+" RESET extra_float_digits") })
				tt.set = ""
			}
			proxied, direct := connectBothWithDigits(t, p, tt.startup)
			if tt.set != "" {
				for _, c := range []*pgx.Conn{proxied, direct} {
					if _, err := c.Exec(ctx, tt.set); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed"))
			got, want := text(proxied), text(direct)
			if got != want {
				t.Fatalf("through the proxy %q, warehouse %q", got, want)
			}
			fellBack := testutil.ToFloat64(p.srv.metrics.Fallbacks.WithLabelValues("answer_failed")) > before
			if fellBack == tt.wantLocal {
				t.Fatalf("answered locally: %v, want %v", !fellBack, tt.wantLocal)
			}
		})
	}
}

// countingRows yields n rows lazily and fails at row failAt (0: never).
type countingRows struct {
	i, n, failAt int
	err          error
}

func (r *countingRows) Next() bool {
	r.i++
	if r.failAt > 0 && r.i == r.failAt {
		r.err = errors.New("worker lost")
		return false
	}
	return r.i <= r.n
}
func (r *countingRows) Values() []any { return []any{int64(r.i), "x"} }
func (r *countingRows) Err() error    { return r.err }
func (r *countingRows) Close() error  { return nil }

type bigAnswer struct{ n, failAt int }

func (bigAnswer) Columns() []Column {
	return []Column{{Name: "n", TypeOID: pgtype.Int8OID, TypeSize: 8, Typmod: -1}, {Name: "label", TypeOID: pgtype.TextOID, TypeSize: -1, Typmod: -1}}
}
func (bigAnswer) ParamTypes() []uint32 { return nil }
func (a bigAnswer) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	return &Result{Rows: &countingRows{n: a.n, failAt: a.failAt}, Tag: "SELECT"}, nil
}

// bigSQL is what the warehouse computes for bigAnswer{n: 200000}.
const bigSQL = "select n::int8 as n, 'x' as label from generate_series(1, 200000) n"

// A large answer streams in chunks; a failure before the first chunk falls
// back to the warehouse, a failure after it is the client's error.
func TestLocalAnswerStreams(t *testing.T) {
	for _, tt := range []struct {
		name      string
		answer    bigAnswer
		wantError bool
	}{
		{"whole", bigAnswer{n: 200000}, false},
		{"fails before the first chunk", bigAnswer{n: 200000, failAt: 10}, false},
		{"fails after a chunk reached the client", bigAnswer{n: 200000, failAt: 150000}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, func(o *Options) {
				o.Router = answering(bigSQL, tt.answer)
			})
			conn := connect(t, p.dsn(trustUser, ""))
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				rows, err := conn.Query(context.Background(), bigSQL, mode)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				err = rows.Err()
				if tt.wantError {
					if err == nil || !strings.Contains(err.Error(), "worker lost") {
						t.Fatalf("%v: err = %v after %d rows", mode, err, n)
					}
					continue
				}
				if err != nil || n != 200000 {
					t.Fatalf("%v: %d rows, %v", mode, n, err)
				}
			}
		})
	}
}

type routerFunc func(*Statement) RouteDecision

func (f routerFunc) Route(_ context.Context, st *Statement, _ *SessionInfo) RouteDecision {
	return f(st)
}

// answering is a router that answers sql with a, falling back to the
// warehouse if a fails, and passes everything else through.
func answering(sql string, a Answer) Router {
	return routerFunc(func(st *Statement) RouteDecision {
		if st.SQL != sql {
			return RouteDecision{Route: RoutePassthrough}
		}
		return RouteDecision{Route: RouteRollup, Answer: a, Fallback: true}
	})
}

// slowAnswer's rows wait for their context: only a cancel ends them.
type slowAnswer struct{}

func (slowAnswer) Columns() []Column {
	return []Column{{Name: "n", TypeOID: pgtype.Int8OID, TypeSize: 8, Typmod: -1}}
}
func (slowAnswer) ParamTypes() []uint32 { return nil }
func (slowAnswer) Run(ctx context.Context, _ *SessionInfo, _ []Param) (*Result, error) {
	return &Result{Rows: &ctxRows{ctx: ctx}, Tag: "SELECT"}, nil
}

type ctxRows struct {
	ctx context.Context
	err error
}

func (r *ctxRows) Next() bool {
	select {
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
	case <-time.After(20 * time.Second):
	}
	return false
}
func (r *ctxRows) Values() []any { return nil }
func (r *ctxRows) Err() error    { return r.err }
func (r *ctxRows) Close() error  { return nil }

// A CancelRequest stops an answer the proxy is computing, with Postgres's
// 57014, and the statement does not fall back; the statement after it runs
// whole.
func TestCancelReachesLocalAnswer(t *testing.T) {
	const q = "select 1::int8 as n from pg_sleep(30)"
	p := startProxy(t, func(o *Options) {
		o.Router = answering(q, slowAnswer{})
	})
	conn := connect(t, p.dsn(trustUser, ""))
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		go func() {
			time.Sleep(300 * time.Millisecond)
			conn.PgConn().CancelRequest(ctx)
		}()
		start := time.Now()
		_, err := conn.Exec(ctx, q, mode)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.QueryCanceled {
			t.Fatalf("%v: err = %v, want 57014", mode, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%v: cancel took %v (fell back to the warehouse?)", mode, d)
		}
		// The cancel stopped the proxy's answer: it must not reach the
		// warehouse, where it would stop the next statement instead.
		if _, err := conn.Exec(ctx, "select pg_sleep(0.3)", mode); err != nil {
			t.Fatalf("%v: the statement after the cancelled answer: %v", mode, err)
		}
	}
}

// connectBothWithDigits connects through the proxy and directly, with
// extra_float_digits in the startup packet unless digits is "".
func connectBothWithDigits(t *testing.T, p *testProxy, digits string) (proxied, direct *pgx.Conn) {
	dsn := p.dsn(trustUser, "")
	directDSN := cluster(t).DSNFor(trustUser, "", "postgres")
	if digits != "" {
		dsn += "&extra_float_digits=" + digits
		directDSN += "&extra_float_digits=" + digits
	}
	return connect(t, dsn), connect(t, directDSN)
}
