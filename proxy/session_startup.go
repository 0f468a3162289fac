package proxy

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// errSessionDone ends a connection quietly: a cancel request was handled,
// or the client left during authentication.
var errSessionDone = errors.New("session done")

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
			if len(msg.body) >= 4 {
				switch binary.BigEndian.Uint32(msg.body[:4]) {
				case 3, 5:
					method = authOther
				case 10:
					method = authSCRAM
				}
			}
			done, err := s.authStep(msg.body, &scram, s.clientPassword, nil)
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
			if len(msg.body) < 8 {
				return newError(severityFatal, sqlstate.ProtocolViolation, "invalid BackendKeyData from the warehouse")
			}
			pid := binary.BigEndian.Uint32(msg.body[:4])
			s.upKey.Store(&upstreamKey{pid: pid, secret: append([]byte(nil), msg.body[4:]...)})
			k, err := s.srv.assignKey(s, pid)
			if err != nil {
				return err
			}
			var key [8]byte
			binary.BigEndian.PutUint32(key[:4], k.pid)
			binary.BigEndian.PutUint32(key[4:], k.secret)
			s.out = appendMessage(s.out, 'K', key[:])
		case 'S':
			s.noteParameter(msg.body)
			if name, value, ok := parameterStatus(msg.body); ok {
				statuses = append(statuses, [2]string{name, value})
			}
			s.out = append(s.out, msg.raw...)
		case 'Z':
			if len(msg.body) == 1 {
				s.txStatus.Store(uint32(msg.body[0]))
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
			if survivableCode(errorCode(msg.body)) {
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

// readStartupSettings reads the settings local answers depend on
// (settings.go) on a connection that has just started, before the
// session's loops run on it. They may come from the startup packet,
// postgresql.conf, ALTER ROLE or ALTER DATABASE, which only the warehouse
// can tell. If the read fails they stay unknown, and the first local answer
// that needs them reads them again. It returns what it read, and lost when
// the read failed because the connection ended.
func (s *session) readStartupSettings() (set sessionSettings, known, lost bool) {
	probe := s.srv.probe()
	if err := s.writeUpstream(appendMessage(nil, 'Q', appendCString(nil, settingsSQL(probe)))); err != nil {
		return sessionSettings{}, false, true
	}
	var values []string
	failed := false
	for {
		msg, err := s.upMsgs.next()
		if err != nil {
			return sessionSettings{}, false, true
		}
		switch msg.typ {
		case 'D':
			var ok bool
			values, ok = decodeDataRow(msg.body)
			failed = failed || !ok
		case 'E':
			failed = true
		case 'Z':
			if failed {
				return sessionSettings{}, false, false
			}
			v, err := parseSettings(values, probe)
			if err != nil {
				s.logger().Warn("cannot read the session's settings and context", "err", err)
				return sessionSettings{}, false, false
			}
			s.startedWith(v)
			return v, true, false
		}
	}
}

// startedWith makes set the settings of a session that has just started.
func (s *session) startedWith(set sessionSettings) {
	s.stateMu.Lock()
	s.set.sessionSettings, s.set.known = set, true
	s.set.defaults, s.set.defaultsKnown = set, true
	s.set.staleAtBlockEnd, s.set.readAtBlockEnd, s.set.readWanted = false, false, false
	s.stateMu.Unlock()
}

// borrowSettings starts the session with the settings the last session of
// its login read (logins.go), when they hold for the current Probe.
func (s *session) borrowSettings() (sessionSettings, bool) {
	memo := s.srv.logins.get(s.loginKey)
	if memo == nil {
		return sessionSettings{}, false
	}
	set, ok := memo.settingsFor(s.srv.probe())
	if ok {
		s.startedWith(set)
	}
	return set, ok
}

// authStep answers one Authentication message from the warehouse with the
// client's password, which password returns (asking the client for it when
// relaying a login), or for SCRAM with keys when the session has them. It
// returns done when the message is AuthenticationOk.
func (s *session) authStep(body []byte, scram **scramClient, password func() (string, error), keys *scramKeys) (done bool, err error) {
	if len(body) < 4 {
		return false, newError(severityFatal, sqlstate.ProtocolViolation, "invalid authentication message from the warehouse")
	}
	data := body[4:]
	switch kind := binary.BigEndian.Uint32(body[:4]); kind {
	case 0: // AuthenticationOk
		return true, nil
	case 3: // cleartext
		pw, err := password()
		if err != nil {
			return false, err
		}
		return false, s.writeUpstream(appendMessage(nil, 'p', appendCString(nil, pw)))
	case 5: // MD5 with a 4-byte salt
		if len(data) != 4 {
			return false, newError(severityFatal, sqlstate.ProtocolViolation, "invalid MD5 salt from the warehouse")
		}
		pw, err := password()
		if err != nil {
			return false, err
		}
		inner := md5.Sum([]byte(pw + s.user))
		outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), data...))
		return false, s.writeUpstream(appendMessage(nil, 'p', appendCString(nil, "md5"+hex.EncodeToString(outer[:]))))
	case 10: // SASL: the mechanisms the warehouse offers
		if !offers(data, scramMechanism) {
			return false, newError(severityFatal, sqlstate.InvalidAuthorizationSpecification, "pgrollup: the warehouse offers no SASL mechanism the proxy supports (it supports SCRAM-SHA-256)")
		}
		var c *scramClient
		if keys != nil {
			c, err = newScramClientKeys(keys)
		} else {
			var pw string
			if pw, err = password(); err != nil {
				return false, err
			}
			c, err = newScramClient(pw)
		}
		if err != nil {
			return false, err
		}
		*scram = c
		first := c.firstMessage()
		msg := appendCString(nil, scramMechanism)
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(first)))
		msg = append(msg, first...)
		return false, s.writeUpstream(appendMessage(nil, 'p', msg))
	case 11: // SASL continue
		if *scram == nil {
			return false, newError(severityFatal, sqlstate.ProtocolViolation, "unexpected SASL continue from the warehouse")
		}
		final, err := (*scram).finalMessage(data)
		if errors.Is(err, errVerifierChanged) {
			return false, err
		}
		if err != nil {
			return false, newError(severityFatal, sqlstate.ProtocolViolation, "pgrollup: "+err.Error())
		}
		return false, s.writeUpstream(appendMessage(nil, 'p', final))
	case 12: // SASL final
		if *scram == nil {
			return false, newError(severityFatal, sqlstate.ProtocolViolation, "unexpected SASL final from the warehouse")
		}
		if err := (*scram).verifyFinal(data); err != nil {
			return false, newError(severityFatal, sqlstate.InvalidAuthorizationSpecification, "pgrollup: "+err.Error())
		}
		return false, nil
	default:
		return false, newError(severityFatal, sqlstate.FeatureNotSupported,
			fmt.Sprintf("pgrollup: the warehouse asks for authentication method %d, which the proxy cannot relay", kind))
	}
}

// offers reports whether a NUL-separated SASL mechanism list holds name.
func offers(list []byte, name string) bool {
	for {
		mech, rest, ok := cutCString(list)
		if !ok || mech == "" {
			return false
		}
		if mech == name {
			return true
		}
		list = rest
	}
}

// clientPassword asks the client for its password in clear text, once, if
// the policy allows it on this connection.
func (s *session) clientPassword() (string, error) {
	if s.password != nil {
		return *s.password, nil
	}
	if !s.cleartextAllowed() {
		e := newError(severityFatal, sqlstate.InvalidAuthorizationSpecification, "pgrollup: the warehouse asks for a password, and the proxy accepts passwords only over TLS on this connection")
		e.Hint = "Connect with sslmode=require, or set auth.cleartext_without_tls in the pgrollup config."
		return "", e
	}
	s.out = appendMessage(s.out, 'R', binary.BigEndian.AppendUint32(nil, 3))
	if err := s.flushOut(); err != nil {
		return "", err
	}
	msg, err := s.clientMsgs.next()
	if err != nil {
		// libpq clients hang up here to prompt for a password and come back.
		return "", errSessionDone
	}
	if msg.typ != 'p' {
		return "", newError(severityFatal, sqlstate.ProtocolViolation, fmt.Sprintf("expected password response, got message type %d", msg.typ))
	}
	pw, _, ok := cutCString(msg.body)
	if !ok {
		return "", newError(severityFatal, sqlstate.ProtocolViolation, "invalid password packet")
	}
	s.password = &pw
	return pw, nil
}

func (s *session) cleartextAllowed() bool {
	switch s.srv.opts.Cleartext {
	case CleartextAlways:
		return true
	case CleartextNever:
		return s.tls
	default:
		return s.tls || isLoopback(s.client.RemoteAddr())
	}
}

func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
