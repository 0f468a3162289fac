package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// A session outlives its warehouse connection (outage.go). When the
// connection ends on the warehouse's side, the upstream loop answers what
// the client was waiting for with an error and leaves the session detached;
// the client loop carries on, answering from rollups what it can. The next
// statement that needs the warehouse, once the monitor says it is up, opens
// a new connection for the session, with the startup parameters the client
// sent and its own credentials (the password it gave, or the ClientKey of
// the SCRAM exchange the proxy did with it), and the session relays again.
//
// What a new connection carries over: the startup parameters, and the
// statements the client prepared by name (prepared again, their answers
// hidden). What it does not: anything else the session did on the lost
// connection, such as SET, temporary tables, cursors, LISTEN, advisory
// locks and an open transaction. So that a client never runs a statement in
// a state it did not ask for, the loss is reported once, as an error, when
// the session may have held such state: at once to a statement that was
// running, otherwise to the next statement that needs the warehouse, which
// then does not run. A transaction block open at the loss is failed: its
// statements get Postgres's "current transaction is aborted" until the
// client ends it, whether or not the warehouse is back by then.

// upstreamWriter buffers what the client loop sends to the warehouse. A
// write that fails closes the connection and discards what follows: the
// upstream loop then finds it closed and detaches the session, and so the
// loss is handled in one place, the reading side. A session that started
// without a connection has none (nil), which discards everything too.
type upstreamWriter struct {
	w    *connWriter
	conn net.Conn
	dead bool
}

func (u *upstreamWriter) Write(b []byte) (int, error) {
	if u != nil && !u.dead {
		if _, err := u.w.Write(b); err != nil {
			u.died()
		}
	}
	return len(b), nil
}

func (u *upstreamWriter) Flush() error {
	if u != nil && !u.dead {
		if err := u.w.Flush(); err != nil {
			u.died()
		}
	}
	return nil
}

func (u *upstreamWriter) died() {
	u.dead = true
	u.conn.Close()
}

// errWarehouseUnreachable: the warehouse could not be reached, or said it
// accepts no connections now, before it authenticated the client;
// errWarehouseGoneAuthed: it went away after it authenticated the client,
// before the session started.
var (
	errWarehouseUnreachable = errors.New("the warehouse is unreachable")
	errWarehouseGoneAuthed  = errors.New("the warehouse went away as the session started")
)

// The errors a statement gets when it needs the warehouse and the session
// has none. Neither names the warehouse's address: an unauthenticated
// client learns nothing of it from the proxy.
func errUnreachable() *pgError {
	e := newError(severityError, sqlstate.CannotConnectNow, "pgrollup: the warehouse is unreachable; until it is back, only statements answered from rollups run")
	e.Hint = "The session stays open: this statement can be run again once the warehouse is back."
	return e
}

const lossDetail = "What the session had set up on the warehouse (settings changed with SET, temporary tables, cursors, locks, an open transaction) is gone; statements it prepared are prepared again."

// errLostRunning is what statements running when the connection was lost get.
func errLostRunning() *pgError {
	e := newError(severityError, sqlstate.ConnectionFailure, "pgrollup: lost the connection to the warehouse; the statement may or may not have completed")
	e.Detail = lossDetail
	return e
}

// errLostBefore is the loss reported to the next statement, which did not run.
func errLostBefore() *pgError {
	e := newError(severityError, sqlstate.ConnectionFailure, "pgrollup: lost the connection to the warehouse; this statement did not run")
	e.Detail = lossDetail
	return e
}

// errCannotReattach ends a session the warehouse no longer lets in with the
// credentials it started with, or whose credentials the proxy cannot replay.
func errCannotReattach() *pgError {
	return newError(severityFatal, sqlstate.InvalidAuthorizationSpecification,
		"pgrollup: cannot authenticate this session to the warehouse again; connect again")
}

// isDetached reports whether the session has no warehouse connection.
func (s *session) isDetached() bool { return s.detached.Load() }

// closeUpstream closes the warehouse connection, if any, resuming its loop
// if it was parked so that it sees the end.
func (s *session) closeUpstream() {
	s.upMu.Lock()
	parked := false
	if s.upstream != nil {
		parked = s.srv.idle.unpark(s.upR.idle)
		s.upstream.Close()
	}
	s.upMu.Unlock()
	if parked {
		s.stateMu.Lock()
		done := s.upDone
		s.stateMu.Unlock()
		go s.runUpstream(done)
	}
}

// survives reports whether the session outlives its warehouse connection
// ending with a FATAL error (body): when the warehouse as a whole shuts
// down, restarts or refuses connections. "Terminating connection due to
// administrator command" means a shutdown, or pg_terminate_backend of this
// backend alone: only a warehouse that no longer accepts connections tells
// the first from the second.
func (s *session) survives(body []byte) bool {
	switch errorCode(body) {
	case sqlstate.CrashShutdown, sqlstate.CannotConnectNow:
		return true
	case sqlstate.AdminShutdown:
		ctx, cancel := context.WithTimeout(s.ctx, checkTimeout)
		defer cancel()
		return !s.srv.monitor.confirm(ctx)
	}
	return false
}

// errorCode returns the SQLSTATE of an ErrorResponse or NoticeResponse body.
func errorCode(body []byte) string {
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		value, rest, ok := cutCString(body[1:])
		if !ok {
			return ""
		}
		if field == 'C' {
			return value
		}
		body = rest
	}
	return ""
}

// shutdownNotice reports whether a NoticeResponse announces that the
// backend is going away with the warehouse (an immediate shutdown or a
// crash of another backend), which the session survives: the client need
// not hear of it.
func shutdownNotice(body []byte) bool {
	switch errorCode(body) {
	case sqlstate.AdminShutdown, sqlstate.CrashShutdown:
		return true
	}
	return false
}

// loseUpstream detaches the session from a warehouse connection that ended
// (cause) on the warehouse's side, answering what the client was waiting
// for. It reports false when the session is ending anyway.
func (s *session) loseUpstream(cause error) bool {
	s.closeUpstream()
	s.upKey.Store(nil)
	s.stateMu.Lock()
	if s.closing {
		s.stateMu.Unlock()
		return false
	}
	pending := s.expect.drain()
	for _, e := range pending {
		if e.settings != nil {
			e.settings.failed = true
		}
		s.poppedLocked(e)
	}
	c := &s.clock
	c.popped = c.pushed
	unanswered := len(c.inflight)
	c.inflight = nil
	prev := byte(s.txStatus.Load())
	status := byte('I')
	if prev != 'I' {
		// The warehouse rolled the block back; for the client it has
		// failed, and stays open until it ends it.
		status = 'E'
		s.blockEndedLocked()
	}
	s.tx = txState{}
	s.txStatus.Store(uint32(status))
	out, openBatch, reported := lossAnswers(pending, errLostRunning(), status)
	s.inExtended = openBatch
	s.lossOpenBatch = openBatch
	if !reported && (prev != 'I' || s.dirty.Load()) {
		s.lossReport = errLostBefore()
	}
	s.upGen++
	s.detached.Store(true)
	s.passing = true
	draining := s.draining
	s.stateMu.Unlock()

	for range unanswered {
		s.count(RouteError)
	}
	s.clientMu.Lock()
	_, err := s.clientW.Write(out)
	if err == nil {
		err = s.clientW.Flush()
	}
	s.clientMu.Unlock()
	s.passed()
	s.srv.monitor.suspect()
	// The monitor warns of an outage once; sessions only say so at debug level.
	s.logger().Debug("lost the session's warehouse connection; the session goes on without it", "cause", errText(cause), "unanswered", unanswered)
	if err != nil {
		s.closeConns()
		return true
	}
	if draining {
		s.stateMu.Lock()
		idle := s.idleLocked() && !s.closing
		if idle {
			s.closing = true
		}
		s.stateMu.Unlock()
		if idle {
			s.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
		}
	}
	return true
}

// lossAnswers answers the client messages still waiting for the warehouse
// when its connection was lost, as Postgres answers a batch that fails: one
// error, then nothing until Sync; each sync point gets ReadyForQuery with
// status. openBatch reports an extended batch failed before its Sync came;
// reported, that the client got the error.
func lossAnswers(pending []expectation, e *pgError, status byte) (out []byte, openBatch, reported bool) {
	for _, x := range pending {
		if x.swallow {
			continue // the proxy's own: the client expects no answer to it
		}
		switch x.kind {
		case 'Q', 'F':
			out = e.encode(out)
			out = appendMessage(out, 'Z', []byte{status})
			openBatch, reported = false, true
		case 'S':
			if !openBatch {
				// The implicit transaction it commits may not have.
				out = e.encode(out)
			}
			out = appendMessage(out, 'Z', []byte{status})
			openBatch, reported = false, true
		default:
			if !openBatch {
				out = e.encode(out)
				openBatch, reported = true, true
			}
		}
	}
	return out, openBatch, reported
}

// noticeLoss brings the client loop's own state up to a lost connection:
// portals and the unnamed statement went with it, statements the proxy
// prepared on it must be prepared again, and a batch the loss failed is
// skipped until Sync.
func (s *session) noticeLoss() {
	s.stateMu.Lock()
	gen, open := s.upGen, s.lossOpenBatch
	if gen != s.seenGen {
		s.lossOpenBatch = false
		s.resetsDone = nil
	}
	s.stateMu.Unlock()
	if gen == s.seenGen {
		return
	}
	s.seenGen = gen
	s.upPortals.reset()
	s.upStmts.forget("")
	for _, ls := range s.localStmts {
		ls.upstream = false
	}
	s.copyPending = nil
	s.batchMayCopy = false
	s.resetsPending = false
	s.batchUpstream = false
	if open {
		s.batchFailed = true
	}
}

// offline answers a client message of kind that needs the warehouse, when
// the session has no connection and cannot get one now. It reports whether
// it did; err ends the session.
func (s *session) offline(kind byte) (bool, error) {
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
		s.statementDone(RouteError, "", "warehouse_unreachable", time.Since(s.clock.received))
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
		s.statementDone(RouteError, "", "warehouse_unreachable", time.Since(s.clock.received))
	}
	return s.writeClient(e.encode(nil))
}

// takeLossReport returns the loss to report to a message that was about to
// be relayed when the connection went: the report still due, or one saying
// that the message did not go.
func (s *session) takeLossReport() *pgError {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	e := s.lossReport
	s.lossReport = nil
	if e == nil {
		e = errLostBefore()
	}
	return e
}

// failVirtualBlock fails a transaction block the session holds without the
// warehouse, as an error in it would on the warehouse.
func (s *session) failVirtualBlock() {
	if byte(s.txStatus.Load()) == 'T' {
		s.txStatus.Store('E')
	}
}

// upstreamFor makes sure the session has a warehouse connection for a
// client message of kind about to be relayed. When it has none, and cannot
// get one now, it returns the error the message gets instead: the loss, if
// it is still to be reported; the failed block's; or that the warehouse is
// unreachable. An error ends the session.
func (s *session) upstreamFor(kind byte) (*pgError, error) {
	s.noticeLoss()
	if !s.isDetached() {
		return nil, nil
	}
	if s.srv.monitor.isUp() {
		if err := s.attach(); err != nil && !errors.Is(err, errWarehouseUnreachable) {
			return nil, err
		}
	}
	switch kind {
	case 'S', 'H', 'C', 'd', 'c', 'f':
		// Not a statement: the loss is reported to the next one.
		if s.isDetached() {
			return errUnreachable(), nil
		}
		return nil, nil
	}
	s.stateMu.Lock()
	report := s.lossReport
	s.lossReport = nil
	s.stateMu.Unlock()
	switch {
	case report != nil:
		return report, nil
	case !s.isDetached():
		return nil, nil
	case s.txFailed():
		return errTxAborted, nil
	}
	return errUnreachable(), nil
}

// attachQuietly opens a connection for a detached session when that
// needs no word to the client: the warehouse is up and no loss is still to
// be reported. It reports whether the session has a connection.
func (s *session) attachQuietly() (bool, error) {
	s.noticeLoss()
	if !s.isDetached() {
		return true, nil
	}
	s.stateMu.Lock()
	report := s.lossReport != nil
	s.stateMu.Unlock()
	if report || !s.srv.monitor.isUp() {
		return false, nil
	}
	if err := s.attach(); err != nil {
		if errors.Is(err, errWarehouseUnreachable) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// attach opens a new warehouse connection for a detached session: the
// client loop calls it with nothing of the client's on the way. It returns
// errWarehouseUnreachable when the warehouse cannot be reached (the session
// stays detached), and another error when the session must end: the
// warehouse refused it, and has told the client why.
func (s *session) attach() error {
	s.stateMu.Lock()
	done := s.upDone
	s.stateMu.Unlock()
	if done != nil {
		<-done // the lost connection's loop has finished with it
	}
	conn, err := s.srv.warehouse.connect(s.ctx)
	if err != nil {
		if s.ctx.Err() != nil {
			return errSessionDone
		}
		s.srv.monitor.suspect()
		s.logger().Debug("cannot reach the warehouse for the session", "err", err)
		return errWarehouseUnreachable
	}
	if !s.setUpstreamConn(conn) {
		conn.Close()
		return errSessionDone
	}
	if err := s.writeUpstream(s.startup); err != nil {
		return s.attachFailed(err)
	}
	var scram *scramClient
	var statuses [][2]string
	password := func() (string, error) {
		if s.password != nil {
			return *s.password, nil
		}
		return "", errCannotReattach()
	}
	for ready := false; !ready; {
		msg, err := s.upMsgs.next()
		if err != nil {
			return s.attachFailed(err)
		}
		switch msg.typ {
		case 'R':
			if _, err := s.authStep(msg.body, &scram, password, s.keys); err != nil {
				s.closeUpstream()
				if errors.Is(err, errVerifierChanged) {
					s.srv.verifiers.forget(s.user)
				}
				return s.endSession(asPgError(errCannotReattach()))
			}
		case 'K':
			if len(msg.body) >= 8 {
				s.upKey.Store(&upstreamKey{pid: binary.BigEndian.Uint32(msg.body[:4]), secret: append([]byte(nil), msg.body[4:]...)})
			}
		case 'S':
			if name, value, ok := parameterStatus(msg.body); ok {
				statuses = append(statuses, [2]string{name, value})
			}
		case 'E':
			if survivableCode(errorCode(msg.body)) {
				return s.attachFailed(errors.New("the warehouse accepts no connections now"))
			}
			// The warehouse's own refusal (a password changed, the
			// database dropped) ends the session, in its words.
			s.closeUpstream()
			if errorCode(msg.body) == sqlstate.InvalidPassword {
				s.srv.verifiers.forget(s.user)
			}
			raw := clone(msg.raw)
			s.clientMu.Lock()
			_, _ = s.clientW.Write(raw)
			_ = s.clientW.Flush()
			s.clientMu.Unlock()
			s.closeConns()
			return errSessionDone
		case 'Z':
			ready = true
		}
	}
	if set, ok, _ := s.readStartupSettings(); ok {
		s.srv.logins.read(s.loginKey, set)
	}
	if err := s.replayPrepared(); err != nil {
		return s.attachFailed(err)
	}
	if err := s.replayBlock(); err != nil {
		return s.attachFailed(err)
	}
	// The client learns of the parameters that are not what it last saw
	// (a SET it made, say), as Postgres reports a change.
	var out []byte
	cur := s.params.Load()
	for _, st := range statuses {
		if cur == nil || (*cur)[st[0]] != st[1] {
			body := appendCString(appendCString(nil, st[0]), st[1])
			out = appendMessage(out, 'S', body)
			s.noteParameter(body)
		}
	}
	if len(out) > 0 {
		if err := s.writeClient(out); err != nil {
			return err
		}
	}
	s.dirty.Store(false)
	s.startUpstreamLoop()
	pid := uint32(0)
	if k := s.upKey.Load(); k != nil {
		pid = k.pid
	}
	s.logger().Debug("the session relays to the warehouse again, on a new connection", "backend_pid", pid)
	return nil
}

// attachFailed gives up a new connection the warehouse dropped or refused
// for now.
func (s *session) attachFailed(err error) error {
	s.closeUpstream()
	if s.ctx.Err() != nil {
		return errSessionDone
	}
	s.srv.monitor.suspect()
	s.logger().Debug("cannot open a warehouse connection for the session", "err", err)
	return errWarehouseUnreachable
}

// endSession tells the client why its session ends and ends it.
func (s *session) endSession(e *pgError) error {
	s.terminate(e)
	return errSessionDone
}

// survivableCode reports whether a warehouse refusing a connection with
// this SQLSTATE is down rather than refusing the client.
func survivableCode(code string) bool {
	switch code {
	case sqlstate.CannotConnectNow, sqlstate.AdminShutdown, sqlstate.CrashShutdown:
		return true
	}
	return false
}

// replayPrepared prepares on the new connection the statements the client
// prepared by name on the lost one; each has its own Sync, so that one
// that fails (a table dropped since) spares the others.
func (s *session) replayPrepared() error {
	parses := s.upStmts.parses()
	if len(parses) == 0 {
		return nil
	}
	for _, raw := range parses {
		if err := s.writeUpstream(raw); err != nil {
			return err
		}
		if err := s.writeUpstream([]byte{'S', 0, 0, 0, 4}); err != nil {
			return err
		}
	}
	return s.skipToReady(len(parses))
}

// replayBlock opens on the new connection the transaction block the client
// believes it is in: one begun while detached, or one the loss failed,
// which fails again at once so that the warehouse answers the client's
// next statements in it as it would have.
func (s *session) replayBlock() error {
	queries := []string(nil)
	switch byte(s.txStatus.Load()) {
	case 'T':
		begin := s.beginSQL
		if begin == "" {
			begin = "BEGIN"
		}
		queries = []string{begin}
	case 'E':
		queries = []string{"BEGIN", failTransactionSQL}
	}
	for _, q := range queries {
		if err := s.writeUpstream(appendMessage(nil, 'Q', appendCString(nil, q))); err != nil {
			return err
		}
	}
	return s.skipToReady(len(queries))
}

// skipToReady reads the warehouse's answers up to the n-th ReadyForQuery,
// before the upstream loop runs.
func (s *session) skipToReady(n int) error {
	for n > 0 {
		msg, err := s.upMsgs.next()
		if err != nil {
			return err
		}
		if msg.typ == 'Z' {
			n--
			if len(msg.body) == 1 {
				s.txStatus.Store(uint32(msg.body[0]))
			}
		}
	}
	return nil
}

// startupMessage encodes a StartupMessage with params.
func startupMessage(params map[string]string) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, protocolVersion30)
	for name, value := range params {
		body = appendCString(body, name)
		body = appendCString(body, value)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// parameterStatus decodes a ParameterStatus body.
func parameterStatus(body []byte) (name, value string, ok bool) {
	name, rest, ok := cutCString(body)
	if !ok {
		return "", "", false
	}
	value, _, ok = cutCString(rest)
	return name, value, ok
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
	switch firstKeyword(st.SQL) {
	case "begin", "start", "commit", "end", "rollback", "abort":
	default:
		return RouteDecision{}, false
	}
	if multipleStatements(st.SQL) {
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
			s.tx.start = s.clock.received
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

// refusedInFailedBlock reports whether an answer must not run because the
// session's transaction block failed.
func (s *session) refusedInFailedBlock(a Answer) bool {
	return s.txFailed() && !isTxExit(a)
}

// loginLocally starts a session without the warehouse: the proxy
// authenticates the client itself, unless the warehouse just did
// (authenticated), and the session starts as the last session of the same
// login did. Only a login the warehouse let in through the proxy before,
// without a password or with SCRAM-SHA-256 whose verifier the proxy holds,
// can start so; any other gets "cannot connect now".
func (s *session) loginLocally(params map[string]string, authenticated bool) error {
	refuse := newError(severityFatal, sqlstate.CannotConnectNow, "pgrollup: the warehouse is unreachable, and this login cannot be checked without it")
	refuse.Hint = "pgrollup authenticates a login itself only when it has started a session of it before, with the same database and parameters, while the warehouse was up."
	if !s.srv.opts.OutageLogins {
		return refuse
	}
	memo := s.srv.logins.get(s.loginKey)
	if memo == nil {
		return refuse
	}
	set, ok := memo.settingsFor(s.srv.probe())
	if !ok {
		return refuse
	}
	switch {
	case authenticated:
	case memo.method == authTrust:
	case memo.method == authSCRAM:
		v := s.srv.verifiers.get(s.user)
		if v == nil {
			return refuse
		}
		if s.password != nil {
			// The client gave its password in clear to a warehouse that
			// went away before it answered.
			if !v.checkPassword(*s.password) {
				return passwordFailed(s.user)
			}
		} else if err := s.scramExchange(v); err != nil {
			return err
		}
	default:
		return refuse
	}
	s.out = appendMessage(s.out, 'R', binary.BigEndian.AppendUint32(nil, 0))
	for _, st := range memo.statuses {
		value := st[1]
		if st[0] == "application_name" {
			value = params["application_name"]
		}
		body := appendCString(appendCString(nil, st[0]), value)
		s.noteParameter(body)
		s.out = appendMessage(s.out, 'S', body)
	}
	// No backend, so no pid: the key still lets the client cancel the
	// proxy's own answers, and later the new connection's statements.
	k, err := s.srv.assignKey(s, 0)
	if err != nil {
		return err
	}
	var key [8]byte
	binary.BigEndian.PutUint32(key[:4], k.pid)
	binary.BigEndian.PutUint32(key[4:], k.secret)
	s.out = appendMessage(s.out, 'K', key[:])
	s.startedWith(set)
	s.txStatus.Store('I')
	s.detached.Store(true)
	s.out = appendMessage(s.out, 'Z', []byte{'I'})
	s.srv.metrics.LocalLogins.Inc()
	s.logger().Debug("session started without the warehouse; pgrollup authenticated the client itself")
	return s.flushOut()
}

func passwordFailed(user string) *pgError {
	return newError(severityFatal, sqlstate.InvalidPassword, fmt.Sprintf("password authentication failed for user %q", user))
}

// scramExchange authenticates the client with SCRAM-SHA-256 against v, as
// Postgres would, and keeps the ClientKey its proof reveals for the
// session's next warehouse connection. No password crosses the wire, so it
// needs no TLS.
func (s *session) scramExchange(v *scramVerifier) error {
	srv := newScramServer(v)
	body := binary.BigEndian.AppendUint32(nil, 10)
	body = appendCString(body, scramMechanism)
	body = append(body, 0)
	s.out = appendMessage(s.out, 'R', body)
	if err := s.flushOut(); err != nil {
		return err
	}
	msg, err := s.clientSASL()
	if err != nil {
		return err
	}
	mech, rest, ok := cutCString(msg.body)
	if !ok || len(rest) < 4 {
		return newError(severityFatal, sqlstate.ProtocolViolation, "malformed SASLInitialResponse message")
	}
	if mech != scramMechanism {
		return newError(severityFatal, sqlstate.ProtocolViolation, "client selected an invalid SASL authentication mechanism")
	}
	n := int(int32(binary.BigEndian.Uint32(rest)))
	rest = rest[4:]
	if n < 0 || n != len(rest) {
		return newError(severityFatal, sqlstate.ProtocolViolation, "malformed SASLInitialResponse message")
	}
	first, err := srv.first(rest)
	if err != nil {
		return scramFailed(err, s.user)
	}
	s.out = appendMessage(s.out, 'R', append(binary.BigEndian.AppendUint32(nil, 11), first...))
	if err := s.flushOut(); err != nil {
		return err
	}
	if msg, err = s.clientSASL(); err != nil {
		return err
	}
	final, clientKey, err := srv.final(msg.body)
	if err != nil {
		return scramFailed(err, s.user)
	}
	s.keys = srv.keys(clientKey)
	s.out = appendMessage(s.out, 'R', append(binary.BigEndian.AppendUint32(nil, 12), final...))
	return nil
}

// clientSASL reads the client's next SASL message.
func (s *session) clientSASL() (message, error) {
	msg, err := s.clientMsgs.next()
	if err != nil {
		return message{}, errSessionDone
	}
	if msg.typ != 'p' {
		return message{}, newError(severityFatal, sqlstate.ProtocolViolation, fmt.Sprintf("expected SASL response, got message type %d", msg.typ))
	}
	return msg, nil
}

func scramFailed(err error, user string) *pgError {
	var pe errScramProtocol
	if errors.As(err, &pe) {
		return newError(severityFatal, sqlstate.ProtocolViolation, pe.Error())
	}
	return passwordFailed(user)
}
