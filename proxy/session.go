package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

const (
	// startupTimeout bounds the time from connect to ReadyForQuery, as
	// Postgres's authentication_timeout does.
	startupTimeout = 60 * time.Second
	// maxLocalPortals bounds per-session bookkeeping: portals end with their
	// transaction, often without a Close the proxy could see.
	maxLocalPortals = 1024
)

// session is one client connection and its own warehouse connection.
//
// Two goroutines run a session once it is established: the client loop reads
// client messages, routes statements and writes to the warehouse; the
// upstream loop reads the warehouse's messages and writes them to the client.
// Either loop gives up its goroutine while its connection is silent, and
// the idle poller starts it again when the connection speaks (idle.go).
// Writes to the client are serialised by clientMu because the proxy's own
// messages (errors, shutdown notices) come from either side.
type session struct {
	srv    *Server
	ctx    context.Context
	cancel context.CancelFunc

	client     net.Conn
	clientR    *connReader
	clientMsgs *messageReader
	tls        bool

	clientMu sync.Mutex
	clientW  *connWriter

	// upstream is the warehouse connection, replaced when a lost one is
	// opened again (reattach.go); upMu guards it against a concurrent close.
	upMu     sync.Mutex
	upstream net.Conn
	upR      *connReader
	upMsgs   *messageReader
	upW      *upstreamWriter // client loop only

	// out collects messages to the client during startup, before clientW.
	out []byte

	user, database string
	password       *string
	upKey          atomic.Pointer[upstreamKey]
	params         atomic.Pointer[map[string]string]
	txStatus       atomic.Uint32

	// startup is the client's startup message as the proxy sends it to
	// the warehouse, loginKey the login it makes (logins.go); keys, for a
	// client the proxy authenticated itself with SCRAM, prove it to the
	// warehouse (reattach.go).
	startup  []byte
	loginKey string
	keys     *scramKeys

	// key is the BackendKeyData the client was given, when keyed; the
	// Server sets both under its mu.
	key   cancelKey
	keyed bool

	// answerMu guards the cancel function of the answer the proxy is
	// computing, which a CancelRequest from another connection calls.
	answerMu     sync.Mutex
	answerCancel context.CancelCauseFunc

	stateMu sync.Mutex
	// drained is signalled (with stateMu) when expect empties and the
	// message that emptied it is with the client.
	drained *sync.Cond
	// passing: the upstream loop is relaying the message that emptied
	// expect, which an answer of the proxy's must not overtake.
	passing    bool
	expect     expectQueue
	inExtended bool // extended-protocol messages since the last Sync
	draining   bool
	closing    bool
	// set is what the proxy knows of the settings local answers depend on
	// (settings.go), tx of the warehouse's transaction (txstate.go).
	set settingsState
	tx  txState
	// resetsDone are DEALLOCATEs and the like the warehouse completed, for
	// the client loop to apply (resets.go).
	resetsDone []resetOp
	// The warehouse connection's life (reattach.go): upDone is closed when
	// the current connection's upstream loop ends; upGen counts lost
	// connections; lossReport is the loss still to be reported to the next
	// statement, lossOpenBatch that the loss failed a batch not yet synced.
	upDone        chan struct{}
	upGen         uint64
	lossReport    *pgError
	lossOpenBatch bool
	// detached: the session has no warehouse connection now.
	detached atomic.Bool
	// dirty: the session relayed a statement that may have left state on
	// the warehouse that a new connection would not have (settings.go).
	dirty atomic.Bool

	// Client loop only: statements and portals the proxy answers itself,
	// and the state of the extended-protocol batch up to the next Sync.
	localStmts    map[string]*localStatement
	localPortals  map[string]*localPortal
	batchUpstream bool // a message of this batch went to the warehouse
	batchFailed   bool // a local message of this batch failed: skip to Sync
	sessInfo      SessionInfo
	clock         statementClock // duration.go

	// Client loop only: what was relayed (upstream.go). upStmts and
	// upPortals are the statements and portals on the warehouse, the
	// portals by the statement they run.
	upStmts       upstreamNames
	upPortals     upstreamNames
	batchAt       time.Time  // arrival of the current batch's first message
	batchNewTx    bool       // the batch may have ended a transaction
	batchMayCopy  bool       // a statement relayed since the last sync point may be COPY
	copyPending   *copyStart // a COPY relayed that may be in copy-in (copy.go)
	resetsPending bool       // a statement relayed may drop statements or portals the proxy holds
	// Client loop only: the lost connections accounted for (upGen), and
	// the BEGIN of a block opened while detached, replayed on the next
	// connection.
	seenGen  uint64
	beginSQL string

	closeOnce sync.Once
}

type upstreamKey struct {
	pid    uint32
	secret []byte
}

func (s *Server) serveConn(conn net.Conn) {
	s.newSession(conn).run()
}

// newSession prepares a session for conn. It is a function of its own so
// that what it builds is not in the frame under every idle session's
// stack (clientLoop). The maps of local statements and portals are made
// when the first is, as most sessions never have one.
func (s *Server) newSession(conn net.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{
		srv:    s,
		ctx:    ctx,
		cancel: cancel,
	}
	sess.drained = sync.NewCond(&sess.stateMu)
	sess.expect.onPop = sess.poppedLocked
	sess.setClientConn(conn)
	return sess
}

// logger returns the session's logger. It is made for each message rather
// than kept, as messages are rare and a kept logger is a tenth of what an
// idle session costs.
func (s *session) logger() *slog.Logger {
	if s.user == "" {
		return s.srv.log.With("client", s.client.RemoteAddr().String())
	}
	return s.srv.log.With("client", s.client.RemoteAddr().String(), "user", s.user, "database", s.database)
}

func (s *session) setClientConn(c net.Conn) {
	s.client = c
	s.clientR = newConnReader(c, s.srv.bufs)
	s.clientR.idle = newIdleWait(c, &s.srv.idleClock)
	s.clientMsgs = newMessageReader(s.clientR, s.srv.opts.MaxMessageBytes)
	s.clientMsgs.stream = s.srv.clientStream
	s.clientW = newConnWriter(c, s.srv.bufs)
}

// setUpstreamConn makes c the session's warehouse connection. It reports
// false, and keeps nothing, when the session is closing.
func (s *session) setUpstreamConn(c net.Conn) bool {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.upstream = c
	s.upR = newConnReader(c, s.srv.bufs)
	s.upR.idle = newIdleWait(c, &s.srv.idleClock)
	s.upMsgs = newMessageReader(s.upR, 0)
	s.upW = &upstreamWriter{w: newConnWriter(c, s.srv.bufs), conn: c}
	return true
}

// run serves the session from its startup packet on. Its goroutine ends
// when the session does, or earlier when the client loop parks (idle.go):
// the session then ends in whichever goroutine resumes it (end).
func (s *session) run() {
	registered, ok := s.establish()
	if !ok {
		s.closeConns()
		if registered {
			s.srv.unregister(s)
		}
		s.srv.wg.Done()
		return
	}
	s.serveClient()
}

// establish reads the client's startup packet and logs it in. It reports
// whether the session was registered with the server, and whether it
// started.
func (s *session) establish() (registered, ok bool) {
	_ = s.client.SetDeadline(time.Now().Add(startupTimeout))
	params, err := s.acceptStartup()
	if err != nil {
		s.fail(err)
		return false, false
	}
	s.user = params["user"]
	if s.user == "" {
		s.fail(newError(severityFatal, sqlstate.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet"))
		return false, false
	}
	s.database = params["database"]
	if s.database == "" {
		s.database = s.user
	}
	s.startup = startupMessage(params)
	s.loginKey = loginKey(params)
	if err := s.srv.register(s); err != nil {
		s.fail(err)
		return false, false
	}
	if err := s.login(s.ctx, params); err != nil {
		s.fail(err)
		return true, false
	}
	_ = s.client.SetDeadline(time.Time{})
	s.logger().Debug("session started", "detached", s.isDetached())
	return true, true
}

// serveClient runs the client loop, and ends the session when the loop
// ends other than by parking.
func (s *session) serveClient() {
	err := s.clientLoop()
	if err == errParked {
		return
	}
	s.end(err)
}

// end closes a session whose client loop has ended (clientErr), once the
// upstream loop has too, and tells the server.
func (s *session) end(clientErr error) {
	s.dropAllPortals()
	s.closeConns()
	s.stateMu.Lock()
	done := s.upDone
	s.stateMu.Unlock()
	if done != nil {
		<-done
	}
	s.releaseBuffers()
	s.logger().Debug("session ended", "client_end", errText(clientErr))
	s.srv.unregister(s)
	s.srv.wg.Done()
}

// login opens the client's warehouse session, relaying its authentication.
// When the warehouse is unreachable the proxy authenticates the client
// itself, if it can, and the session starts without a connection.
func (s *session) login(ctx context.Context, params map[string]string) error {
	if s.srv.monitor.isUp() {
		err := s.startUpstream(ctx, params)
		if err == nil {
			s.startUpstreamLoop()
			return nil
		}
		authed := errors.Is(err, errWarehouseGoneAuthed)
		if !authed && !errors.Is(err, errWarehouseUnreachable) {
			return err
		}
		s.closeUpstream()
		s.upKey.Store(nil)
		if s.srv.monitor.confirm(ctx) && !authed {
			// Up for the monitor, not for this client: nothing to fall
			// back on, and no address to tell it.
			return newError(severityFatal, sqlstate.ConnectionFailure, "pgrollup: could not connect to the warehouse")
		}
		if authed {
			// The warehouse authenticated the client: the session can
			// start without it.
			return s.loginLocally(params, true)
		}
	}
	return s.loginLocally(params, false)
}

// startUpstreamLoop starts relaying the warehouse's messages to the client.
func (s *session) startUpstreamLoop() {
	done := make(chan struct{})
	s.stateMu.Lock()
	s.upDone = done
	s.detached.Store(false)
	s.stateMu.Unlock()
	go s.runUpstream(done)
}

// runUpstream runs the upstream loop of the connection whose end closes
// done, unless the loop parks.
func (s *session) runUpstream(done chan struct{}) {
	err := s.upstreamLoop(done)
	if err == errParked {
		return
	}
	close(done)
	s.logger().Debug("warehouse connection ended", "end", errText(err))
}

// releaseBuffers gives the session's buffers back to the pool once both
// loops are done with them.
func (s *session) releaseBuffers() {
	s.clientR.close()
	s.clientMu.Lock()
	s.clientW.close()
	s.clientMu.Unlock()
	if s.upR != nil {
		s.upR.close()
		s.upW.w.close()
	}
}

// fail ends a session that never got going, telling the client why when it
// is still listening.
func (s *session) fail(err error) {
	if errors.Is(err, errSessionDone) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	var le *lengthError
	if errors.As(err, &le) {
		err = newError(severityFatal, sqlstate.ProtocolViolation, "invalid message length")
	}
	pe := asPgError(err)
	s.logger().Debug("session refused", "err", err)
	s.out = pe.encode(s.out)
	_ = s.flushOut()
}

// flushOut writes the startup-phase messages collected in out.
func (s *session) flushOut() error {
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.client.Write(s.out)
	s.out = nil // an idle session keeps no startup messages
	return err
}

func (s *session) writeUpstream(b []byte) error {
	_, err := s.upstream.Write(b)
	return err
}

// closeConns closes both connections, which ends both loops: a parked
// loop is resumed to see its connection closed.
func (s *session) closeConns() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.stateMu.Lock()
		s.closing = true
		s.drained.Broadcast()
		s.stateMu.Unlock()
		parked := s.srv.idle.unpark(s.clientR.idle)
		s.client.Close()
		if parked {
			s.resumeClient()
		}
		s.closeUpstream()
	})
}

// resumeClient runs the parked client loop again.
func (s *session) resumeClient() { go s.serveClient() }

// noteParameter records a ParameterStatus body (name, value) so that routing
// sees the session's TimeZone, DateStyle and the rest as the client does.
func (s *session) noteParameter(body []byte) {
	name, rest, ok := cutCStringBytes(body)
	if !ok {
		return
	}
	value, _, ok := cutCStringBytes(rest)
	if !ok {
		return
	}
	s.params.Store(s.srv.params.with(s.params.Load(), name, value))
}

// paramMaps shares the maps of reported parameters between sessions. Maps
// are never changed once published, so each report used to copy the
// session's map: at startup, a dozen copies and a map for every session.
// Sessions that heard the same reports in the same order share each map
// instead, found by the map before and the report.
type paramMaps struct {
	mu   sync.Mutex
	next map[paramStep]*map[string]string
}

type paramStep struct {
	from        *map[string]string
	name, value string
}

// maxParamSteps bounds the reports remembered: past it, sessions get maps
// of their own again.
const maxParamSteps = 4096

// with returns a map holding from's parameters and name set to value.
func (p *paramMaps) with(from *map[string]string, name, value []byte) *map[string]string {
	if from != nil {
		if v, ok := (*from)[string(name)]; ok && v == string(value) {
			return from
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.next[paramStep{from, string(name), string(value)}]; ok {
		return m
	}
	next := make(map[string]string, 16)
	if from != nil {
		for k, v := range *from {
			next[k] = v
		}
	}
	next[string(name)] = string(value)
	if p.next == nil {
		p.next = map[paramStep]*map[string]string{}
	}
	if len(p.next) < maxParamSteps {
		p.next[paramStep{from, string(name), string(value)}] = &next
	}
	return &next
}

// clientLoop relays client messages to the warehouse until the client leaves
// or breaks the protocol, or returns errParked once the client has been
// silent long enough for the session to give up the goroutine (idle.go).
// Nothing of a statement's is on its stack between messages.
func (s *session) clientLoop() error {
	for {
		if !s.clientR.wait() {
			if s.srv.idle.park(s.clientR.idle, s.resumeClient) {
				return errParked
			}
			continue
		}
		if err := s.clientMessage(); err != nil {
			return err
		}
	}
}

// clientMessage reads and handles one client message, and flushes both
// connections when no other message is waiting.
func (s *session) clientMessage() error {
	msg, err := s.clientMsgs.next()
	if err != nil {
		var le *lengthError
		if errors.As(err, &le) {
			s.terminate(newError(severityFatal, sqlstate.ProtocolViolation, "invalid message length"))
		}
		return err
	}
	s.clock.arrived()
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
			s.batchAt = s.clock.received
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

// Outcomes of beginRoundTrip.
type roundTrip uint8

const (
	tripOn      roundTrip = iota
	tripClosing           // the session is being closed for shutdown
	tripLost              // the warehouse connection was lost just now
)

// beginRoundTrip notes a client message about to be relayed that the
// warehouse will answer as e describes, unless the session is closing or
// has lost its connection since the caller looked (reattach.go).
func (s *session) beginRoundTrip(e expectation) roundTrip {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.closing {
		return tripClosing
	}
	if s.isDetached() {
		return tripLost
	}
	switch e.kind {
	case 'S', 'Q', 'F':
		s.inExtended = false
	case 'H':
		s.inExtended = true
		return tripOn
	default:
		s.inExtended = true
	}
	s.pushExpect(e)
	return tripOn
}

// route asks the router where a statement goes; statements that manage
// the proxy's own prepared statements it decides itself.
func (s *session) route(st *Statement) RouteDecision {
	if d, ok := s.sessionCommand(st); ok {
		return d
	}
	if d, ok := s.offlineCommand(st); ok {
		return d
	}
	d := s.srv.router.Route(s.ctx, st, s.session())
	if d.Answer == nil {
		d.Route = RoutePassthrough
	}
	return d
}

// session refreshes and returns what a Router or an Answer may know of the
// session: it changes between a Parse and its Executes.
func (s *session) session() *SessionInfo {
	info := &s.sessInfo
	info.User, info.Database = s.user, s.database
	if p := s.params.Load(); p != nil {
		info.Parameters = *p
	}
	info.TxStatus = byte(s.txStatus.Load())
	info.TxWrote, info.Now = s.txSnapshot()
	s.stateMu.Lock()
	info.Probe, info.Probed = nil, nil
	if s.set.known {
		info.Probe, info.Probed = s.set.probe, s.set.probed
	}
	s.stateMu.Unlock()
	return info
}

func (s *session) count(r Route) {
	s.srv.queries[r].Inc()
}

// upstreamLoop relays the warehouse's messages to the client until either
// side closes.
//
// When the connection ends on the warehouse's side the session goes on
// without it (reattach.go), unless the warehouse ended this session alone
// with a FATAL error, which the client sees and which ends it too.
//
// It returns errParked once the warehouse has been silent long enough for
// the loop to give up its goroutine (idle.go); done is the connection's,
// for the loop that resumes.
func (s *session) upstreamLoop(done chan struct{}) error {
	fatal := false
	// From here on every message goes to the client as it is, so one too
	// big to hold is relayed as it is read (during startup some are kept).
	s.upMsgs.stream = s.srv.upstreamStream
	for {
		if !s.upR.wait() {
			if !fatal && s.srv.idle.park(s.upR.idle, func() { go s.runUpstream(done) }) {
				return errParked
			}
			continue
		}
		msg, err := s.upMsgs.next()
		if err != nil {
			if !fatal && s.loseUpstream(err) {
				return err
			}
			s.clientMu.Lock()
			_ = s.clientW.Flush()
			s.clientMu.Unlock()
			s.closeConns()
			return err
		}
		switch {
		case msg.typ == 'S':
			s.noteParameter(msg.body)
		case msg.typ == 'E' && !isStatementError(msg.body):
			if s.survives(msg.body) {
				err := fmt.Errorf("warehouse error %s", errorCode(msg.body))
				if s.loseUpstream(err) {
					return err
				}
			}
			fatal = true
		case msg.typ == 'N' && shutdownNotice(msg.body):
			continue // the session outlives the backend
		}
		relay, terminate := s.observeUpstream(msg)
		s.clientMu.Lock()
		if relay {
			_, err = s.clientW.Write(msg.raw)
			if err == nil && msg.rest > 0 {
				err = s.upMsgs.relayRest(s.clientW)
			}
		}
		if err == nil && s.upR.Buffered() == 0 {
			err = s.clientW.Flush()
		}
		s.clientMu.Unlock()
		s.passed()
		if err != nil {
			s.closeConns()
			return err
		}
		if terminate {
			s.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
			return nil
		}
	}
}

// observeUpstream accounts for one warehouse message. It reports whether
// the client should see it, and whether a draining session has just become
// idle and should end now.
func (s *session) observeUpstream(msg message) (relay, terminate bool) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if head, ok := s.expect.peek(); ok {
		switch {
		case head.settings != nil && msg.typ == 'D':
			values, ok := decodeDataRow(msg.body)
			head.settings.values, head.settings.failed = values, head.settings.failed || !ok
		case head.settings != nil && msg.typ == 'E':
			head.settings.failed = true
		case head.resets != nil && msg.typ == 'C':
			s.resetDoneLocked(head, msg.body)
		}
		if head.copy != nil {
			copyObservedLocked(head, msg.typ)
		}
	}
	prev := byte(s.txStatus.Load())
	relay = s.observeExpect(msg.typ)
	if msg.typ == 'E' && !relay && !isStatementError(msg.body) {
		relay = true // a FATAL error ends the session: the client must see why
	}
	if msg.typ == 'Z' && len(msg.body) == 1 {
		s.txStatusLocked(prev, msg.body[0])
	}
	if s.expect.len() == 0 {
		s.passing = true // drained once the message is written (passed)
	}
	if msg.typ == 'Z' && s.draining && s.idleLocked() && !s.closing {
		s.closing = true
		terminate = true
	}
	return relay, terminate
}

// passed notes that the upstream loop has handed the client the message it
// observed last, and wakes a barrier waiting for that.
func (s *session) passed() {
	s.stateMu.Lock()
	if s.passing {
		s.passing = false
		s.drained.Broadcast()
	}
	s.stateMu.Unlock()
}

func (s *session) idleLocked() bool {
	return s.expect.len() == 0 && !s.inExtended && byte(s.txStatus.Load()) == 'I'
}

// drain asks the session to end as soon as it is idle: now if it is.
func (s *session) drain() {
	s.stateMu.Lock()
	s.draining = true
	now := s.idleLocked() && !s.closing
	if now {
		s.closing = true
	}
	s.stateMu.Unlock()
	if now {
		s.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
	}
}

// terminate tells the client why its session ends, says goodbye to the
// warehouse and closes both connections.
func (s *session) terminate(e *pgError) {
	s.clientMu.Lock()
	_, _ = s.clientW.Write(e.encode(nil))
	_ = s.clientW.Flush()
	s.clientMu.Unlock()
	s.upMu.Lock()
	if s.upstream != nil && !s.isDetached() {
		_ = s.upstream.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.upstream.Write([]byte{'X', 0, 0, 0, 4})
	}
	s.upMu.Unlock()
	s.closeConns()
}

// cancelUpstream forwards a client's CancelRequest to its warehouse backend.
func (s *session) cancelUpstream() {
	s.cancelAnswer()
	k := s.upKey.Load()
	if k == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.warehouse.cancel(ctx, k.pid, k.secret); err != nil {
		s.logger().Warn("cancel request not delivered", "err", err)
	}
}

// parseParse returns the statement name and query text of a Parse body.
func parseParse(body []byte) (name, query string, ok bool) {
	name, rest, ok := cutCString(body)
	if !ok {
		return "", "", false
	}
	query, _, ok = cutCString(rest)
	return name, query, ok
}

// parseBind returns the portal and statement names of a Bind body.
func parseBind(body []byte) (portal, stmt string, ok bool) {
	portal, rest, ok := cutCString(body)
	if !ok {
		return "", "", false
	}
	stmt, _, ok = cutCString(rest)
	return portal, stmt, ok
}

func errText(err error) string {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	return err.Error()
}
