package proxy

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
}

// expectQueue is a FIFO of expectations. It is guarded by session.stateMu.
type expectQueue struct {
	items []expectation
	head  int
	// ignoreTillSync mirrors the warehouse after an error in the extended
	// protocol: it discards every message until Sync, so those get no answer.
	ignoreTillSync bool
}

func (q *expectQueue) len() int { return len(q.items) - q.head }

func (q *expectQueue) push(e expectation) {
	if q.ignoreTillSync && e.kind != 'S' {
		return
	}
	if e.kind == 'S' {
		q.ignoreTillSync = false
	}
	q.items = append(q.items, e)
}

func (q *expectQueue) peek() (expectation, bool) {
	if q.head == len(q.items) {
		return expectation{}, false
	}
	return q.items[q.head], true
}

func (q *expectQueue) pop() {
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// isSyncPoint reports whether the warehouse answers kind with ReadyForQuery.
func isSyncPoint(kind byte) bool { return kind == 'S' || kind == 'Q' || kind == 'F' }

// observe accounts for one message from the warehouse and reports whether
// the client should see it. The warehouse answers in order, so each
// completion belongs to the oldest expectation.
func (q *expectQueue) observe(typ byte) (relay bool) {
	head, ok := q.peek()
	if !ok {
		// Asynchronous messages (notices, notifications, parameter changes)
		// and FATAL errors arrive with nothing expected.
		return true
	}
	relay = !head.swallow
	switch typ {
	case '1':
		q.popIf(head, 'P')
	case '2':
		q.popIf(head, 'B')
	case '3':
		q.popIf(head, 'C')
	case 'T', 'n':
		q.popIf(head, 'D')
	case 'C', 'I', 's':
		q.popIf(head, 'E')
	case 'E':
		relay = true // an error is the client's business even for our own message
		if !isSyncPoint(head.kind) {
			// Postgres now skips everything up to the next Sync.
			for {
				h, ok := q.peek()
				if !ok {
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
			h, ok := q.peek()
			if !ok {
				break
			}
			q.pop()
			if isSyncPoint(h.kind) {
				break
			}
		}
	case 'A', 'N', 'S':
		relay = true
	}
	return relay
}

func (q *expectQueue) popIf(head expectation, kind byte) {
	if head.kind == kind {
		q.pop()
	}
}
