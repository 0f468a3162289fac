package proxy

// What the warehouse runs may change what the proxy must know of the
// session: a write makes rollups blind to the rest of the transaction, a SET
// changes how floats print, a DEALLOCATE drops a statement the proxy keeps.
// The proxy works that out from the statement's text as it relays it, and
// applies it when the answer arrives, in the order the warehouse ran it. An
// Execute names a portal, so the proxy remembers which statement each
// portal on the warehouse was bound to.

// maxUpstreamNames bounds the statements and portals remembered.
const maxUpstreamNames = 4096

// upstreamNames remembers which statement each prepared statement or portal
// name runs on the warehouse. What it cannot vouch for it reports as nil,
// unknown, which the proxy takes as a statement that may do anything.
type upstreamNames struct {
	// unnamed is what the unnamed statement or portal runs, nil when
	// unknown or undefined. It is outside m because most clients bind and
	// execute the unnamed portal for every statement: a field, not a map
	// lookup, and never forgotten with m (the warehouse replaces it rather
	// than refusing it, so it is always known).
	unnamed *Statement
	m       map[string]*Statement
	// last is the named one looked up last and what it runs, beside the
	// map: a client binds the same statement again and again. Made on
	// the first lookup of a name; forgotten by any change to the map.
	last *lastName[*Statement]
	// partial: names were forgotten to bound the map, so a name not in it
	// may still exist on the warehouse.
	partial bool
	// raw holds the client's Parse of each named statement, which a new
	// warehouse connection prepares again (session_reattach.go).
	raw map[string][]byte
}

// define notes a Parse (or Bind) of name with st. The warehouse refuses to
// redefine a named statement or portal that exists, so a name seen before
// may still run what it ran, unless it is the same statement again.
func (n *upstreamNames) define(name string, st *Statement) {
	n.defineRaw(name, st, nil)
}

// defineRaw is define for a Parse whose message is parse.
func (n *upstreamNames) defineRaw(name string, st *Statement, parse []byte) {
	if name == "" {
		n.unnamed = st
		return
	}
	n.forgetLast()
	if n.m == nil {
		n.m = map[string]*Statement{}
	}
	if len(n.m) >= maxUpstreamNames {
		clear(n.m)
		clear(n.raw)
		n.partial = true
	}
	old, seen := n.m[name]
	if parse != nil && !seen {
		if n.raw == nil {
			n.raw = map[string][]byte{}
		}
		n.raw[name] = clone(parse)
	}
	switch {
	case seen && old != nil && st != nil && old.SQL == st.SQL:
	case seen || n.partial:
		n.m[name] = nil
	default:
		n.m[name] = st
	}
}

// lookup returns the statement name runs, nil when unknown.
func (n *upstreamNames) lookup(name string) *Statement {
	if name == "" {
		return n.unnamed
	}
	return n.m[name]
}

// lookupBytes is lookup of a name as a message holds it.
func (n *upstreamNames) lookupBytes(name []byte) *Statement {
	if len(name) == 0 {
		return n.unnamed
	}
	if n.last != nil {
		if st, ok := n.last.get(name); ok {
			return st
		}
	} else {
		n.last = new(lastName[*Statement])
	}
	st := n.m[string(name)]
	n.last.set(name, st)
	return st
}

func (n *upstreamNames) forgetLast() {
	if n.last != nil {
		n.last.forget()
	}
}

// lastName is a name and its value, kept in place beside a map: a name
// that changes at every lookup costs no allocation, and one longer than
// its room is not kept.
type lastName[V any] struct {
	name [64]byte
	n    int
	v    V
	ok   bool
}

func (l *lastName[V]) get(name []byte) (V, bool) {
	if l.ok && string(l.name[:l.n]) == string(name) {
		return l.v, true
	}
	var none V
	return none, false
}

func (l *lastName[V]) set(name []byte, v V) {
	l.n = copy(l.name[:], name)
	l.v, l.ok = v, l.n == len(name)
}

func (l *lastName[V]) forget() { l.ok = false }

// known reports whether name is known to exist on the warehouse (the
// unnamed statement or portal aside, which always may).
func (n *upstreamNames) known(name string) bool {
	_, ok := n.m[name]
	return ok
}

// forget notes that name no longer exists on the warehouse.
func (n *upstreamNames) forget(name string) {
	if name == "" {
		n.unnamed = nil
		return
	}
	n.forgetLast()
	delete(n.m, name)
	delete(n.raw, name)
}

// reset notes that no name exists on the warehouse any more.
func (n *upstreamNames) reset() {
	n.unnamed = nil
	n.forgetLast()
	clear(n.m)
	clear(n.raw)
	n.partial = false
}

// parses returns the Parse messages of the named statements known to exist.
func (n *upstreamNames) parses() [][]byte {
	out := make([][]byte, 0, len(n.raw))
	for _, raw := range n.raw {
		out = append(out, raw)
	}
	return out
}

// relayParse relays a Parse and remembers the statement by name. One
// beyond the parse limits is remembered as unknown and not kept to prepare
// again after an outage, which spares the session its text.
func (s *session) relayParse(msg message, name string, st *Statement) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	if err := s.yieldFinishedName(name); err != nil {
		return err
	}
	raw := msg.raw
	if msg.rest > 0 || st != nil && s.srv.limits.Check(st.SQL) != nil {
		st, raw = nil, nil
	}
	s.upStmts.defineRaw(name, st, raw)
	return s.relay(msg)
}

// relayBind relays a Bind and remembers which statement the portal runs.
func (s *session) relayBind(msg message, portal string, stmt []byte) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	s.upPortals.define(portal, s.upStmts.lookupBytes(stmt))
	return s.relayAs(msg, &expectation{kind: msg.typ})
}

// relayClose relays a Close and forgets the statement or portal.
func (s *session) relayClose(msg message, kind byte, name string) error {
	switch kind {
	case 'S':
		s.upStmts.forget(name)
	case 'P':
		s.upPortals.forget(name)
	}
	return s.relay(msg)
}

// relayQuery relays a simple Query, which replaces the unnamed statement
// and portal on the warehouse.
func (s *session) relayQuery(msg message, st *Statement) error {
	return s.relayQueryAs(msg, st, nil)
}

// relayQueryAs relays a Query whose RowDescription gets origins, when
// set (session_finish.go).
func (s *session) relayQueryAs(msg message, st *Statement, origins []ColumnOrigin) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	s.upStmts.forget("")
	s.upPortals.forget("")
	e := s.statementExpectation('Q', st)
	e.at, e.newTx = s.clock.at(), endsTransaction(st)
	if origins != nil {
		e.noted().origins = origins
	}
	if e.notes != nil && e.notes.resets != nil {
		if err := s.prepareForDeallocate(e.notes.resets); err != nil {
			return err
		}
	}
	if err := s.relayAs(msg, &e); err != nil {
		return err
	}
	return s.readSettingsAtSync()
}

// relayExecute relays an Execute of a portal that runs st on the warehouse.
func (s *session) relayExecute(msg message, st *Statement) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	e := s.statementExpectation('E', st)
	e.newTx = endsTransaction(st)
	s.batchNewTx = s.batchNewTx || e.newTx
	return s.relayAs(msg, &e)
}

// relaySync relays a Sync, which ends the batch on the warehouse.
func (s *session) relaySync(msg message) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	e := expectation{kind: 'S', at: s.batchAt, newTx: s.batchNewTx}
	if err := s.relayAs(msg, &e); err != nil {
		return err
	}
	return s.readSettingsAtSync()
}

// relayFunctionCall relays a FunctionCall: a function the proxy knows
// nothing of, which may write and may change settings.
func (s *session) relayFunctionCall(msg message) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	s.settingsMayChange(nil)
	return s.relayAs(msg, &expectation{kind: 'F', wrote: true, at: s.clock.at()})
}

// statementExpectation works out what running st (nil: unknown) on the
// warehouse may do, and notes what must be noted before it is sent.
func (s *session) statementExpectation(kind byte, st *Statement) expectation {
	e := expectation{kind: kind, wrote: true}
	s.settingsMayChange(st)
	if c := s.copyMayStart(st); c != nil {
		e.noted().copy = c
	}
	if st == nil {
		return e
	}
	// Whether it wrote matters only in a transaction a later statement
	// shares: a block, or an extended batch. A simple Query outside a
	// block is its own transaction unless it opens one, and its
	// ReadyForQuery clears the mark anyway, so it is not even looked at.
	if kind == 'E' || byte(s.txStatus.Load()) != 'I' || st.mentions(wordBegin|wordStart) {
		e.wrote = !st.effects().readOnly
	}
	if st.mentions(wordDeallocate | wordDiscard | wordClose) {
		if resets := st.effects().resets; len(resets) > 0 {
			n := e.noted()
			n.resets = append([]resetOp(nil), resets...)
			s.resetsPending = true
			if len(resets) == 1 && resets[0].kind == resetDiscardAll && !st.text().multiple {
				n.discardGen = s.settingsGen()
			}
		}
	}
	return e
}

// txEndKeywords begin the statements that may end a transaction.
var txEndKeywords = map[string]bool{"commit": true, "end": true, "rollback": true, "abort": true, "prepare": true}

// endsTransaction reports whether st (nil: unknown) may end a transaction.
func endsTransaction(st *Statement) bool {
	if st == nil {
		return true
	}
	if t := st.text(); !t.multiple && t.class&classTxEnd == 0 {
		return false
	}
	return st.effects().endsTx
}

// relay sends a client message to the warehouse, noting the answer to come.
func (s *session) relay(msg message) error {
	if done, err := s.offline(msg.typ); done {
		return err
	}
	return s.relayAs(msg, &expectation{kind: msg.typ})
}

// relayAs relays a client message whose answer e describes.
func (s *session) relayAs(msg message, e *expectation) error {
	switch s.beginRoundTrip(e) {
	case tripClosing:
		return errSessionDone
	case tripLost:
		// Lost between the check and now: the message did not go.
		return s.answerOffline(msg.typ, s.takeLossReport())
	}
	switch msg.typ {
	case 'Q', 'F', 'S':
		// Sync points: nothing of the client's stays open on the warehouse.
	default:
		s.batchUpstream = true
	}
	if run, joined, ok := s.clientMsgs.runAfter(s.upW.pendingInPlace(), msg); ok {
		// Relayed where it lies in the read buffer, with the messages
		// relayed before it when they lie just before it (a Bind, an
		// Execute and a Sync), and written with them at the flush: at
		// once when it is the last the client sent, else by
		// clientMessage, or copied out first by another write.
		if !joined {
			s.upW.copyInPlace()
		}
		s.upW.relayInPlace(run)
		if s.clientR.Buffered() == 0 {
			return s.upW.Flush()
		}
		return nil
	}
	_, err := s.upW.Write(msg.raw)
	if err == nil && msg.rest > 0 {
		err = s.clientMsgs.relayRest(s.upW)
	}
	return err
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
// has lost its connection since the caller looked (session_loss.go).
func (s *session) beginRoundTrip(e *expectation) roundTrip {
	s.stateMu.Lock()
	trip := s.beginRoundTripLocked(e)
	s.stateMu.Unlock()
	return trip
}

func (s *session) beginRoundTripLocked(e *expectation) roundTrip {
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
