package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	// MaxMessageBytes limits one client message; 0 means 64 MiB.
	MaxMessageBytes int
	// Router decides each statement's route; nil passes everything through.
	Router Router
	// Registerer receives the proxy's metrics; nil uses a private registry.
	Registerer prometheus.Registerer
	// StatementCacheSize is the number of parsed statement texts kept; 0 means 10000.
	StatementCacheSize int
	Logger             *slog.Logger
}

// Server accepts client sessions and relays them to the warehouse.
type Server struct {
	opts      Options
	warehouse *warehouse
	router    Router
	stmts     *statementCache
	metrics   *Metrics
	queries   map[Route]prometheus.Counter
	log       *slog.Logger
	// fallbackLog limits the warnings about answers that fell back.
	fallbackLog *fallbackLimiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[cancelKey]*session
	draining  bool
	wg        sync.WaitGroup

	ready atomic.Bool
}

// cancelKey is the BackendKeyData the proxy hands a client. It is the proxy's
// own, so that a client's CancelRequest finds its session and never names an
// upstream backend directly.
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
	if opts.Router == nil {
		opts.Router = PassthroughRouter{}
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:        opts,
		warehouse:   w,
		router:      opts.Router,
		stmts:       newStatementCache(opts.StatementCacheSize),
		metrics:     NewMetrics(opts.Registerer),
		log:         opts.Logger,
		fallbackLog: newFallbackLimiter(fallbackLogEvery),
		listeners:   map[net.Listener]struct{}{},
		sessions:    map[cancelKey]*session{},
	}
	s.queries = map[Route]prometheus.Counter{}
	for _, r := range []Route{RoutePassthrough, RouteRollup, RouteAdmin, RouteError} {
		s.queries[r] = s.metrics.Queries.WithLabelValues(string(r))
	}
	return s, nil
}

// Ready reports whether the server accepts sessions.
func (s *Server) Ready() bool { return s.ready.Load() }

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
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
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
	for l := range s.listeners {
		l.Close()
	}
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
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
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for _, sess := range s.sessions {
			sess.terminate(newError(severityFatal, codeAdminShutdown, "terminating connection due to administrator command"))
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// register gives a session its cancel key. It fails when the server is
// shutting down, so that no session starts after a drain began.
func (s *Server) register(sess *session) (cancelKey, error) {
	var b [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return cancelKey{}, newError(severityFatal, codeCannotConnectNow, "the database system is shutting down")
	}
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return cancelKey{}, fmt.Errorf("cancel key: %w", err)
		}
		// Postgres pids are positive int32s; some clients assume so.
		key := cancelKey{pid: binary.BigEndian.Uint32(b[:4])&0x3fffffff | 1, secret: binary.BigEndian.Uint32(b[4:])}
		if _, taken := s.sessions[key]; !taken {
			s.sessions[key] = sess
			s.metrics.ClientConnections.Inc()
			return key, nil
		}
	}
}

func (s *Server) unregister(key cancelKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[key]; ok {
		delete(s.sessions, key)
		s.metrics.ClientConnections.Dec()
	}
}

// cancel handles a CancelRequest: the session it names, if any, forwards it
// upstream. Like Postgres, it tells the requester nothing either way.
func (s *Server) cancel(key cancelKey) {
	s.mu.Lock()
	sess := s.sessions[key]
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
