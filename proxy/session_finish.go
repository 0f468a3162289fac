package proxy

// A statement the warehouse finishes: its aggregate core is answered from a
// rollup, and the warehouse runs the statement with the core replaced by
// its rows, in the client's session and transaction, as the client's own
// Query. Everything the client receives is the warehouse's.

// finishQuery answers a simple Query through d.Finish, or relays it
// unchanged when the core cannot be answered now.
func (s *session) finishQuery(msg message, st *Statement, d RouteDecision) error {
	s.clock.querying(d)
	if done, err := s.offline(msg.typ); done {
		// The rest needs the warehouse: as a passthrough statement would.
		return err
	}
	if _, err := s.barrier(); err != nil {
		return err
	}
	if s.txFailed() {
		return s.relayQuery(msg, st)
	}
	s.stateMu.Lock()
	set, known := s.set.sessionSettings, s.settingsKnownLocked()
	s.stateMu.Unlock()
	if !known {
		// The core is answered only for a session whose context is known.
		if err := s.readSettingsNow(); err != nil {
			return err
		}
		s.stateMu.Lock()
		set, known = s.set.sessionSettings, s.settingsKnownLocked()
		s.stateMu.Unlock()
		if !known {
			s.fellBack(d, nil, st, settingsUnknownError{})
			return s.relayQuery(msg, st)
		}
	}
	ctx, cancel := answerContext(s.ctx, set.timeout)
	defer cancel(nil)
	s.running(cancel)
	text, err := d.Finish.Finish(ctx, s.session())
	s.running(nil)
	err = interrupted(ctx, err)
	if isInterrupt(err) {
		return s.answered(d, nil, s.queryFailed(nil, err))
	}
	if err != nil {
		s.fellBack(d, nil, st, err)
		return s.relayQuery(msg, st)
	}
	s.clock.querying(d)
	return s.relayQuery(queryMessage(text), st)
}

// queryMessage is a Query message with the text sql.
func queryMessage(sql string) message {
	raw := appendMessage(nil, 'Q', append([]byte(sql), 0))
	return message{typ: 'Q', raw: raw, body: raw[5:]}
}
