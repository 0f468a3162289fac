package proxy

import (
	"context"
	"net"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// Losing the warehouse connection: the session goes on detached, what the
// client was waiting for is answered with an error, and the loss is noted
// to be reported to a later statement (session_reattach.go).

// upstreamWriter buffers what the client loop sends to the warehouse. A
// write that fails closes the connection and discards what follows: the
// upstream loop then finds it closed and detaches the session, and so the
// loss is handled in one place, the reading side. A session that started
// without a connection has none (nil), which discards everything too.
type upstreamWriter struct {
	w    *connWriter
	conn net.Conn
	r    *connReader // conn's, for shutdownConn
	dead bool
	// inPlace are client messages relayed where they lie in the client's
	// read buffer, not yet written (session.relayAs): copied out by any
	// other write, written as they are by a flush. The client's
	// connection is not read while they wait (session.clientMessage).
	inPlace []byte
}

func (u *upstreamWriter) Write(b []byte) (int, error) {
	if u != nil && !u.dead {
		u.copyInPlace()
		if _, err := u.w.Write(b); err != nil {
			u.died()
		}
	}
	return len(b), nil
}

func (u *upstreamWriter) Flush() error {
	if u != nil && !u.dead {
		var err error
		if run := u.inPlace; run != nil {
			u.inPlace = nil
			err = u.w.writeFlush(run)
		} else {
			err = u.w.Flush()
		}
		if err != nil {
			u.died()
		}
	}
	return nil
}

// relayInPlace notes run, client messages that lie together in the
// client's read buffer (and begin with those pending, if any), as to be
// written.
func (u *upstreamWriter) relayInPlace(run []byte) {
	if u != nil && !u.dead {
		u.inPlace = run
	}
}

// pendingInPlace returns the messages relayed in place that wait, nil for
// none.
func (u *upstreamWriter) pendingInPlace() []byte {
	if u == nil {
		return nil
	}
	return u.inPlace
}

// copyInPlace copies the messages relayed in place to the buffer: the
// client's read buffer is about to be read into, or other bytes written.
func (u *upstreamWriter) copyInPlace() {
	if u == nil || u.inPlace == nil {
		return
	}
	run := u.inPlace
	u.inPlace = nil
	if !u.dead {
		if _, err := u.w.Write(run); err != nil {
			u.died()
		}
	}
}

func (u *upstreamWriter) died() {
	u.dead = true
	u.inPlace = nil
	shutdownConn(u.conn, u.r)
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

// isDetached reports whether the session has no warehouse connection.
func (s *session) isDetached() bool { return s.detached.Load() }

// closeUpstream closes the warehouse connection, if any, resuming its loop
// if it was parked so that it sees the end.
func (s *session) closeUpstream() {
	s.upMu.Lock()
	parked := false
	if s.upstream != nil {
		parked = s.srv.closeLoopConn(s.upstream, s.upR)
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
	s.group.mayBlock()
	s.closeUpstream()
	s.upKey.Store(nil)
	s.stateMu.Lock()
	if s.closing {
		s.stateMu.Unlock()
		return false
	}
	pending := s.expect.drain()
	for i := range pending {
		e := &pending[i]
		if read := e.settingsRead(); read != nil {
			read.failed = true
		}
		s.poppedLocked(e)
	}
	c := &s.clock
	c.popped = c.pushed
	unanswered := len(c.inflight) - c.inflightHead
	c.inflight, c.inflightHead = nil, 0
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
	s.upGen.Add(1)
	s.detached.Store(true)
	s.passing.Store(true)
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
//
// Every client message checks, so the common case (no loss since) is a
// comparison inlined where it is called, with no lock.
func (s *session) noticeLoss() {
	if !s.lossSeen() {
		s.catchUpLoss()
	}
}

// lossSeen reports whether the client loop has caught up with every lost
// connection (noticeLoss).
func (s *session) lossSeen() bool { return s.upGen.Load() == s.seenGen }

// catchUpLoss is noticeLoss once the connection's generation has moved.
func (s *session) catchUpLoss() {
	s.stateMu.Lock()
	gen, open := s.upGen.Load(), s.lossOpenBatch
	s.lossOpenBatch = false
	s.resetsDone = nil
	s.stateMu.Unlock()
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
