package proxy

import (
	"errors"
	"fmt"
	"io"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// The session's two loops: the client loop reads the client's messages and
// dispatches them; the upstream loop relays the warehouse's messages to the
// client and accounts for them. Either parks while its connection is silent
// (idle.go).

// clientLoop relays client messages to the warehouse until the client leaves
// or breaks the protocol, or returns errParked once the client has been
// silent long enough for the session to give up the goroutine (idle.go).
// Nothing of a statement's is on its stack between messages.
func (s *session) clientLoop() error {
	for {
		if s.clientR.raw != nil {
			// The event loop handles the messages it can (evloop.go);
			// the one it leaves goes through the pull path below.
			err, waitErr := s.clientMsgs.serveEvents(s.onClientMessage)
			if err != nil {
				return err
			}
			if waitErr != nil {
				if s.clientR.idle.wasKicked(waitErr) {
					if s.clientR.Buffered() == 0 && s.srv.parkLoop(s.clientR, s.resumeClient) {
						return errParked
					}
					continue
				}
				s.clientR.err = waitErr
			}
		} else if !s.clientR.wait() {
			if s.srv.parkLoop(s.clientR, s.resumeClient) {
				return errParked
			}
			continue
		}
		if err := s.clientMessage(); err != nil {
			return err
		}
	}
}

// clientMessage reads and handles one client message (onClientMessage).
func (s *session) clientMessage() error {
	msg, err := s.clientMsgs.next()
	if err != nil {
		var le *lengthError
		if errors.As(err, &le) {
			s.terminate(newError(severityFatal, sqlstate.ProtocolViolation, "invalid message length"))
		}
		return err
	}
	return s.onClientMessage(msg)
}

// onClientMessage handles a client message just read, and flushes both
// connections when no other message is waiting.
func (s *session) onClientMessage(msg message) error {
	s.clock.arrived(msg.typ, s.clientR.reads)
	if err := s.handleClientMessage(msg); err != nil {
		return err
	}
	if s.clientR.Buffered() == 0 {
		if err := s.upW.Flush(); err != nil {
			return err
		}
		if err := s.flushClient(); err != nil {
			return err
		}
	} else if !s.clientMsgs.nextWholeBuffered() {
		// The next message needs a read, which may move what is
		// buffered: what was relayed in place is copied out first.
		s.upW.copyInPlace()
	}
	return nil
}

func (s *session) handleClientMessage(msg message) error {
	s.noticeLoss()
	switch msg.typ {
	case 'd', 'c', 'f', 'X':
	case 'S', 'H':
		if s.copyPending != nil {
			break // the warehouse answers nothing during copy-in
		}
		fallthrough
	default:
		// Before the proxy looks up a statement or portal it holds.
		if err := s.settleResets(); err != nil {
			return err
		}
	}
	if s.batchFailed {
		// A local message of this batch failed: as Postgres does, skip
		// everything up to Sync.
		switch msg.typ {
		case 'P', 'B', 'D', 'E', 'C', 'H':
			return nil
		}
	}
	switch msg.typ {
	case 'P', 'B', 'D', 'E', 'C', 'H':
		if s.batchAt.IsZero() {
			s.batchAt = s.clock.at()
		}
	}
	switch msg.typ {
	case 'Q':
		return s.onQuery(msg)
	case 'P':
		return s.onParse(msg)
	case 'B':
		return s.onBind(msg)
	case 'D':
		return s.onDescribe(msg)
	case 'E':
		return s.onExecute(msg)
	case 'C':
		return s.onClose(msg)
	case 'S':
		return s.onSync(msg)
	case 'H':
		return s.relay(msg)
	case 'F':
		return s.relayFunctionCall(msg)
	case 'd', 'c', 'f':
		// COPY data flows within a statement already relayed; with the
		// connection lost, the COPY has failed, and what follows of it is
		// ignored as Postgres ignores it after an error.
		if msg.typ != 'd' {
			s.copyEnded()
		}
		if s.isDetached() {
			return nil
		}
		_, err := s.upW.Write(msg.raw)
		if err == nil && msg.rest > 0 {
			err = s.clientMsgs.relayRest(s.upW)
		}
		return err
	case 'X':
		_, _ = s.upW.Write(msg.raw)
		_ = s.upW.Flush()
		return io.EOF
	default:
		e := newError(severityFatal, sqlstate.ProtocolViolation, fmt.Sprintf("invalid frontend message type %d", msg.typ))
		s.terminate(e)
		return e
	}
}

// upstreamLoop relays the warehouse's messages to the client until either
// side closes.
//
// When the connection ends on the warehouse's side the session goes on
// without it (session_loss.go), unless the warehouse ended this session alone
// with a FATAL error, which the client sees and which ends it too.
//
// It returns errParked once the warehouse has been silent long enough for
// the loop to give up its goroutine (idle.go); done is the connection's,
// for the loop that resumes.
func (s *session) upstreamLoop(done chan struct{}) error {
	// The loop parks only while the warehouse has sent no FATAL error,
	// so one that resumes starts without.
	s.upFatal = false
	// From here on every message goes to the client as it is, so one too
	// big to hold is relayed as it is read (during startup some are kept).
	s.upMsgs.stream = s.srv.upstreamStream
	for {
		if s.upR.raw != nil {
			err, waitErr := s.upMsgs.serveEvents(s.onUpstreamMessage)
			if err != nil {
				return upstreamEnd(err)
			}
			if waitErr != nil {
				if s.upR.idle.wasKicked(waitErr) {
					if !s.upFatal && s.upR.Buffered() == 0 && s.srv.parkLoop(s.upR, func() { go s.runUpstream(done) }) {
						return errParked
					}
					continue
				}
				s.upR.err = waitErr
			}
		} else if !s.upR.wait() {
			if !s.upFatal && s.srv.parkLoop(s.upR, func() { go s.runUpstream(done) }) {
				return errParked
			}
			continue
		}
		if err := s.upstreamMessage(); err != nil {
			return upstreamEnd(err)
		}
	}
}

// errUpstreamDone ends the upstream loop without an error: the session has
// been terminated.
var errUpstreamDone = errors.New("session terminated")

func upstreamEnd(err error) error {
	if err == errUpstreamDone {
		return nil
	}
	return err
}

// upstreamMessage reads one warehouse message and relays it to the client
// (onUpstreamMessage).
func (s *session) upstreamMessage() error {
	msg, err := s.upMsgs.next()
	if err != nil {
		if !s.upFatal && s.loseUpstream(err) {
			return err
		}
		s.clientMu.Lock()
		_ = s.clientW.Flush()
		s.clientMu.Unlock()
		s.closeConns()
		return err
	}
	return s.onUpstreamMessage(msg)
}

// onUpstreamMessage relays a warehouse message just read to the client. An
// error ends the loop; errUpstreamDone ends it without one.
func (s *session) onUpstreamMessage(msg message) (err error) {
	switch {
	case msg.typ == 'S':
		s.noteParameter(msg.body())
	case msg.typ == 'E' && !isStatementError(msg.body()):
		if s.survives(msg.body()) {
			err := fmt.Errorf("warehouse error %s", errorCode(msg.body()))
			if s.loseUpstream(err) {
				return err
			}
		}
		s.upFatal = true
	case msg.typ == 'N' && shutdownNotice(msg.body()):
		return nil // the session outlives the backend
	}
	s.stateMu.Lock()
	relay, terminate, plainRow := s.observeUpstreamLocked(msg)
	out := msg.raw
	if mark, ok := s.upMsgs.runMark(msg); ok && relay {
		// The messages buffered after this one that the client sees as
		// they are go with it, in one write.
		out = s.upMsgs.runBytes(mark, s.relayRunLocked(plainRow, &terminate))
	}
	s.stateMu.Unlock()
	s.clientMu.Lock()
	if relay && msg.rest == 0 && s.upR.Buffered() == 0 {
		// Nothing more to read now: written as it lies in the buffer.
		err = s.clientW.writeFlush(out)
	} else {
		if relay {
			_, err = s.clientW.Write(out)
			if err == nil && msg.rest > 0 {
				err = s.upMsgs.relayRest(s.clientW)
			}
		}
		if err == nil && s.upR.Buffered() == 0 {
			err = s.clientW.Flush()
		}
	}
	s.clientMu.Unlock()
	s.passed()
	if err != nil {
		s.closeConns()
		return err
	}
	if terminate {
		s.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
		return errUpstreamDone
	}
	return nil
}

// runTypes are the warehouse messages a run may hold (relayRunLocked): answers
// to statements, which upstreamMessage does nothing with but account for
// them and relay them. Errors, notices, parameter changes and the COPY
// messages go one at a time.
var runTypes = func() (t [256]bool) {
	for _, typ := range []byte("123CDInsTtZ") {
		t[typ] = true
	}
	return t
}()

// relayRunLocked consumes, after a message just observed and relayed
// (plainRow as observeUpstreamLocked said of it), the whole messages
// buffered behind it that are relayed as they are: a run of DataRows at
// once, others one by one through observeUpstreamLocked, until one is not
// relayed, is not of runTypes, is not whole in the buffer, or ends the
// session (terminate). It returns where the relayed messages end in the
// reader's buffer. The caller holds stateMu.
func (s *session) relayRunLocked(plainRow bool, terminate *bool) int {
	for {
		if plainRow {
			// The DataRows after this one need nothing of the proxy
			// either, whatever their number.
			s.upMsgs.takeRun('D')
		}
		end := s.upMsgs.runEnd()
		if *terminate {
			return end
		}
		msg, ok := s.upMsgs.nextWhole(&runTypes)
		if !ok {
			return end
		}
		var relay, term bool
		relay, term, plainRow = s.observeUpstreamLocked(msg)
		*terminate = *terminate || term
		if !relay {
			return end
		}
	}
}

// observeUpstreamLocked accounts for one warehouse message. It reports
// whether the client should see it, whether a draining session has just
// become idle and should end now, and whether it is a DataRow the proxy
// only relays (plainRow): the DataRows after it are then the same. The
// caller holds stateMu.
func (s *session) observeUpstreamLocked(msg message) (relay, terminate, plainRow bool) {
	if head := s.expect.peek(); head != nil {
		if n := head.notes; n != nil {
			s.noteAnswerLocked(head, n, msg)
		}
		plainRow = msg.typ == 'D' && head.settingsRead() == nil
	}
	prev := byte(s.txStatus.Load())
	relay = s.observeExpect(msg.typ)
	if msg.typ == 'E' && !relay && !isStatementError(msg.body()) {
		relay = true // a FATAL error ends the session: the client must see why
	}
	if msg.typ == 'Z' && len(msg.body()) == 1 {
		s.txStatusLocked(prev, msg.body()[0])
	}
	if s.expect.len() == 0 {
		s.passing.Store(true) // drained once the message is written (passed)
	}
	if msg.typ == 'Z' && s.draining && s.idleLocked() && !s.closing {
		s.closing = true
		terminate = true
	}
	return relay, terminate, plainRow
}

// noteAnswerLocked takes from a warehouse message answering head what its
// notes ask for. The caller holds stateMu.
func (s *session) noteAnswerLocked(head *expectation, n *answerNotes, msg message) {
	switch {
	case n.settings != nil && msg.typ == 'D':
		values, ok := decodeDataRow(msg.body())
		n.settings.values, n.settings.failed = values, n.settings.failed || !ok
	case n.settings != nil && msg.typ == 'E':
		n.settings.failed = true
	case n.resets != nil && msg.typ == 'C':
		s.resetDoneLocked(head, msg.body())
	case n.origins != nil && msg.typ == 'T':
		if !setOrigins(msg.body(), n.origins) {
			s.logger().Warn("a finished statement's description does not match its origins", "columns", len(n.origins))
		}
	case n.describes != nil && msg.typ == 't' && head.kind == 'D':
		if oids, ok := decodeParameterDescription(msg.body()); ok {
			n.describes.described = oids
		}
	}
	if n.copy != nil {
		copyObservedLocked(head, msg.typ)
	}
}

// kickIfIdle asks the session's loops that have waited since before
// tick-idleTicks to park.
func (s *session) kickIfIdle(tick int64) {
	s.clientR.idle.kickIfIdle(tick)
	s.upMu.Lock()
	if s.upR != nil {
		s.upR.idle.kickIfIdle(tick)
	}
	s.upMu.Unlock()
}
