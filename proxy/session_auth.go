package proxy

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// Authentication: answering the warehouse's requests for the client's
// credentials, on a relayed login and when a session reattaches, and
// authenticating the client itself while the warehouse is unreachable.

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
	pw, _, ok := cutCString(msg.body())
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
	mech, rest, ok := cutCString(msg.body())
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
	final, clientKey, err := srv.final(msg.body())
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
