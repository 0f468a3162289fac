package proxy

import (
	"bytes"
	"encoding/binary"
)

// A statement the warehouse finishes: its aggregate core is answered from a
// rollup, and the warehouse runs the statement with the core replaced by
// its rows, in the client's session and transaction, as the client's own
// Query or unnamed Parse. Everything the client receives is the
// warehouse's.

// finishQuery answers a simple Query through d.Finish, or relays it
// unchanged when the core cannot be answered now.
func (s *session) finishQuery(msg message, st *Statement, d RouteDecision) error {
	s.clock.querying(d)
	if done, err := s.offline(msg.typ); done {
		// The rest needs the warehouse: as a passthrough statement would.
		return err
	}
	text, origins, ok, err := s.finished(d, st)
	switch {
	case isInterrupt(err):
		return s.answered(d, nil, s.queryFailed(nil, err))
	case err != nil:
		return err
	case !ok:
		return s.relayQuery(msg, st)
	}
	s.clock.querying(d)
	return s.relayQueryAs(queryMessage(text), st, origins)
}

// finishParse prepares the unnamed statement with no parameters on the
// warehouse as d.Finish gives it, or unchanged when the core cannot be
// answered now. Its Binds, Describes and Executes are the warehouse's; its
// rows are the core's as of the Parse, as they are within one batch.
func (s *session) finishParse(msg message, st *Statement, d RouteDecision) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	text, origins, ok, err := s.finished(d, st)
	if err != nil && !isInterrupt(err) {
		return err
	}
	if !ok || err != nil {
		return s.relayParse(msg, "", st)
	}
	s.finishedStmt, s.finishedOrigins = nil, nil
	if origins != nil {
		// Its descriptions name the origins of the client's statement.
		s.finishedStmt, s.finishedOrigins = st, origins
	}
	return s.relayParse(parseMessage(text), "", st)
}

// finished computes the statement to relay in place of st: ok false relays
// st unchanged (the core could not be answered now, which counts as a
// fallback). An interrupt (a cancel, statement_timeout) is returned as the
// error to report; any other error ends the session.
func (s *session) finished(d RouteDecision, st *Statement) (string, []ColumnOrigin, bool, error) {
	if _, err := s.barrier(); err != nil {
		return "", nil, false, err
	}
	if s.txFailed() {
		return "", nil, false, nil
	}
	s.stateMu.Lock()
	set, known := s.set.sessionSettings, s.settingsKnownLocked()
	s.stateMu.Unlock()
	if !known {
		// The core is answered only for a session whose context is known.
		if err := s.readSettingsNow(); err != nil {
			return "", nil, false, err
		}
		s.stateMu.Lock()
		set, known = s.set.sessionSettings, s.settingsKnownLocked()
		s.stateMu.Unlock()
		if !known {
			s.fellBack(d, nil, st, settingsUnknownError{})
			return "", nil, false, nil
		}
	}
	ctx, cancel := answerContext(s.ctx, set.timeout)
	defer cancel(nil)
	s.running(cancel)
	text, origins, err := d.Finish.Finish(ctx, s.session())
	s.running(nil)
	err = interrupted(ctx, err)
	if isInterrupt(err) {
		return "", nil, false, err
	}
	if err != nil {
		s.fellBack(d, nil, st, err)
		return "", nil, false, nil
	}
	return text, origins, true, nil
}

// relayDescribe relays a Describe of a statement or portal that runs st on
// the warehouse, setting the origins of a statement the warehouse finishes
// in its RowDescription.
func (s *session) relayDescribe(msg message, st *Statement) error {
	if st == nil || st != s.finishedStmt {
		return s.relay(msg)
	}
	if done, err := s.offline(msg.typ); done {
		return err
	}
	return s.relayAs(msg, expectation{kind: msg.typ, origins: s.finishedOrigins})
}

// setOrigins writes the origins into a RowDescription's body in place,
// when it describes as many columns; it reports whether it did.
func setOrigins(body []byte, origins []ColumnOrigin) bool {
	if len(body) < 2 || int(binary.BigEndian.Uint16(body)) != len(origins) {
		return false
	}
	offs := make([]int, 0, len(origins))
	rest := body[2:]
	pos := 2
	for range origins {
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+1+18 {
			return false
		}
		offs = append(offs, pos+i+1)
		pos += i + 1 + 18
		rest = rest[i+1+18:]
	}
	if len(rest) != 0 {
		return false
	}
	for k, o := range origins {
		binary.BigEndian.PutUint32(body[offs[k]:], o.TableOID)
		binary.BigEndian.PutUint16(body[offs[k]+4:], uint16(o.Attnum))
	}
	return true
}

// queryMessage is a Query message with the text sql.
func queryMessage(sql string) message {
	raw := appendMessage(nil, 'Q', append([]byte(sql), 0))
	return message{typ: 'Q', raw: raw, body: raw[5:]}
}

// parseMessage is a Parse of the unnamed statement with the text sql and
// no parameter types.
func parseMessage(sql string) message {
	body := make([]byte, 0, len(sql)+4)
	body = append(body, 0)
	body = append(body, sql...)
	body = append(body, 0, 0, 0)
	raw := appendMessage(nil, 'P', body)
	return message{typ: 'P', raw: raw, body: raw[5:]}
}
