package proxy

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The session type, how it is made, and its two connections. Its methods
// are grouped by concern in the files beside this one:
//
//   - session_lifecycle.go: running the loops' goroutines, draining, ending
//   - session_startup.go: the startup packet and the login
//   - session_auth.go: authentication, relayed or the proxy's own
//   - session_params.go: the parameters the warehouse reports
//   - session_loops.go: the client and upstream loops
//   - session_barrier.go: an answer of the proxy's waits for its turn
//   - session_local.go: statements and portals the proxy answers itself
//   - session_answer.go: routing a statement and running its answer
//   - session_interrupt.go: cancel requests and statement_timeout
//   - session_upstream.go: relaying to the warehouse, and what was relayed
//   - session_settings.go: the settings local answers depend on
//   - session_tx.go: the warehouse's transaction
//   - session_resets.go: DEALLOCATE, DISCARD ALL and CLOSE ALL
//   - session_copy.go: Sync during COPY FROM STDIN
//   - session_duration.go: counting and timing statements
//   - session_loss.go: losing the warehouse connection
//   - session_reattach.go: opening a new one
//   - session_offline.go: answering without one

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
	// clientHeld: writeClient buffered messages that flushClient has not
	// flushed; every other write to clientW flushes at once. Set with
	// clientMu held; flushClient takes the lock only when it is set.
	clientHeld atomic.Bool

	// upstream is the warehouse connection, replaced when a lost one is
	// opened again (session_reattach.go); upMu guards it against a
	// concurrent close.
	upMu     sync.Mutex
	upstream net.Conn
	upR      *connReader
	upMsgs   *messageReader
	upW      *upstreamWriter // client loop only
	// upFatal: the warehouse sent a FATAL error; upstream loop only.
	upFatal bool

	txStatus atomic.Uint32

	stateMu sync.Mutex
	// drained is signalled (with stateMu) when expect empties and the
	// message that emptied it is with the client.
	drained *sync.Cond
	// passing: the upstream loop is relaying the message that emptied
	// expect, which an answer of the proxy's must not overtake. Set with
	// stateMu held; cleared without it by the upstream loop (passed).
	passing atomic.Bool
	// answerWaiters counts the barriers waiting on drained, counted with
	// stateMu held: passed takes the lock to wake them only when there
	// are some.
	answerWaiters atomic.Int32
	expect        expectQueue
	inExtended    bool // extended-protocol messages since the last Sync
	draining      bool
	closing       bool
	// tx is what the proxy knows of the warehouse's transaction
	// (session_tx.go), set of the settings local answers depend on
	// (session_settings.go).
	tx  txState
	set settingsState
	// The warehouse connection's life (session_loss.go): upGen counts lost
	// connections; upDone (below) is closed when the current connection's
	// upstream loop ends, lossReport is the loss still to be reported to
	// the next statement, lossOpenBatch that the loss failed a batch not
	// yet synced.
	upGen atomic.Uint64 // written with stateMu held
	// detached: the session has no warehouse connection now.
	detached atomic.Bool
	// dirty: the session relayed a statement that may have left state on
	// the warehouse that a new connection would not have (session_settings.go).
	dirty atomic.Bool

	// Client loop only: statements and portals the proxy answers itself,
	// and the state of the extended-protocol batch up to the next Sync.
	localStmts    map[string]*localStatement
	localPortals  map[string]*localPortal
	batchUpstream bool           // a message of this batch went to the warehouse
	batchFailed   bool           // a local message of this batch failed: skip to Sync
	clock         statementClock // session_duration.go
	// relayed tallies the statements the warehouse answered, until the
	// metrics gather it (statement_metrics.go). Guarded by stateMu.
	relayed tally
	// plainQuery is the Statement of the last plain Query relayed, reused
	// for the next (relayPlainQuery); nil until the first.
	plainQuery *Statement

	// Client loop only: what was relayed (session_upstream.go). upStmts and
	// upPortals are the statements and portals on the warehouse, the
	// portals by the statement they run.
	upStmts   upstreamNames
	upPortals upstreamNames
	// finishedStmt is the client's statement the warehouse last finished
	// as prepared or bound, and finishedOrigins the origins descriptions of
	// it must name (session_finish.go). Client loop only.
	finishedStmt    *Statement
	finishedOrigins []ColumnOrigin
	// finishedPrepared: the statement finishedName may exist on the
	// warehouse (session_finish.go).
	finishedPrepared bool
	batchAt          time.Time  // arrival of the current batch's first message
	batchNewTx       bool       // the batch may have ended a transaction
	batchMayCopy     bool       // a statement relayed since the last sync point may be COPY
	copyPending      *copyStart // a COPY relayed that may be in copy-in (session_copy.go)
	resetsPending    bool       // a statement relayed may drop statements or portals the proxy holds

	// Client loop only: the lost connections accounted for (upGen).
	seenGen uint64

	// group is the session's sockets in the shared event loop
	// (netloop.go), nil when it does not use it.
	group *connGroup

	// What follows is read at startup, on a reconnection, for a local
	// answer or at the end, and kept apart from what every relayed message
	// touches, so that the latter takes fewer cache lines.

	// out collects messages to the client during startup, before clientW.
	out []byte

	user, database string
	password       *string
	upKey          atomic.Pointer[upstreamKey]
	params         atomic.Pointer[map[string]string]

	// startup is the client's startup message as the proxy sends it to
	// the warehouse, loginKey the login it makes (logins.go); keys, for a
	// client the proxy authenticated itself with SCRAM, prove it to the
	// warehouse (session_reattach.go).
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

	// resetsDone are DEALLOCATEs and the like the warehouse completed, for
	// the client loop to apply (session_resets.go).
	resetsDone []resetOp
	// The warehouse connection's life, with upGen above.
	upDone        chan struct{}
	lossReport    *pgError
	lossOpenBatch bool

	sessInfo SessionInfo
	// beginSQL is the BEGIN of a block opened while detached, replayed on
	// the next connection (client loop only).
	beginSQL string

	closeOnce sync.Once
}

type upstreamKey struct {
	pid    uint32
	secret []byte
}

func (s *Server) serveConn(conn net.Conn) {
	conn, ok := s.acceptProxyHeader(conn)
	if !ok {
		s.wg.Done()
		return
	}
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
	s.clientW = newConnWriter(socketWriter(c), s.srv.bufs)
}

// setUpstreamConn makes c the session's warehouse connection. It reports
// false, and keeps nothing, when the session is closing.
func (s *session) setUpstreamConn(c net.Conn) bool {
	if s.group != nil {
		c = s.group.take(c)
	}
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.upstream = c
	s.upR = newConnReader(c, s.srv.bufs)
	s.upR.idle = newIdleWait(c, &s.srv.idleClock)
	if s.group != nil {
		s.upR.yield = s.group.yield
	}
	s.upMsgs = newMessageReader(s.upR, 0)
	s.upW = &upstreamWriter{w: newConnWriter(socketWriter(c), s.srv.bufs), conn: c, r: s.upR}
	return true
}

// joinLoop moves the client's connection into the shared event loop, when
// there is one, the connection is a plain socket and the warehouse's may be
// one too; the warehouse connections follow it (setUpstreamConn). Called
// once the startup packet is read and TLS decided, before any other
// goroutine sees the session.
func (s *session) joinLoop() {
	if len(s.srv.loops) == 0 || s.tls || s.srv.warehouse.alwaysTLS() {
		return // an inline callback needs both sockets plain
	}
	g := newConnGroup(s.srv.loops[s.srv.nextLoop.Add(1)%uint32(len(s.srv.loops))])
	c := g.take(s.client)
	if c == s.client {
		return
	}
	s.group = g
	s.clock.group = g
	s.client = c
	s.clientR.rd = c
	s.clientR.raw = eventConn(c)
	s.clientR.idle = newIdleWait(c, &s.srv.idleClock)
	s.clientR.yield = g.yield
	s.clientW.wr = socketWriter(c)
}

func (s *session) writeUpstream(b []byte) error {
	_, err := s.upstream.Write(b)
	return err
}

// writeClient appends messages to the client under clientMu.
func (s *session) writeClient(b []byte) error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if !s.clientHeld.Load() {
		s.clientHeld.Store(true)
	}
	_, err := s.clientW.Write(b)
	return err
}

// flushClient sends what writeClient buffered. A batch the warehouse
// answers has nothing of the proxy's to send, and costs no lock here.
func (s *session) flushClient() error {
	if !s.clientHeld.Load() {
		return nil
	}
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.clientHeld.Store(false)
	return s.clientW.Flush()
}
