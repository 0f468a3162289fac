package proxy

import (
	"encoding/binary"
	"errors"

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

// The errors a statement gets when it needs the warehouse and the session
// has none. Neither names the warehouse's address: an unauthenticated
// client learns nothing of it from the proxy.
func errUnreachable() *pgError {
	e := newError(severityError, sqlstate.CannotConnectNow, "pgrollup: the warehouse is unreachable; until it is back, only statements answered from rollups run")
	e.Hint = "The session stays open: this statement can be run again once the warehouse is back."
	return e
}

// errCannotReattach ends a session the warehouse no longer lets in with the
// credentials it started with, or whose credentials the proxy cannot replay.
func errCannotReattach() *pgError {
	return newError(severityFatal, sqlstate.InvalidAuthorizationSpecification,
		"pgrollup: cannot authenticate this session to the warehouse again; connect again")
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
	s.group.mayBlock()
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
			if _, err := s.authStep(msg.body(), &scram, password, s.keys); err != nil {
				s.closeUpstream()
				if errors.Is(err, errVerifierChanged) {
					s.srv.verifiers.forget(s.user)
				}
				return s.endSession(asPgError(errCannotReattach()))
			}
		case 'K':
			if len(msg.body()) >= 8 {
				s.upKey.Store(&upstreamKey{pid: binary.BigEndian.Uint32(msg.body()[:4]), secret: append([]byte(nil), msg.body()[4:]...)})
			}
		case 'S':
			if name, value, ok := parameterStatus(msg.body()); ok {
				statuses = append(statuses, [2]string{name, value})
			}
		case 'E':
			if survivableCode(errorCode(msg.body())) {
				return s.attachFailed(errors.New("the warehouse accepts no connections now"))
			}
			// The warehouse's own refusal (a password changed, the
			// database dropped) ends the session, in its words.
			s.closeUpstream()
			if errorCode(msg.body()) == sqlstate.InvalidPassword {
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
			if len(msg.body()) == 1 {
				s.txStatus.Store(uint32(msg.body()[0]))
			}
		}
	}
	return nil
}
