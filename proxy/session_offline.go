package proxy

import (
	"context"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Answering without the warehouse: what a detached session that cannot get
// a connection now answers to messages that need one, and the transaction
// block it holds by itself (BEGIN, COMMIT and ROLLBACK answered by the
// proxy) until it has a connection again.

// offline answers a client message of kind that needs the warehouse, when
// the session has no connection and cannot get one now. It reports whether
// it did; err ends the session.
//
// Every relayed message asks, so the common case (connected, no loss to
// notice) is inlined where it is called.
func (s *session) offline(kind byte) (bool, error) {
	if s.lossSeen() && !s.isDetached() {
		return false, nil
	}
	return s.answerIfOffline(kind)
}

// answerIfOffline is offline past its common case.
func (s *session) answerIfOffline(kind byte) (bool, error) {
	e, err := s.upstreamFor(kind)
	if err != nil {
		return true, err
	}
	if e == nil {
		return false, nil
	}
	return true, s.answerOffline(kind, e)
}

// answerOffline answers a client message of kind that cannot go to the
// warehouse with e, as Postgres answers a message that fails: a statement
// gets the error and a Query its ReadyForQuery; in the extended protocol the
// rest of the batch is skipped until Sync, which gets ReadyForQuery.
func (s *session) answerOffline(kind byte, e *pgError) error {
	s.noticeLoss()
	switch kind {
	case 'Q', 'F':
		s.failVirtualBlock()
		s.statementDone(RouteError, "", "warehouse_unreachable", time.Since(s.clock.at()))
		return s.writeClient(appendReady(e.encode(nil), s))
	case 'S':
		s.batchFailed = false
		s.stateMu.Lock()
		s.inExtended = false
		s.stateMu.Unlock()
		return s.writeClient(appendReady(nil, s))
	case 'C':
		// Postgres closes what does not exist without complaint, and the
		// statement is gone with the connection anyway: pgx, for one,
		// deallocates before each statement the statements it gave up.
		return s.writeClient([]byte{'3', 0, 0, 0, 4})
	case 'H', 'd', 'c', 'f':
		return nil
	}
	if s.batchFailed {
		return nil
	}
	s.batchFailed = true
	s.failVirtualBlock()
	if kind == 'E' {
		s.statementDone(RouteError, "", "warehouse_unreachable", time.Since(s.clock.at()))
	}
	return s.writeClient(e.encode(nil))
}

// failVirtualBlock fails a transaction block the session holds without the
// warehouse, as an error in it would on the warehouse.
func (s *session) failVirtualBlock() {
	if byte(s.txStatus.Load()) == 'T' {
		s.txStatus.Store('E')
	}
}

// txKind is a transaction statement the proxy answers while the session
// has no warehouse connection.
type txKind uint8

const (
	txBegin txKind = iota + 1
	txCommit
	txRollback
)

// offlineCommand decides, for a detached session, BEGIN, COMMIT and
// ROLLBACK, which the proxy answers itself: so that a client that wraps its
// statements in transactions (pgjdbc without autocommit) still gets rollup
// answers, and can end a block the loss failed. The second result is false
// for every other statement, and while the session has a connection.
func (s *session) offlineCommand(st *Statement) (RouteDecision, bool) {
	if !s.isDetached() {
		return RouteDecision{}, false
	}
	switch st.text().first {
	case "begin", "start", "commit", "end", "rollback", "abort":
	default:
		return RouteDecision{}, false
	}
	if st.text().multiple {
		return RouteDecision{}, false
	}
	tree, err := st.Parse()
	if err != nil || len(tree.Stmts) != 1 {
		return RouteDecision{}, false
	}
	ts := tree.Stmts[0].GetStmt().GetTransactionStmt()
	if ts == nil || ts.GetChain() {
		return RouteDecision{}, false
	}
	var kind txKind
	switch ts.GetKind() {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		kind = txBegin
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		kind = txCommit
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		kind = txRollback
	default:
		return RouteDecision{}, false
	}
	return RouteDecision{Route: RouteAdmin, Reason: "warehouse_unreachable", Answer: &offlineTxAnswer{sess: s, kind: kind, sql: st.SQL}, Fallback: true}, true
}

// offlineTxAnswer is BEGIN, COMMIT or ROLLBACK answered without the warehouse.
type offlineTxAnswer struct {
	sess *session
	kind txKind
	sql  string
}

func (a *offlineTxAnswer) Columns() []Column    { return nil }
func (a *offlineTxAnswer) ParamTypes() []uint32 { return nil }

// errAttached relays a transaction statement prepared while the session
// had no connection, now that it has one.
type errAttached struct{}

func (errAttached) Error() string          { return "the session has a warehouse connection again" }
func (errAttached) FallbackReason() string { return "warehouse_back" }

// Run moves the block the session holds without the warehouse: BEGIN opens
// it (replayed on the next connection), COMMIT and ROLLBACK end it; COMMIT
// of a failed block is a ROLLBACK, as in Postgres.
func (a *offlineTxAnswer) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	s := a.sess
	if !s.isDetached() {
		return nil, errAttached{}
	}
	status := byte(s.txStatus.Load())
	var tag string
	switch a.kind {
	case txBegin:
		tag = "BEGIN"
		if status == 'I' {
			s.txStatus.Store('T')
			s.beginSQL = a.sql
			// now() in the block is its start, as on the warehouse.
			s.stateMu.Lock()
			s.tx.start = s.clock.at()
			s.stateMu.Unlock()
		}
	case txCommit:
		tag = "COMMIT"
		if status == 'E' {
			tag = "ROLLBACK"
		}
		s.endVirtualBlock(status)
	case txRollback:
		tag = "ROLLBACK"
		s.endVirtualBlock(status)
	}
	return &Result{Rows: SliceRows(nil), Tag: tag}, nil
}

// endVirtualBlock ends the block a detached session holds.
func (s *session) endVirtualBlock(status byte) {
	s.beginSQL = ""
	s.txStatus.Store('I')
	s.stateMu.Lock()
	s.tx.start = time.Time{}
	if status != 'I' {
		s.blockEndedLocked()
	}
	s.stateMu.Unlock()
}

// isTxExit reports whether a is a statement that ends a transaction block,
// which Postgres runs even in a failed one.
func isTxExit(a Answer) bool {
	t, ok := a.(*offlineTxAnswer)
	return ok && t.kind != txBegin
}
