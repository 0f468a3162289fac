package proxy

// During COPY FROM STDIN the warehouse ignores Sync (and Flush): pgjdbc, for
// one, sends a Sync after its copy data and another after CopyDone, and only
// the second is answered. The proxy must not wait for an answer to the
// first, nor count it against the second. It cannot tell from the client's
// messages whether a COPY entered copy-in mode (it may fail first, and then
// the Sync is answered), so it marks a Sync sent while one may have, and
// settles it with the warehouse's answers: CopyInResponse starts copy-in,
// and the COPY's CommandComplete ends it, after which the marked Syncs are
// known to have been ignored. An error in copy-in makes the warehouse
// answer them after all, as it does any Sync after an error.

// copyStart follows one statement that may start COPY FROM STDIN. It is
// guarded by session.stateMu.
type copyStart struct {
	started bool // the warehouse sent CopyInResponse
	failed  bool // an error ended it
}

// copyMayStart notes a relayed statement that may start COPY FROM STDIN
// (st nil: unknown) and returns what follows it, nil for one that cannot.
// The client loop calls it.
func (s *session) copyMayStart(st *Statement) *copyStart {
	if st != nil && !st.mentions(wordCopy) {
		s.copyPending = nil
		return nil
	}
	s.batchMayCopy = true
	s.copyPending = &copyStart{}
	return s.copyPending
}

// copyEnded notes the client's CopyDone or CopyFail, after which the
// warehouse answers Sync again.
func (s *session) copyEnded() { s.copyPending = nil }

// syncIgnoredBy returns the COPY a Sync arriving now may be ignored by, nil
// when none: no COPY was relayed since the last CopyDone, or the one that
// was is answered without having entered copy-in.
func (s *session) syncIgnoredBy() *copyStart {
	c := s.copyPending
	if c == nil {
		return nil
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if c.failed || s.expect.len() == 0 && !c.started {
		s.copyPending = nil
		return nil
	}
	return c
}

// copyObservedLocked accounts for a warehouse message answering head, a
// statement that may have started COPY FROM STDIN. The caller holds
// stateMu.
func copyObservedLocked(head *expectation, typ byte) {
	switch typ {
	case 'G':
		head.notes.copy.started = true
	case 'E':
		head.notes.copy.failed = true
	}
}
