package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// txRouter answers localSQL as the real router does: not in a failed
// transaction, nor in one that may have written; its answer checks again
// when it runs, and falls back.
type txRouter struct {
	runs *atomic.Int32
	mu   sync.Mutex
	nows []time.Time // SessionInfo.Now of each answer
}

func (r *txRouter) Route(_ context.Context, st *Statement, sess *SessionInfo) RouteDecision {
	if st.SQL != localSQL {
		return RouteDecision{Route: RoutePassthrough}
	}
	if sess.TxStatus == 'E' || sess.TxWrote {
		return RouteDecision{Route: RoutePassthrough, Reason: "transaction_wrote"}
	}
	return RouteDecision{Route: RouteRollup, Answer: txAnswer{r}, Fallback: true}
}

type txAnswer struct{ r *txRouter }

func (a txAnswer) Columns() []Column    { return seriesAnswer{}.Columns() }
func (a txAnswer) ParamTypes() []uint32 { return nil }
func (a txAnswer) Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error) {
	if sess.TxStatus == 'E' || sess.TxWrote {
		return nil, errors.New("the transaction wrote")
	}
	a.r.mu.Lock()
	a.r.nows = append(a.r.nows, sess.Now)
	a.r.mu.Unlock()
	return seriesAnswer{runs: a.r.runs}.Run(ctx, sess, params)
}

// Inside a transaction block a rollup answers until the block may have
// written; after the block it answers again.
func TestTransactionBlocks(t *testing.T) {
	q, qx := step{sql: localSQL}, step{query: localSQL}
	tests := []struct {
		name  string
		steps []step
		local int32 // answers the proxy gives itself
	}{
		{name: "answered in a block, not after an INSERT, again after COMMIT", local: 2, steps: []step{
			{sql: "CREATE TEMP TABLE w (a int)"},
			{sql: "BEGIN"}, q, {sql: "INSERT INTO w VALUES (1)"}, q, qx, {sql: "COMMIT"}, q,
		}},
		{name: "reads and session statements keep it answered", local: 4, steps: []step{
			{sql: "BEGIN ISOLATION LEVEL REPEATABLE READ"}, q, {sql: "SELECT count(*) FROM pg_class WHERE relname LIKE 'pg%'"},
			{sql: "SET LOCAL work_mem = '8MB'"}, {sql: "SAVEPOINT a"}, qx, {sql: "RELEASE a"}, {query: "SELECT now()::date"},
			{sql: "DECLARE c CURSOR FOR SELECT 1"}, {sql: "FETCH 1 FROM c"}, {sql: "CLOSE c"}, {sql: "SHOW work_mem"}, q, qx,
			{sql: "COMMIT"},
		}},
		{name: "a function that may write", local: 1, steps: []step{
			{sql: "CREATE TEMP SEQUENCE sq"}, {sql: "BEGIN"}, q, {sql: "SELECT nextval('sq')"}, q, {sql: "ROLLBACK"},
		}},
		{name: "a locking read", steps: []step{
			{sql: "CREATE TEMP TABLE w (a int)"}, {sql: "BEGIN"}, {sql: "SELECT * FROM w FOR UPDATE"}, q, {sql: "ROLLBACK"},
		}},
		{name: "a write rolled back to a savepoint still counts", local: 1, steps: []step{
			{sql: "CREATE TEMP TABLE w (a int)"}, {sql: "BEGIN"}, {sql: "SAVEPOINT a"}, {sql: "INSERT INTO w VALUES (1)"},
			{sql: "ROLLBACK TO SAVEPOINT a"}, q, {sql: "ROLLBACK"}, q,
		}},
		{name: "a failed block passes through", steps: []step{{sql: "BEGIN"}, {sql: "SELECT 1/0"}, q, qx, {sql: "ROLLBACK"}}},
		{name: "BEGIN and a write in one Query", local: 1, steps: []step{
			{sql: "CREATE TEMP TABLE w (a int)"}, {sql: "BEGIN; INSERT INTO w VALUES (1)"}, q, {sql: "COMMIT; BEGIN"}, q, {sql: "COMMIT"},
		}},
		{
			// pgjdbc with autocommit off: BEGIN in the batch of the query.
			name: "pgjdbc without autocommit", local: 3, steps: []step{
				{sql: "CREATE TEMP TABLE w (a int)"}, q,
				{batch: batch(extended("BEGIN"), extended(localSQL))},
				{batch: batch(extended(localSQL))},
				{batch: batch(extended("INSERT INTO w VALUES (1)"), extended(localSQL))},
				{batch: batch(extended(localSQL))},
				{batch: batch(extended("COMMIT"))},
			},
		},
		{
			// An unsynced batch is one implicit transaction: the query
			// would see the INSERT before it.
			name: "a write earlier in an implicit transaction", local: 1, steps: []step{
				{sql: "CREATE TEMP TABLE w (a int)"},
				{batch: batch(extended("INSERT INTO w VALUES (1)"), extended(localSQL))},
				qx,
			},
		},
		{
			name: "a prepared write", local: 1, steps: []step{
				{sql: "CREATE TEMP TABLE w (a int)"}, {prepare: "INSERT INTO w VALUES (1)", name: "ins"},
				{sql: "BEGIN"}, q, {execute: "ins"}, q, {sql: "COMMIT"},
			},
		},
	}
	r := &txRouter{runs: &atomic.Int32{}}
	p := startProxy(t, func(o *Options) { o.Router = r })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := runScript(t, connect(t, cluster(t).DSN("postgres")).PgConn(), tt.steps)
			before := r.runs.Load()
			got := runScript(t, connect(t, p.dsn(trustUser, "")).PgConn(), tt.steps)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
			if n := r.runs.Load() - before; n != tt.local {
				t.Fatalf("the proxy answered %d times, want %d", n, tt.local)
			}
		})
	}
}

// In a transaction block now() is the block's start.
func TestTransactionStartIsNow(t *testing.T) {
	r := &txRouter{runs: &atomic.Int32{}}
	p := startProxy(t, func(o *Options) { o.Router = r })
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	begin := time.Now()
	runScript(t, conn, []step{{sql: "BEGIN"}, {sql: localSQL}, {sleep: 200 * time.Millisecond}, {query: localSQL}, {sql: "COMMIT"}, {sql: localSQL}})
	end := time.Now()
	if len(r.nows) != 3 {
		t.Fatalf("%d answers", len(r.nows))
	}
	if !r.nows[0].Equal(r.nows[1]) || r.nows[0].Before(begin) || r.nows[0].After(begin.Add(150*time.Millisecond)) {
		t.Fatalf("now() in the block: %v and %v, block began at %v", r.nows[0], r.nows[1], begin)
	}
	if r.nows[2].Before(r.nows[1].Add(200*time.Millisecond)) || r.nows[2].After(end) {
		t.Fatalf("now() after the block: %v", r.nows[2])
	}
}

// A statement the proxy answers with an error fails the transaction on the
// warehouse too, as it would in Postgres: a block goes to the failed
// state, and an unsynced batch rolls back what the warehouse ran of it.
// (In that batch the INSERT may have changed the settings, which cannot be
// read back before the answer: that is its error here, without a fallback.
// After a raw batch, pgconn's own TxStatus lags behind.)
func TestLocalErrorFailsTheTransaction(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Router = testRouter{answer: seriesAnswer{fail: Error(sqlstate.InternalError, "no rollup can answer this")}}
	})
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	got := runScript(t, conn, []step{
		{sql: "CREATE TEMP TABLE w (a int)"},
		{sql: "BEGIN"}, {sql: "INSERT INTO w VALUES (1)"}, {sql: localSQL}, {sql: "SELECT 1"}, {sql: "ROLLBACK"},
		{sql: "BEGIN"}, {query: localSQL}, {sql: "SELECT 1"}, {sql: "ROLLBACK"},
		{batch: batch(extended("INSERT INTO w VALUES (2)"), extended(localSQL), extended("INSERT INTO w VALUES (3)"))},
		{batch: batch(extended("BEGIN"), []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s1", Query: localSQL}, &pgproto3.Parse{Name: "s1", Query: localSQL},
		})},
		{sql: "ROLLBACK"},
		{query: "SELECT count(*) FROM w"},
		{sql: localSQL},
	})
	want := `CREATE TEMP TABLE w (a int): ok
  (I)
BEGIN: ok
  (T)
INSERT INTO w VALUES (1): ok
  (T)
` + localSQL + `: XX000 no rollup can answer this
  (E)
SELECT 1: 25P02 current transaction is aborted, commands ignored until end of transaction block
  (E)
ROLLBACK: ok
  (I)
BEGIN: ok
  (T)
` + localSQL + `: [] XX000 no rollup can answer this
  (E)
SELECT 1: 25P02 current transaction is aborted, commands ignored until end of transaction block
  (E)
ROLLBACK: ok
  (I)
batch: *pgproto3.ParseComplete *pgproto3.BindComplete C(INSERT 0 1) *pgproto3.ParseComplete *pgproto3.BindComplete E(XX000 ` + settingsUnknownError{}.Error() + `) Z(I) 
  (I)
batch: *pgproto3.ParseComplete *pgproto3.BindComplete C(BEGIN) *pgproto3.ParseComplete E(42P05 prepared statement "s1" already exists) Z(E) 
  (I)
ROLLBACK: ok
  (I)
SELECT count(*) FROM w: [["0"]] ok
  (I)
` + localSQL + `: XX000 no rollup can answer this
  (I)
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
