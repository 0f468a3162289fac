package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// Statements and portals the proxy answers itself: the client's Query,
// Parse, Bind, Describe, Execute, Close and Sync as they concern them, and
// the hand-over to the warehouse of a local statement it must answer after
// all.

// localStatement is a prepared statement the proxy answers itself.
type localStatement struct {
	name     string
	st       *Statement
	decision RouteDecision
	parse    []byte   // the client's Parse, replayed when the warehouse must take over
	oids     []uint32 // parameter types declared by Parse
	nparams  int      // parameters Postgres would require: declared, or the highest $n
	upstream bool     // also prepared on the warehouse under the same name
	// described are the parameter types the warehouse gave when it
	// described the statement: what it inferred for those Parse left
	// unspecified. Guarded by session.stateMu.
	described []uint32
}

// localPortal is a bound local statement.
type localPortal struct {
	stmt    *localStatement
	answer  Answer // the statement's, or what its Binder chose for these values
	bind    []byte // the client's Bind, replayed on fallback
	params  []Param
	formats []int16 // result format codes as Bind gave them
	result  *Result
	enc     *encoder        // the session's output settings when the portal first ran
	set     sessionSettings // the settings it first ran with
	ctx     context.Context // the answer's, over all its Executes; set with result
	cancel  context.CancelCauseFunc
}

func (ls *localStatement) paramTypes() []uint32 {
	inferred := ls.decision.Answer.ParamTypes()
	types := make([]uint32, max(len(ls.oids), len(inferred)))
	for i := range types {
		if i < len(ls.oids) && ls.oids[i] != 0 {
			types[i] = ls.oids[i]
		} else if i < len(inferred) {
			types[i] = inferred[i]
		}
	}
	return types
}

// inferredTypes gives the parameters whose type Parse left unspecified the
// type the warehouse inferred for them, when it described the statement:
// Postgres decodes their values as that type. Those it has not described
// stay unspecified. The barrier before Bind has seen the description.
func (s *session) inferredTypes(ls *localStatement, params []Param) {
	s.stateMu.Lock()
	described := ls.described
	s.stateMu.Unlock()
	if len(described) != len(params) {
		return
	}
	for i := range params {
		if params[i].TypeOID == 0 {
			params[i].TypeOID = described[i]
		}
	}
}

// unparsed is the decision on a statement whose text is not even held: too
// big for the parser library, it can only pass through.
func unparsed() RouteDecision { return RouteDecision{Route: RoutePassthrough, Reason: "parse_limit"} }

func (s *session) onQuery(msg message) error {
	// A simple Query drops the unnamed statement and portal, as in Postgres.
	delete(s.localStmts, "")
	s.dropPortal("")
	if msg.rest > 0 {
		// Beyond the parse limits: relayed as it is read, as an unknown
		// statement, which may do anything.
		s.clock.querying(unparsed())
		return s.relayQuery(msg, nil)
	}
	text, _, _ := cutCStringBytes(msg.body())
	if done, err := s.relayPlainQuery(msg, text); done {
		return err
	}
	sql := string(text)
	st := s.srv.stmts.get(sql)
	d := s.route(st)
	if d.Answer == nil && d.Finish != nil {
		return s.finishQuery(msg, st, d)
	}
	if d.Answer == nil {
		s.clock.querying(d)
		return s.relayQuery(msg, st)
	}
	if _, err := s.barrier(); err != nil {
		return err
	}
	if s.refusedInFailedBlock(d.Answer) {
		// Postgres refuses anything but the end of the block; the
		// warehouse says so in its own words.
		s.clock.querying(d)
		return s.relayQuery(msg, st)
	}
	set, err := s.settingsFor(d.Answer)
	if err != nil && d.Fallback {
		s.fellBack(d, d.Answer, st, err)
		return s.relayQuery(msg, st)
	}
	if err != nil {
		return s.answered(d, d.Answer, s.queryFailed(nil, err))
	}
	ctx, cancel := answerContext(s.ctx, set.timeout)
	defer cancel(nil)
	s.running(cancel)
	defer s.running(nil)
	res, enc, err := s.start(ctx, d.Answer, s.session(), nil, set)
	err = interrupted(ctx, err)
	if err != nil && d.Fallback && !isInterrupt(err) {
		s.fellBack(d, d.Answer, st, err)
		return s.relayQuery(msg, st)
	}
	if err != nil {
		return s.answered(d, d.Answer, s.queryFailed(nil, err))
	}
	defer res.Rows.Close()
	var out []byte
	if cols := d.Answer.Columns(); cols != nil {
		out = appendRowDescription(out, cols, nil)
	}
	out, sd, err := s.stream(ctx, out, res, enc, d.Answer.Columns(), nil, 0)
	err = interrupted(ctx, err)
	if err != nil && !sd.committed && d.Fallback && !isInterrupt(err) {
		s.fellBack(d, d.Answer, st, err)
		return s.relayQuery(msg, st)
	}
	if err != nil {
		return s.answered(d, d.Answer, s.queryFailed(out, err))
	}
	return s.answered(d, d.Answer, s.writeClient(appendReady(out, s)))
}

// relayPlainQuery relays a Query outside a transaction block when its text
// alone decides that it is plain and the router decides it at a glance: a
// single query that calls no function and names none of the words the
// proxy looks for (a SELECT of a literal, as pgbench -S sends, or a BI
// tool's lookups). Nothing of such a statement is kept after it is relayed:
// the router's RouteQuick keeps nothing, relaying it looks at its text only
// (at what scanText found, whose first keyword is then one of
// knownKeywords, not a piece of the text), and it is not parsed. So its
// Statement is the session's, reused from one to the next, and its text is
// the message's bytes where they lie, no copy: a new text costs nothing to
// allocate. Nor does the statement cache help with it: a parsed Statement
// of the same text would be routed and relayed alike, so it is not looked
// up.
//
// done reports whether it relayed the Query; if not, the caller routes it
// as any other.
func (s *session) relayPlainQuery(msg message, text []byte) (done bool, err error) {
	q, ok := s.srv.router.(QuickRouter)
	if !ok || byte(s.txStatus.Load()) != 'I' || len(text) == 0 || bytes.IndexByte(text, '(') >= 0 {
		// In a block, relaying it works out whether it writes, which
		// parses it: a Statement the cache must then keep. A
		// parenthesis (most of a BI tool's statements) rules it out at
		// once, before the scan.
		return false, nil
	}
	st := s.plainQuery
	if st == nil {
		st = new(Statement)
		s.plainQuery = st
	}
	// The text as it lies in the read buffer, valid until the next read:
	// the Statement lets go of it before this returns.
	sql := unsafe.String(&text[0], len(text))
	// No cache: should anything parse it after all, the tree is not kept.
	*st = Statement{SQL: sql, txt: scanText(sql), scanned: true}
	defer func() { st.SQL = "" }()
	if !plainText(st) {
		return false, nil
	}
	d, ok := q.RouteQuick(st)
	if !ok || d.Answer != nil || d.Finish != nil {
		return false, nil
	}
	d.Route = RoutePassthrough
	s.clock.querying(d)
	return true, s.relayQuery(msg, st)
}

// plainText reports whether a statement's text alone says it is a single
// query that calls no function, and that it holds none of the words the
// proxy looks for: nothing about it needs a parse, and it leaves the
// session as it was (settingsNeutralText).
func plainText(st *Statement) bool {
	t := st.text()
	return t.class&classQuery != 0 && !t.paren && !t.multiple && t.words == 0
}

// queryFailed ends a simple Query the proxy answers with an error, after
// what out holds of its answer. A transaction block fails with it, on the
// warehouse too, as it would in Postgres.
func (s *session) queryFailed(out []byte, err error) error {
	if ferr := s.failTransaction(true); ferr != nil {
		return ferr
	}
	out = asStatementError(err).encode(out)
	return s.writeClient(appendReady(out, s))
}

func appendReady(dst []byte, s *session) []byte {
	return appendMessage(dst, 'Z', []byte{byte(s.txStatus.Load())})
}

func (s *session) onParse(msg message) error {
	name, query, ok := parseParse(msg.body())
	var st *Statement
	switch {
	case msg.rest > 0:
		// Beyond the parse limits, and read only in part: the statement
		// is unknown, and so is its name if that is not in the part.
		name, _, ok = cutCString(msg.body())
		if !ok {
			return s.relay(msg)
		}
	case !ok:
		return s.relay(msg) // malformed: let the warehouse say so
	default:
		st = s.srv.stmts.get(query)
	}
	if old := s.localStmts[name]; old != nil && name != "" {
		// Postgres refuses to redefine a named statement; so does the
		// warehouse when the statement exists there too.
		if old.upstream {
			return s.relay(msg)
		}
		proceed, err := s.barrier()
		if err != nil || !proceed {
			return err
		}
		if s.txFailed() {
			return s.relay(msg) // Postgres reports the failed transaction first
		}
		return s.failLocal(Error(sqlstate.DuplicatePreparedStatement, fmt.Sprintf("prepared statement %q already exists", name)))
	}
	delete(s.localStmts, name)
	if st == nil {
		s.clock.prepared(name, unparsed())
		return s.relayParse(msg, name, nil)
	}
	d := s.route(st)
	finish := d
	if d.Answer == nil {
		d.Route, d.Finish = RoutePassthrough, nil
	}
	s.clock.prepared(name, d)
	oids, ok := parseParamOIDs(msg.body(), name, query)
	if d.Answer == nil && finish.Finish != nil && ok {
		if name == "" && len(oids) == 0 {
			return s.finishParse(msg, st, finish)
		}
		// Finished at each Bind: a statement prepared finished would
		// hold the core's rows for as long as it lives.
		d = finish
		d.Answer, d.Finish = finishAtBind{finish.Finish}, nil
	}
	if d.Answer == nil || !ok {
		return s.relayParse(msg, name, st)
	}
	proceed, err := s.barrier()
	if err != nil || !proceed {
		return err
	}
	if s.refusedInFailedBlock(d.Answer) {
		return s.relayParse(msg, name, st)
	}
	nparams, err := countParams(query, s.srv.limits)
	if err != nil || nparams < len(oids) {
		nparams = len(oids)
	}
	if s.localStmts == nil {
		s.localStmts = map[string]*localStatement{}
	}
	s.localStmts[name] = &localStatement{name: name, st: st, decision: d, parse: clone(msg.raw), oids: oids, nparams: nparams}
	if d.Answer.Columns() != nil {
		if err := s.readSettingsEarly(); err != nil {
			return err
		}
	}
	return s.writeClient([]byte{'1', 0, 0, 0, 4})
}

func (s *session) onBind(msg message) error {
	portal, stmtName, ok := parseBind(msg.body())
	if !ok {
		return s.relay(msg)
	}
	s.dropPortal(portal)
	s.clock.bound(portal, stmtName)
	ls := s.localStmts[string(stmtName)]
	if ls == nil {
		return s.relayBind(msg, portal, stmtName)
	}
	if msg.rest > 0 {
		// Values too big to decode: the warehouse answers this portal.
		return s.relayUpstreamBind(ls, msg, portal)
	}
	proceed, err := s.barrier()
	if err != nil || !proceed {
		return err
	}
	if s.refusedInFailedBlock(ls.decision.Answer) {
		return s.failLocal(errTxAborted)
	}
	params, formats, err := decodeBind(msg.body(), ls.oids)
	if err == nil && len(params) != ls.nparams {
		err = newError(severityError, sqlstate.ProtocolViolation, fmt.Sprintf(
			"bind message supplies %d parameters, but prepared statement %q requires %d", len(params), ls.name, ls.nparams))
	}
	if err != nil {
		return s.failLocal(err)
	}
	s.inferredTypes(ls, params)
	answer := ls.decision.Answer
	if b, ok := answer.(Binder); ok {
		var finish Finisher
		s.group.mayBlock()
		answer, finish = b.Bind(s.ctx, s.session(), params)
		switch {
		case answer == nil && finish != nil:
			return s.finishBind(ls, msg, portal, formats, finish)
		case answer == nil:
			// Only the values could tell, and they say the warehouse.
			if rb, ok := b.(RelayBinder); ok {
				s.clock.relayedPortal(portal, rb, params)
			}
			return s.relayUpstreamBind(ls, msg, portal)
		}
	}
	if len(s.localPortals) >= maxLocalPortals {
		for name := range s.localPortals {
			s.dropPortal(name)
		}
	}
	if s.localPortals == nil {
		s.localPortals = map[string]*localPortal{}
	}
	s.localPortals[portal] = &localPortal{stmt: ls, answer: answer, bind: clone(msg.raw), params: params, formats: formats}
	if answer.Columns() != nil {
		if err := s.readSettingsEarly(); err != nil {
			return err
		}
	}
	return s.writeClient([]byte{'2', 0, 0, 0, 4})
}

func (s *session) onDescribe(msg message) error {
	if len(msg.body()) < 2 {
		return s.relay(msg)
	}
	name, _, _ := cutCString(msg.body()[1:])
	var out []byte
	switch msg.body()[0] {
	case 'S':
		ls := s.localStmts[name]
		if ls == nil {
			return s.relayDescribe(msg, s.upStmts.lookup(name))
		}
		if _, ok := ls.decision.Answer.(Binder); ok {
			// Its result is known only once values are bound: the
			// warehouse describes it.
			if done, err := s.offline(msg.typ); done {
				return err
			}
			if err := s.prepareUpstream(ls); err != nil {
				return err
			}
			// Its ParameterDescription tells the types of the
			// parameters Parse left unspecified, for decoding their
			// values at Bind.
			return s.relayAs(msg, &expectation{kind: msg.typ, notes: &answerNotes{describes: ls}})
		}
		proceed, err := s.barrier()
		if err != nil || !proceed {
			return err
		}
		if s.txFailed() && ls.decision.Answer.Columns() != nil {
			// Postgres describes no result in a failed transaction.
			return s.failLocal(errTxAborted)
		}
		out = appendParameterDescription(out, ls.paramTypes())
		out = appendResultDescription(out, ls.decision.Answer.Columns(), nil)
	case 'P':
		lp := s.localPortals[name]
		if lp == nil {
			return s.relayDescribe(msg, s.upPortals.lookup(name))
		}
		proceed, err := s.barrier()
		if err != nil || !proceed {
			return err
		}
		if s.txFailed() && lp.answer.Columns() != nil {
			return s.failLocal(errTxAborted)
		}
		out = appendResultDescription(out, lp.answer.Columns(), lp.formats)
	default:
		return s.relay(msg)
	}
	return s.writeClient(out)
}

func (s *session) onExecute(msg message) error {
	portal, rest, ok := cutCString(msg.body())
	lp := s.localPortals[portal]
	if !ok || lp == nil || len(rest) < 4 {
		s.clock.executing(portal)
		return s.relayExecute(msg, s.upPortals.lookup(portal))
	}
	maxRows := int(int32(binary.BigEndian.Uint32(rest)))
	proceed, err := s.barrier()
	if err != nil || !proceed {
		return err
	}
	if s.refusedInFailedBlock(lp.answer) {
		return s.failLocal(errTxAborted)
	}
	d := lp.stmt.decision
	first := lp.result == nil
	set, err := s.settingsFor(lp.answer)
	switch {
	case err == nil:
	case first && d.Fallback:
		s.fellBack(d, lp.answer, lp.stmt.st, err)
		return s.executeUpstream(lp, msg)
	case first:
		return s.answered(d, lp.answer, s.failLocal(err))
	default:
		// Part-way through, the portal goes on as it began.
		set = lp.set
	}
	if first {
		// The answer's context lives with the portal: its rows are read
		// over as many Executes as the client asks for. When this one
		// asks for them all, statement_timeout is its deadline.
		timeout := set.timeout
		if maxRows != 0 {
			timeout = 0
		}
		lp.ctx, lp.cancel = answerContext(s.ctx, timeout)
	}
	if _, ok := lp.ctx.Deadline(); !ok {
		// statement_timeout runs for each Execute, as in Postgres.
		defer timeLimit(lp.cancel, set.timeout)()
	}
	if first {
		s.running(lp.cancel)
		res, enc, err := s.start(lp.ctx, lp.answer, s.session(), lp.params, set)
		s.running(nil)
		err = interrupted(lp.ctx, err)
		if err != nil {
			lp.cancel(nil)
			if d.Fallback && !isInterrupt(err) {
				s.fellBack(d, lp.answer, lp.stmt.st, err)
				return s.executeUpstream(lp, msg)
			}
			return s.answered(d, lp.answer, s.failLocal(err))
		}
		lp.result, lp.enc, lp.set = res, enc, set
	}
	s.running(lp.cancel)
	out, st, err := s.stream(lp.ctx, nil, lp.result, lp.enc, lp.answer.Columns(), lp.formats, maxRows)
	s.running(nil)
	err = interrupted(lp.ctx, err)
	if err != nil {
		if first && !st.committed && d.Fallback && !isInterrupt(err) {
			lp.result.Rows.Close()
			lp.result = nil
			lp.cancel(nil)
			s.fellBack(d, lp.answer, lp.stmt.st, err)
			return s.executeUpstream(lp, msg)
		}
		if werr := s.writeClient(out); werr != nil {
			return s.answered(d, lp.answer, werr)
		}
		return s.answered(d, lp.answer, s.failLocal(err))
	}
	if !st.done {
		// Postgres suspends a portal when the limit is reached, even if no
		// row is left: the next Execute then completes it with no rows.
		out = appendMessage(out, 's', nil)
	}
	return s.answered(d, lp.answer, s.writeClient(out))
}

// prepareUpstream prepares a local statement on the warehouse too, hiding
// the ParseComplete: the client had it from the proxy.
func (s *session) prepareUpstream(ls *localStatement) error {
	if ls.upstream {
		return nil
	}
	if err := s.yieldFinishedName(ls.name); err != nil {
		return err
	}
	if err := s.inject('P', ls.parse); err != nil {
		return err
	}
	ls.upstream = true
	s.upStmts.define(ls.name, ls.st)
	return nil
}

// relayUpstreamBind sends a Bind of a local statement to the warehouse,
// which answers it (and everything about its portal) itself.
func (s *session) relayUpstreamBind(ls *localStatement, bind message, portal string) error {
	if done, err := s.offline(bind.typ); done {
		return err
	}
	if err := s.prepareUpstream(ls); err != nil {
		return err
	}
	s.upPortals.define(portal, ls.st)
	return s.relay(bind)
}

// executeUpstream hands a local portal to the warehouse: it prepares the
// statement and binds the portal there, hiding those answers because the
// client already had them from the proxy, then relays the Execute.
func (s *session) executeUpstream(lp *localPortal, execute message) error {
	if done, err := s.offline(execute.typ); done {
		return err
	}
	if err := s.prepareUpstream(lp.stmt); err != nil {
		return err
	}
	if err := s.inject('B', lp.bind); err != nil {
		return err
	}
	portal, _, _ := cutCString(execute.body())
	s.upPortals.define(portal, lp.stmt.st)
	s.dropPortal(portal)
	return s.relayExecute(execute, lp.stmt.st)
}

// inject sends a message of the proxy's own to the warehouse; its answer is
// hidden from the client.
func (s *session) inject(kind byte, raw []byte) error {
	s.stateMu.Lock()
	if s.isDetached() {
		// Lost just now: the message it serves gets the loss.
		s.stateMu.Unlock()
		return nil
	}
	s.inExtended = true
	s.pushExpect(&expectation{kind: kind, swallow: true})
	s.stateMu.Unlock()
	s.batchUpstream = true
	_, err := s.upW.Write(raw)
	return err
}

func (s *session) onClose(msg message) error {
	if len(msg.body()) < 2 {
		return s.relay(msg)
	}
	name, _, _ := cutCString(msg.body()[1:])
	switch msg.body()[0] {
	case 'S':
		ls := s.localStmts[name]
		if ls == nil {
			return s.relayClose(msg, 'S', name)
		}
		delete(s.localStmts, name)
		if ls.upstream {
			return s.relayClose(msg, 'S', name)
		}
	case 'P':
		if s.localPortals[name] == nil {
			return s.relayClose(msg, 'P', name)
		}
		s.dropPortal(name)
	default:
		return s.relay(msg)
	}
	proceed, err := s.barrier()
	if err != nil || !proceed {
		return err
	}
	return s.writeClient([]byte{'3', 0, 0, 0, 4})
}

func (s *session) onSync(msg message) error {
	if c := s.syncIgnoredBy(); c != nil {
		// The warehouse may ignore it, and the batch go on (session_copy.go).
		return s.relayAs(msg, &expectation{kind: 'S', notes: &answerNotes{ignoredBy: c}})
	}
	// The unnamed portal ends with the implicit transaction at Sync.
	s.dropPortal("")
	upstream := s.batchUpstream
	s.batchUpstream, s.batchFailed = false, false
	if upstream {
		err := s.relaySync(msg)
		s.batchAt, s.batchNewTx = time.Time{}, false
		return err
	}
	s.batchAt, s.batchNewTx = time.Time{}, false
	s.stateMu.Lock()
	s.inExtended = false
	s.stateMu.Unlock()
	if _, err := s.barrier(); err != nil {
		return err
	}
	return s.writeClient(appendMessage(nil, 'Z', []byte{byte(s.txStatus.Load())}))
}

// failLocal reports an error in a local extended-protocol message and, like
// Postgres, skips the rest of the batch until Sync. The transaction fails
// with it, on the warehouse too.
func (s *session) failLocal(err error) error {
	s.batchFailed = true
	if ferr := s.failTransaction(false); ferr != nil {
		return ferr
	}
	return s.writeClient(asStatementError(err).encode(nil))
}

// dropPortal forgets a local portal and stops its answer.
func (s *session) dropPortal(name string) {
	if len(s.localPortals) != 0 {
		s.dropLocalPortal(name)
	}
}

func (s *session) dropLocalPortal(name string) {
	if lp := s.localPortals[name]; lp != nil {
		if lp.result != nil {
			lp.result.Rows.Close()
		}
		if lp.cancel != nil {
			lp.cancel(nil)
		}
		delete(s.localPortals, name)
	}
}

// dropAllPortals stops every local answer when the session ends. Not
// inlined: its map iteration would sit in the frame of session.run, under
// every idle session's stack, which the Go runtime then cannot halve.
//
//go:noinline
func (s *session) dropAllPortals() {
	for name := range s.localPortals {
		s.dropPortal(name)
	}
}

// asStatementError turns an Answer's error into an ERROR-level response.
func asStatementError(err error) *pgError {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe
	}
	return newError(severityError, sqlstate.InternalError, err.Error())
}

// countParams returns the highest $n of a statement, which is how many
// parameters Postgres requires of a Bind when Parse declared fewer types.
// Only a statement the parser took is scanned: its tokens are within the
// limits.
func countParams(sql string, limits parselimit.Limits) (int, error) {
	if err := limits.Check(sql); err != nil {
		return 0, err
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tok := range scan.Tokens {
		if tok.Token != pg_query.Token_PARAM || int(tok.End) > len(sql) || tok.Start+1 >= tok.End {
			continue
		}
		if k, err := strconv.Atoi(sql[tok.Start+1 : tok.End]); err == nil && k > n {
			n = k
		}
	}
	return n, nil
}
