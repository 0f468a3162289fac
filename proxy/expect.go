package proxy

import "time"

// expectation is a client message relayed to the warehouse whose answer has
// not been seen yet. The queue of them tells the proxy when every earlier
// answer has reached the client, which is when it may answer a statement
// itself without reordering the conversation.
type expectation struct {
	// kind is the client message type: P, B, D, E, C (extended protocol),
	// S (Sync), Q (Query) or F (FunctionCall).
	kind byte
	// swallow hides the answer from the client: the proxy sent the message
	// on its own (to prepare upstream what the client prepared locally).
	swallow bool
	// quiet hides even an error: the proxy's own statement, whose failure
	// is the proxy's business (reading settings, failing a transaction).
	quiet bool
	// wrote: the statement (Q, E, F) may modify data.
	wrote bool
	// at is when the batch a sync point (Q, S, F) ends began; a transaction
	// block it opens is taken to have started then.
	at time.Time
	// newTx: the statement (Q, E, F), or the batch a Sync ends, may have
	// ended a transaction, so that a block open after it may have begun
	// within it.
	newTx bool
	// notes, when set, is what the proxy does with the answer besides
	// relaying it. Most expectations have none: kept apart, the queue's
	// entries stay small to copy.
	notes *answerNotes
}

// answerNotes is what the proxy takes from an answer, for the few client
// messages that need it.
type answerNotes struct {
	// settings, when set, is the proxy's read of the session's settings.
	settings *settingsRead
	// resets are the statement's DEALLOCATE, DISCARD ALL and CLOSE ALL
	// not yet answered, each applied when its CommandComplete arrives.
	resets []resetOp
	// discardGen, when not 0, marks a lone DISCARD ALL: once done, the
	// settings are the session's defaults again, unless a change counted
	// after discardGen came since (session_settings.go).
	discardGen uint64
	// copy follows a statement (Q, E) that may start COPY FROM STDIN;
	// ignoredBy marks a Sync sent while that COPY may be in copy-in mode,
	// which the warehouse then ignores (session_copy.go).
	copy      *copyStart
	ignoredBy *copyStart
	// describes, on a Describe of a local statement relayed to the
	// warehouse, takes the parameter types its ParameterDescription gives.
	describes *localStatement
	// origins, on a Query the warehouse finishes, are the origins its
	// RowDescription must name, as it would for the client's statement.
	origins []ColumnOrigin
}

// noted returns e's notes, made when it has none.
func (e *expectation) noted() *answerNotes {
	if e.notes == nil {
		e.notes = &answerNotes{}
	}
	return e.notes
}

// copyStart returns the COPY e's statement may start, nil for none.
func (e *expectation) copyStart() *copyStart {
	if e.notes == nil {
		return nil
	}
	return e.notes.copy
}

// settingsRead returns the settings read e is, nil for none.
func (e *expectation) settingsRead() *settingsRead {
	if e.notes == nil {
		return nil
	}
	return e.notes.settings
}

// expectQueue is a FIFO of expectations. It is guarded by session.stateMu.
type expectQueue struct {
	items []expectation
	head  int
	// ignoreTillSync mirrors the warehouse after an error in the extended
	// protocol: it discards every message until Sync, so those get no answer.
	ignoreTillSync bool
	// onPop, when set, is told of every expectation answered (or skipped
	// by the warehouse after an error), in order.
	onPop func(*expectation)
}

func (q *expectQueue) len() int { return len(q.items) - q.head }

func (q *expectQueue) push(e *expectation) {
	if q.ignoreTillSync && e.kind != 'S' {
		return
	}
	if e.kind == 'S' {
		q.ignoreTillSync = false
	}
	q.items = append(q.items, *e)
}

// peek returns the oldest expectation, nil when there is none. It points
// into the queue: valid until the next push or pop.
func (q *expectQueue) peek() *expectation {
	if q.head == len(q.items) {
		return nil
	}
	return &q.items[q.head]
}

func (q *expectQueue) pop() {
	if q.onPop != nil {
		q.onPop(&q.items[q.head])
	}
	q.items[q.head] = expectation{} // let its pointers go
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// drain empties the queue without telling onPop, and returns what was in
// it, oldest first: the warehouse will answer none of it.
func (q *expectQueue) drain() []expectation {
	items := append([]expectation(nil), q.items[q.head:]...)
	clear(q.items)
	q.items, q.head = q.items[:0], 0
	q.ignoreTillSync = false
	return items
}

// isSyncPoint reports whether the warehouse answers kind with ReadyForQuery.
func isSyncPoint(kind byte) bool { return kind == 'S' || kind == 'Q' || kind == 'F' }

// observe accounts for one message from the warehouse and reports whether
// the client should see it. The warehouse answers in order, so each
// completion belongs to the oldest expectation.
func (q *expectQueue) observe(typ byte) (relay bool) {
	head := q.peek()
	if head == nil {
		// Asynchronous messages (notices, notifications, parameter changes)
		// and FATAL errors arrive with nothing expected.
		return true
	}
	relay = !head.swallow
	switch typ {
	case '1':
		q.popIf(head.kind, 'P')
	case '2':
		q.popIf(head.kind, 'B')
	case '3':
		q.popIf(head.kind, 'C')
	case 'T', 'n':
		q.popIf(head.kind, 'D')
	case 'C', 'I', 's':
		kind, copying := head.kind, head.copyStart()
		q.popIf(kind, 'E')
		if typ == 'C' && kind == 'E' {
			q.popIgnoredSyncs(copying)
		}
	case 'E':
		// An error is the client's business even for the proxy's own
		// message, unless that is quiet.
		relay = !head.quiet
		if !isSyncPoint(head.kind) {
			// Postgres now skips everything up to the next Sync.
			for {
				h := q.peek()
				if h == nil {
					q.ignoreTillSync = true
					break
				}
				if h.kind == 'S' {
					break
				}
				q.pop()
			}
		}
	case 'Z':
		for {
			h := q.peek()
			if h == nil {
				break
			}
			kind, copying := h.kind, h.copyStart()
			q.pop()
			if isSyncPoint(kind) {
				if kind == 'Q' {
					q.popIgnoredSyncs(copying)
				}
				break
			}
		}
	case 'A', 'N', 'S':
		relay = true
	}
	return relay
}

// popIgnoredSyncs drops the Syncs sent during the copy-in of a COPY that
// just completed: the warehouse ignored them.
func (q *expectQueue) popIgnoredSyncs(c *copyStart) {
	if c == nil || !c.started || c.failed {
		return
	}
	for {
		h := q.peek()
		if h == nil || h.kind != 'S' || h.notes == nil || h.notes.ignoredBy != c {
			return
		}
		q.pop()
	}
}

// popIf pops the oldest expectation, whose kind is headKind, when that is kind.
func (q *expectQueue) popIf(headKind, kind byte) {
	if headKind == kind {
		q.pop()
	}
}
