package proxy

// An answer of the proxy's takes its place in the conversation: the client
// loop waits until the warehouse has answered everything relayed before it,
// and the upstream loop says when the last of those answers is with the
// client.

var flushMessage = []byte{'H', 0, 0, 0, 4}

// barrier waits until the warehouse has answered everything relayed so far,
// so that an answer from the proxy lands in its place in the conversation.
// It reports false when the answer must not be given at all: the batch
// already failed and, as Postgres does, everything up to Sync is skipped.
func (s *session) barrier() (bool, error) {
	s.stateMu.Lock()
	pending := s.expect.len() > 0
	s.stateMu.Unlock()
	if pending {
		// Without a Flush the warehouse may hold back answers to an
		// unsynced batch, and we would wait forever.
		if _, err := s.upW.Write(flushMessage); err != nil {
			return false, err
		}
		if err := s.upW.Flush(); err != nil {
			return false, err
		}
	}
	if err := s.waitAnswered(); err != nil {
		return false, err
	}
	// The connection may have been lost meanwhile, failing the batch.
	s.noticeLoss()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return !s.batchFailed && !s.expect.ignoreTillSync, nil
}

// waitAnswered waits until the warehouse has answered everything sent to
// it (which the caller has flushed).
func (s *session) waitAnswered() error {
	s.group.mayBlock()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.answerWaiters.Add(1)
	for (s.expect.len() > 0 || s.passing.Load()) && !s.closing {
		s.drained.Wait()
	}
	s.answerWaiters.Add(-1)
	if s.closing {
		return errSessionDone
	}
	return nil
}

// passed notes that the upstream loop has handed the client the message it
// observed last, and wakes a barrier waiting for that. It takes no lock
// unless one waits: a barrier counts itself among answerWaiters before it
// looks at passing, and passed looks at the count after it clears passing,
// so (these being sequentially consistent) either the barrier sees passing
// cleared or passed sees the barrier, and wakes it under the lock it waits
// with.
func (s *session) passed() {
	if !s.passing.Load() {
		return
	}
	s.passing.Store(false)
	if s.answerWaiters.Load() > 0 {
		s.stateMu.Lock()
		s.drained.Broadcast()
		s.stateMu.Unlock()
	}
}
