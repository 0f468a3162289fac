package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// CleartextPolicy says when the proxy may ask a client for its password in
// clear text over a connection without TLS.
type CleartextPolicy string

// Cleartext policies, as in the config's auth.cleartext_without_tls.
const (
	CleartextNever    CleartextPolicy = "never"
	CleartextLoopback CleartextPolicy = "loopback"
	CleartextAlways   CleartextPolicy = "always"
)

// Options configure a Server.
type Options struct {
	// WarehouseDSN names the warehouse's host, port and sslmode. Its user and
	// password are not used for client sessions.
	WarehouseDSN string
	// TLS, when set, answers SSLRequest with 'S' and this configuration.
	TLS *tls.Config
	// Cleartext decides when a password may be asked for without TLS.
	Cleartext CleartextPolicy
	// ProxyTrusted are the load balancers that send a PROXY protocol
	// header before each client's bytes (proxy_protocol.trusted); a
	// connection from one must start with one. Empty: none may.
	ProxyTrusted []netip.Prefix
	// MaxMessageBytes limits one client message; 0 means 64 MiB.
	MaxMessageBytes int
	// Router decides each statement's route; nil passes everything through.
	Router Router
	// Prober names the session context read before local answers; nil
	// reads none (every session's context is then unknown to the Router).
	Prober Prober
	// Registerer receives the proxy's metrics; nil uses a private registry.
	Registerer prometheus.Registerer
	// StatementCacheSize is the number of parsed statement texts kept; 0 means 10000.
	StatementCacheSize int
	// OutageLogins lets clients log in while the warehouse is unreachable:
	// the proxy authenticates them itself, with SCRAM verifiers it holds,
	// when it started a session of the same login before (outage.go).
	OutageLogins bool
	// Verifiers, when set, reads the warehouse's SCRAM verifiers for roles
	// that log in, and again every VerifierRefresh (0: a minute) while the
	// warehouse is up (auth.query); nil: the proxy holds only the verifiers
	// relayed SCRAM logins prove (verifiers.go).
	Verifiers       VerifierLookup
	VerifierRefresh time.Duration
	// ParseLimits bound the statements given to the parser library; the
	// rest pass through unparsed. Zero fields take parselimit's defaults.
	ParseLimits parselimit.Limits
	// EventLoop serves sessions on plain sockets from shared event loops
	// instead of a goroutine pair each (netloop.go); Linux only.
	// EventLoops is how many, each session in one of them: 0 is half the
	// processors Go runs on (GOMAXPROCS), rounded up.
	EventLoop  bool
	EventLoops int
	// Logger logs what the proxy does; whether it takes debug records (the
	// per-statement log) is asked once, at New.
	Logger *slog.Logger
}

// Server accepts client sessions and relays them to the warehouse.
type Server struct {
	opts      Options
	warehouse *warehouse
	router    Router
	stmts     *statementCache
	limits    parselimit.Limits // opts.ParseLimits with the defaults filled in
	metrics   *Metrics
	// bufs are the buffers sessions read and write through, and the
	// stream policies say which messages are relayed as they are read
	// rather than held whole (wire.go).
	bufs           *bufferPool
	clientStream   *streamPolicy
	upstreamStream *streamPolicy
	log            *slog.Logger
	// logStatements: the logger takes debug records.
	logStatements bool
	// params are the sessions' reported parameters, shared (session_params.go).
	params paramMaps
	// fallbackLog limits the warnings about answers that fell back.
	fallbackLog *fallbackLimiter
	// monitor follows whether the warehouse is up; verifiers and logins
	// are what the proxy needs to start sessions while it is not
	// (outage.go). The background work they do runs from the first Serve
	// until Shutdown (bgStop).
	monitor   *warehouseMonitor
	verifiers *verifierCache
	logins    *loginMemos
	bgOnce    sync.Once
	bgStop    context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	// sessions holds every session from its startup packet on, for Shutdown;
	// keys only those whose client was given BackendKeyData, by that key.
	sessions map[*session]struct{}
	keys     map[cancelKey]*session
	// random is where cancel secrets come from: crypto/rand, or a test's
	// reader that makes them collide.
	random   io.Reader
	draining bool
	// wg counts sessions until they end (session.end), whether a
	// goroutine serves them or they are parked.
	wg sync.WaitGroup
	// idle parks silent connections' loops; idleClock is its sweeper's
	// tick count, from 1; idleTick how often it ticks (idle.go).
	idle *idlePoller
	// loops are the shared event loops, none without Options.EventLoop;
	// sessions join them in turn (nextLoop).
	loops     []*netLoop
	nextLoop  atomic.Uint32
	idleClock atomic.Int64
	idleTick  time.Duration

	ready atomic.Bool
}

// cancelKey is the BackendKeyData the proxy hands a client: the warehouse
// backend's real pid, which clients compare with pg_backend_pid(),
// pg_stat_activity and the sender of a notification, and a secret of the
// proxy's own. A CancelRequest finds its session by both, and the proxy
// forwards it with the backend's real secret, which no client ever sees.
type cancelKey struct {
	pid    uint32
	secret uint32
}

// NewServer checks the options and prepares a server; nothing listens yet.
func NewServer(opts Options) (*Server, error) {
	w, err := newWarehouse(opts.WarehouseDSN)
	if err != nil {
		return nil, err
	}
	switch opts.Cleartext {
	case "":
		opts.Cleartext = CleartextLoopback
	case CleartextNever, CleartextLoopback, CleartextAlways:
	default:
		return nil, fmt.Errorf("unknown cleartext policy %q", opts.Cleartext)
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 64 << 20
	}
	if opts.StatementCacheSize <= 0 {
		opts.StatementCacheSize = 10000
	}
	limits := opts.ParseLimits.WithDefaults()
	if opts.Router == nil {
		opts.Router = PassthroughRouter{}
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.VerifierRefresh <= 0 {
		opts.VerifierRefresh = time.Minute
	}
	check, err := knockCheck(w, opts.WarehouseDSN)
	if err != nil {
		return nil, fmt.Errorf("warehouse dsn: %w", err)
	}
	s := &Server{
		opts:           opts,
		warehouse:      w,
		router:         opts.Router,
		stmts:          newStatementCache(opts.StatementCacheSize, statementCacheBytes, limits),
		limits:         limits,
		metrics:        NewMetrics(opts.Registerer),
		bufs:           newBufferPool(),
		clientStream:   clientStreamPolicy(limits),
		upstreamStream: upstreamStreamPolicy(),
		log:            opts.Logger,
		fallbackLog:    newFallbackLimiter(fallbackLogEvery),
		listeners:      map[net.Listener]struct{}{},
		sessions:       map[*session]struct{}{},
		keys:           map[cancelKey]*session{},
		random:         rand.Reader,
		logins:         newLoginMemos(),
		bgStop:         func() {},
		idleTick:       idleTick,
	}
	s.idleClock.Store(1)
	s.monitor = newWarehouseMonitor(check, s.metrics.WarehouseUp, opts.Logger)
	s.verifiers = newVerifierCache(opts.Verifiers, opts.VerifierRefresh, opts.Logger)
	s.metrics.Statements.gather = s.gatherRelayed
	s.logStatements = opts.Logger.Enabled(context.Background(), slog.LevelDebug)
	s.registerLoopMetrics(opts.Registerer)
	return s, nil
}

// Ready reports whether the server accepts sessions.
func (s *Server) Ready() bool { return s.ready.Load() }

// probe returns the Probe sessions must read now; nil when there is none.
func (s *Server) probe() *Probe {
	if s.opts.Prober == nil {
		return nil
	}
	return s.opts.Prober.Probe()
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts client connections on l until Shutdown. It always returns a
// non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.bgOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.bgStop = cancel
		go s.monitor.run(ctx)
		go s.verifiers.run(ctx, s.monitor.isUp)
		if s.idleTick > 0 {
			idle, err := newIdlePoller()
			if err != nil {
				s.log.Warn("idle sessions keep their goroutines", "err", err)
			}
			s.idle = idle
			go s.sweepIdle(ctx, s.idleTick)
		}
		if s.opts.EventLoop {
			loops, err := newNetLoops(s.opts.EventLoops, s.log)
			if err != nil {
				s.log.Warn("sessions keep a goroutine pair each", "err", err)
			}
			s.loops = loops
		}
	})
	s.mu.Unlock()
	s.ready.Store(true)
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

// Shutdown stops accepting connections and drains sessions: idle ones end at
// once with Postgres's "terminating connection due to administrator command",
// busy ones after their current statement or transaction. When ctx ends
// first, the remaining sessions are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.ready.Store(false)
	s.bgStop()
	for l := range s.listeners {
		l.Close()
	}
	sessions := s.sessionsLocked()
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.drain()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.idle.close()
		closeLoops(s.loops)
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			sess.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
		}
		s.mu.Unlock()
		<-done
		s.idle.close()
		closeLoops(s.loops)
		return ctx.Err()
	}
}

// sweepIdle asks the loops of connections silent for idleTicks ticks to
// park (idle.go), until ctx ends.
func (s *Server) sweepIdle(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tick := s.idleClock.Add(1)
		s.mu.Lock()
		for sess := range s.sessions {
			sess.kickIfIdle(tick)
		}
		s.mu.Unlock()
	}
}

// register notes a session that has sent its startup packet. It fails when
// the server is shutting down, so that no session starts after a drain began.
func (s *Server) register(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return newError(severityFatal, sqlstate.CannotConnectNow, "the database system is shutting down")
	}
	s.sessions[sess] = struct{}{}
	s.metrics.ClientConnections.Inc()
	return nil
}

// assignKey gives a registered session the BackendKeyData its client gets:
// pid, the warehouse backend's, with a random secret of the proxy's. One
// warehouse never runs two backends with the same pid at once, but a pid
// may be reused while the proxy still winds down the session that had it,
// and several warehouse hosts may hand out the same one; the secret tells
// such sessions apart, and is drawn again in the rare case that the pair is
// taken. A session given a key before gives it up for the new one.
func (s *Server) assignKey(sess *session, pid uint32) (cancelKey, error) {
	var b [4]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.keyed && s.keys[sess.key] == sess {
		delete(s.keys, sess.key)
	}
	for {
		if _, err := io.ReadFull(s.random, b[:]); err != nil {
			return cancelKey{}, fmt.Errorf("cancel key: %w", err)
		}
		key := cancelKey{pid: pid, secret: binary.BigEndian.Uint32(b[:])}
		if _, taken := s.keys[key]; !taken {
			s.keys[key] = sess
			sess.key, sess.keyed = key, true
			return key, nil
		}
	}
}

// unregister forgets a session and its cancel key.
func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.keyed && s.keys[sess.key] == sess {
		delete(s.keys, sess.key)
	}
	if _, ok := s.sessions[sess]; ok {
		delete(s.sessions, sess)
		s.metrics.ClientConnections.Dec()
	}
}

// cancel handles a CancelRequest: the session it names, if any, stops the
// answer the proxy is computing for it and forwards the cancel to its
// warehouse backend. Like Postgres, it tells the requester nothing either way.
func (s *Server) cancel(key cancelKey) {
	s.mu.Lock()
	sess := s.keys[key]
	s.mu.Unlock()
	if sess == nil {
		s.log.Debug("cancel request for an unknown session")
		return
	}
	sess.cancelUpstream()
}

// fallback counts a statement meant for the proxy that the warehouse answered.
// Reasons come from a short fixed list, so the label stays bounded.
func (s *Server) fallback(reason string) {
	s.metrics.Fallbacks.WithLabelValues(reason).Inc()
}
