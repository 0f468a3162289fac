package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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

// finishedName is the statement the proxy prepares on the warehouse for
// the portals it finishes at Bind. Clients see none of its messages.
const finishedName = "pgrollup.finished"

// finishAtBind is a named statement whose portals the warehouse finishes,
// each with the core's rows as of its Bind: prepared finished, it would
// hold them for as long as it lives. Its descriptions are the warehouse's
// for the client's statement.
type finishAtBind struct{ finish Finisher }

func (finishAtBind) Columns() []Column    { return nil }
func (finishAtBind) ParamTypes() []uint32 { return nil }

// Run is never called: each portal is bound to the Finisher.
func (finishAtBind) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	return nil, errors.New("a statement the warehouse finishes runs as its portals are bound")
}

// Bind implements Binder.
func (b finishAtBind) Bind(context.Context, *SessionInfo, []Param) (Answer, Finisher) {
	return nil, b.finish
}

// finishBind binds a portal of a local statement to the statement the
// warehouse finishes for it: prepared under finishedName, which the client
// never sees, and bound with the client's result formats. The portal's
// Describe and Executes are then the warehouse's, row limits included. When
// the core cannot be answered now the client's Bind goes as it is.
func (s *session) finishBind(ls *localStatement, bind message, portal string, formats []int16, f Finisher) error {
	if done, err := s.offline(bind.typ); done {
		return err
	}
	if s.upStmts.known(finishedName) || s.upStmts.partial {
		// The client's own statement of that name (or perhaps one).
		return s.relayUpstreamBind(ls, bind, portal)
	}
	text, origins, ok, err := s.finished(RouteDecision{Route: RouteRollup, Finish: f}, ls.st)
	switch {
	case isInterrupt(err):
		return s.failLocal(err)
	case err != nil:
		return err
	case !ok:
		return s.relayUpstreamBind(ls, bind, portal)
	}
	// The client's statement is prepared first: an error Postgres raises
	// for it (a parameter of a type LIMIT refuses, say) is the client's,
	// and the warehouse then skips the rest as Postgres would.
	if err := s.prepareUpstream(ls); err != nil {
		return err
	}
	if err := s.inject('C', closeMessage('S', finishedName)); err != nil {
		return err
	}
	if err := s.inject('P', namedParseMessage(finishedName, text)); err != nil {
		return err
	}
	s.finishedPrepared = true
	s.finishedStmt, s.finishedOrigins = nil, nil
	if origins != nil {
		s.finishedStmt, s.finishedOrigins = ls.st, origins
	}
	s.upPortals.define(portal, ls.st)
	return s.relay(bindMessage(portal, finishedName, formats))
}

// yieldFinishedName closes the proxy's statement finishedName before the
// client prepares one of that name on the warehouse, which would refuse it.
func (s *session) yieldFinishedName(name string) error {
	if name != finishedName || !s.finishedPrepared {
		return nil
	}
	s.finishedPrepared = false
	return s.inject('C', closeMessage('S', finishedName))
}

// finished computes the statement to relay in place of st: ok false relays
// st unchanged (the core could not be answered now, which counts as a
// fallback). An interrupt (a cancel, statement_timeout) is returned as the
// error to report; any other error ends the session.
func (s *session) finished(d RouteDecision, st *Statement) (string, []ColumnOrigin, bool, error) {
	s.group.mayBlock()
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
	return s.relayAs(msg, &expectation{kind: msg.typ, notes: &answerNotes{origins: s.finishedOrigins}})
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
	return message{typ: 'Q', raw: raw}
}

// parseMessage is a Parse of the unnamed statement with the text sql and
// no parameter types.
func parseMessage(sql string) message {
	raw := namedParseMessage("", sql)
	return message{typ: 'P', raw: raw}
}

// namedParseMessage is a Parse of statement name with the text sql and no
// parameter types.
func namedParseMessage(name, sql string) []byte {
	body := make([]byte, 0, len(name)+len(sql)+4)
	body = appendCString(body, name)
	body = appendCString(body, sql)
	body = append(body, 0, 0)
	return appendMessage(nil, 'P', body)
}

// closeMessage is a Close of the statement ('S') or portal ('P') name.
func closeMessage(kind byte, name string) []byte {
	return appendMessage(nil, 'C', appendCString([]byte{kind}, name))
}

// bindMessage binds portal to statement stmt with no parameters and the
// result formats given.
func bindMessage(portal, stmt string, formats []int16) message {
	body := appendCString(nil, portal)
	body = appendCString(body, stmt)
	body = append(body, 0, 0, 0, 0) // no parameter formats, no parameters
	body = binary.BigEndian.AppendUint16(body, uint16(len(formats)))
	for _, f := range formats {
		body = binary.BigEndian.AppendUint16(body, uint16(f))
	}
	raw := appendMessage(nil, 'B', body)
	return message{typ: 'B', raw: raw}
}
