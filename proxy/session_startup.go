package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// A session's start: the startup packet (with SSL, GSSENC and cancel
// requests, and protocol negotiation) and the login, which the warehouse
// does through the proxy or, when it is unreachable, the proxy itself
// (session_auth.go).

// errSessionDone ends a connection quietly: a cancel request was handled,
// or the client left during authentication.
var errSessionDone = errors.New("session done")

// errWarehouseUnreachable: the warehouse could not be reached, or said it
// accepts no connections now, before it authenticated the client;
// errWarehouseGoneAuthed: it went away after it authenticated the client,
// before the session started.
var (
	errWarehouseUnreachable = errors.New("the warehouse is unreachable")
	errWarehouseGoneAuthed  = errors.New("the warehouse went away as the session started")
)

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
	s.joinLoop()
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
	if pe == errUntrustedProxyHeader {
		s.logger().Warn("PROXY protocol header refused: the peer is not in proxy_protocol.trusted", "peer", s.client.RemoteAddr().String())
		s.out = pe.encode(s.out)
		_ = s.flushOut()
		// The rest of the header is unread: the error must arrive first.
		closeUnread(s.client)
		return
	}
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

// acceptStartup reads packets until a StartupMessage, answering SSLRequest
// and GSSENCRequest on the way. A CancelRequest is handled and ends the
// connection with errSessionDone.
func (s *session) acceptStartup() (map[string]string, error) {
	for {
		code, body, err := readStartupPacket(s.client)
		if err != nil {
			return nil, err
		}
		switch {
		case code == sslRequestCode:
			if err := s.answerSSLRequest(); err != nil {
				return nil, err
			}
		case code == gssEncRequestCode:
			if _, err := s.client.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case code == cancelRequestCode:
			if len(body) < 8 {
				return nil, newError(severityFatal, sqlstate.ProtocolViolation, "invalid length of cancel request packet")
			}
			s.srv.cancel(cancelKey{pid: binary.BigEndian.Uint32(body[:4]), secret: binary.BigEndian.Uint32(body[4:8])})
			return nil, errSessionDone
		case code>>16 == 3:
			params, err := parseStartupParameters(body)
			if err != nil {
				return nil, err
			}
			s.negotiateMinor(code&0xffff, params)
			return params, nil
		default:
			return nil, newError(severityFatal, sqlstate.FeatureNotSupported,
				fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff))
		}
	}
}

func (s *session) answerSSLRequest() error {
	if s.srv.opts.TLS == nil || s.tls {
		_, err := s.client.Write([]byte{'N'})
		return err
	}
	// Bytes the client pipelined after SSLRequest would be read as plaintext
	// by us and as ciphertext by nobody: Postgres refuses that (CVE-2021-23214).
	if s.clientR.Buffered() > 0 {
		return newError(severityFatal, sqlstate.ProtocolViolation, "received unencrypted data after SSL request")
	}
	if _, err := s.client.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(s.client, s.srv.opts.TLS)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	s.setClientConn(tc)
	s.tls = true
	return nil
}

// negotiateMinor answers a client asking for protocol 3.x (x > 0) or for
// _pq_ options: the proxy speaks 3.0 and recognises no options, and says so
// with NegotiateProtocolVersion as Postgres does.
func (s *session) negotiateMinor(minor uint32, params map[string]string) {
	var unknown []string
	for name := range params {
		if strings.HasPrefix(name, "_pq_.") {
			unknown = append(unknown, name)
			delete(params, name)
		}
	}
	if minor == 0 && len(unknown) == 0 {
		return
	}
	body := binary.BigEndian.AppendUint32(nil, 0)
	body = binary.BigEndian.AppendUint32(body, uint32(len(unknown)))
	for _, name := range unknown {
		body = appendCString(body, name)
	}
	s.out = appendMessage(s.out, 'v', body)
}

// startUpstream opens the client's own warehouse session: it relays the
// startup parameters, completes authentication with the client's password
// when the warehouse asks for one, and relays everything up to the first
// ReadyForQuery. The client's BackendKeyData carries the backend's pid and a
// secret of the proxy's (Server.assignKey), so that its CancelRequests come
// to the proxy, which also stops its own answers.
//
// It returns errWarehouseUnreachable, with nothing sent to the client yet
// but what the client must answer (a password request), when the warehouse
// cannot be reached or accepts no connections before it authenticated the
// client: the proxy may then authenticate it itself. When the warehouse goes
// away after it authenticated the client, before the session started, it
// returns errWarehouseGoneAuthed, with nothing of the session sent yet.
//
// A login the warehouse lets in is remembered (logins.go), and so is the
// SCRAM verifier a relayed SCRAM exchange proved (verifiers.go).
func (s *session) startUpstream(ctx context.Context, params map[string]string) error {
	conn, err := s.srv.warehouse.connect(ctx)
	if err != nil {
		// The address is for the log only: the client is not
		// authenticated, and learns nothing of the warehouse.
		s.srv.log.Debug("cannot reach the warehouse", "err", err)
		return errWarehouseUnreachable
	}
	if !s.setUpstreamConn(conn) {
		conn.Close()
		return errSessionDone
	}
	if err := s.writeUpstream(startupMessage(params)); err != nil {
		return errWarehouseUnreachable
	}

	var scram *scramClient
	method := authTrust
	authed := false
	authedAt := 0 // where AuthenticationOk starts in s.out
	var statuses [][2]string
	for {
		msg, err := s.upMsgs.next()
		if err != nil {
			if !authed {
				return errWarehouseUnreachable
			}
			s.out = s.out[:authedAt]
			return errWarehouseGoneAuthed
		}
		switch msg.typ {
		case 'R':
			if len(msg.body()) >= 4 {
				switch binary.BigEndian.Uint32(msg.body()[:4]) {
				case 3, 5:
					method = authOther
				case 10:
					method = authSCRAM
				}
			}
			done, err := s.authStep(msg.body(), &scram, s.clientPassword, nil)
			if err != nil {
				return err
			}
			if done {
				authed, authedAt = true, len(s.out)
				if scram != nil {
					// The warehouse signed the exchange: the client's
					// password is right, and this is its verifier.
					s.srv.verifiers.learn(s.user, scram.learned())
				}
				s.out = append(s.out, msg.raw...)
			}
		case 'K':
			if len(msg.body()) < 8 {
				return newError(severityFatal, sqlstate.ProtocolViolation, "invalid BackendKeyData from the warehouse")
			}
			pid := binary.BigEndian.Uint32(msg.body()[:4])
			s.upKey.Store(&upstreamKey{pid: pid, secret: append([]byte(nil), msg.body()[4:]...)})
			k, err := s.srv.assignKey(s, pid)
			if err != nil {
				return err
			}
			var key [8]byte
			binary.BigEndian.PutUint32(key[:4], k.pid)
			binary.BigEndian.PutUint32(key[4:], k.secret)
			s.out = appendMessage(s.out, 'K', key[:])
		case 'S':
			s.noteParameter(msg.body())
			if name, value, ok := parameterStatus(msg.body()); ok {
				statuses = append(statuses, [2]string{name, value})
			}
			s.out = append(s.out, msg.raw...)
		case 'Z':
			if len(msg.body()) == 1 {
				s.txStatus.Store(uint32(msg.body()[0]))
			}
			// Held back until the first ReadyForQuery: the client's
			// first statement must not overtake this read. The read
			// reuses the reader's buffer, which msg lives in.
			ready := append([]byte(nil), msg.raw...)
			set, known, lost := s.readStartupSettings()
			if lost {
				// The warehouse went away as the session started: it
				// starts as a session of its login would during the
				// outage, rather than without a context for its length.
				set, known = s.borrowSettings()
			}
			s.srv.logins.started(s.loginKey, method, statuses, set, known)
			if method == authSCRAM {
				s.srv.verifiers.loggedIn(s.user)
			}
			s.out = append(s.out, ready...)
			return s.flushOut()
		case 'E':
			if survivableCode(errorCode(msg.body())) {
				// Starting up, shutting down, or recovering: the proxy
				// may stand in for it.
				if !authed {
					return errWarehouseUnreachable
				}
				s.out = s.out[:authedAt]
				return errWarehouseGoneAuthed
			}
			// The warehouse's own refusal (wrong password, no such database)
			// reaches the client unchanged.
			s.out = append(s.out, msg.raw...)
			_ = s.flushOut()
			return errSessionDone
		case 'v':
			// We ask for 3.0 with no options, so there is nothing to settle.
		default:
			s.out = append(s.out, msg.raw...)
		}
	}
}
