package proxy

import (
	"context"
	"errors"
)

// The proxy keeps, for the client, the prepared statements it answers
// itself and their portals; the warehouse never sees them. SQL that drops
// prepared statements or portals must drop those too, exactly when Postgres
// would:
//
//   - DEALLOCATE of a statement only the proxy holds is answered by the
//     proxy: the warehouse would say it does not exist.
//   - DEALLOCATE of a statement both hold, DEALLOCATE ALL, DISCARD ALL and
//     CLOSE ALL go to the warehouse, and the proxy drops its own when the
//     warehouse reports the statement done. A failed one (DISCARD ALL in a
//     transaction block, anything in a failed transaction) drops nothing.
//
// Npgsql sends DISCARD ALL whenever a pooled connection is reused, and then
// prepares its statements again under the same names.

// sessionCommand decides a statement that manages the proxy's own
// prepared statements: a lone DEALLOCATE of a statement only the proxy
// holds. The second result is false for every other statement.
func (s *session) sessionCommand(st *Statement) (RouteDecision, bool) {
	if !st.mentions(wordDeallocate) {
		return RouteDecision{}, false
	}
	resets := st.effects().resets
	if len(resets) != 1 || resets[0].kind != resetDeallocate || st.text().multiple {
		return RouteDecision{}, false
	}
	name := resets[0].name
	if ls := s.localStmts[name]; ls == nil || ls.upstream {
		return RouteDecision{}, false
	}
	return RouteDecision{
		Route:    RoutePassthrough,
		Reason:   "session_command",
		Answer:   &deallocateAnswer{sess: s, name: name},
		Fallback: true,
	}, true
}

// deallocateAnswer is DEALLOCATE of a statement only the proxy holds.
type deallocateAnswer struct {
	sess *session
	name string
}

func (a *deallocateAnswer) Columns() []Column    { return nil }
func (a *deallocateAnswer) ParamTypes() []uint32 { return nil }

// errNotLocal sends a prepared DEALLOCATE to the warehouse: since it was
// prepared, the statement it names went there too, or away.
var errNotLocal = errors.New("the statement to deallocate is no longer held by the proxy alone")

// Run drops the statement, which a prepared DEALLOCATE finds only when it
// runs; portals bound to it live on, as in Postgres.
func (a *deallocateAnswer) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	ls := a.sess.localStmts[a.name]
	if ls == nil || ls.upstream {
		return nil, errNotLocal
	}
	delete(a.sess.localStmts, a.name)
	return &Result{Rows: SliceRows(nil), Tag: resetDeallocate.tag()}, nil
}

// prepareForDeallocate prepares on the warehouse, before a Query that
// deallocates them among other statements, the statements only the proxy
// holds, so that the warehouse finds them as Postgres would. In a failed
// transaction the Query fails before it gets to them.
func (s *session) prepareForDeallocate(ops []resetOp) error {
	var local []*localStatement
	for _, op := range ops {
		if ls := s.localStmts[op.name]; op.kind == resetDeallocate && ls != nil && !ls.upstream {
			local = append(local, ls)
		}
	}
	if len(local) == 0 {
		return nil
	}
	if _, err := s.barrier(); err != nil {
		return err
	}
	if byte(s.txStatus.Load()) == 'E' || s.batchUpstream {
		return nil
	}
	for _, ls := range local {
		s.stateMu.Lock()
		if s.isDetached() {
			s.stateMu.Unlock()
			return nil // the Query that needs them gets the loss
		}
		s.pushExpect(&expectation{kind: 'P', swallow: true, quiet: true})
		s.stateMu.Unlock()
		if _, err := s.upW.Write(ls.parse); err != nil {
			return err
		}
		ls.upstream = true
	}
	s.stateMu.Lock()
	if s.isDetached() {
		s.stateMu.Unlock()
		return nil
	}
	s.pushExpect(&expectation{kind: 'S', swallow: true})
	s.stateMu.Unlock()
	_, err := s.upW.Write([]byte{'S', 0, 0, 0, 4})
	return err
}

// resetDoneLocked notes a CommandComplete of a statement with resets: the
// next reset, if the tag is its own. The upstream loop calls it with
// stateMu held; the client loop applies it (settleResets).
func (s *session) resetDoneLocked(e *expectation, body []byte) {
	tag, _, _ := cutCString(body)
	n := e.notes
	if len(n.resets) == 0 || n.resets[0].kind.tag() != tag {
		return
	}
	s.resetsDone = append(s.resetsDone, n.resets[0])
	n.resets = n.resets[1:]
	if n.discardGen != 0 {
		s.discardedLocked(n.discardGen)
	}
}

// settleResets applies the resets the warehouse completed, once it has
// answered everything relayed so far, before the client loop looks up a
// statement or portal the proxy holds. It costs a wait only after a
// statement that may reset was relayed.
func (s *session) settleResets() error {
	if !s.resetsPending {
		return nil
	}
	if _, err := s.barrier(); err != nil {
		return err
	}
	s.resetsPending = false
	s.stateMu.Lock()
	done := s.resetsDone
	s.resetsDone = nil
	s.stateMu.Unlock()
	for _, op := range done {
		s.applyReset(op)
	}
	return nil
}

func (s *session) applyReset(op resetOp) {
	switch op.kind {
	case resetDeallocate:
		delete(s.localStmts, op.name)
		s.upStmts.forget(op.name)
	case resetDeallocateAll:
		clear(s.localStmts)
		s.upStmts.reset()
	case resetDiscardAll:
		clear(s.localStmts)
		s.upStmts.reset()
		s.dropAllPortals()
		s.upPortals.reset()
	case resetCloseAll:
		s.dropAllPortals()
		s.upPortals.reset()
	}
}
