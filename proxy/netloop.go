package proxy

import "syscall"

// The shared event loop (Options.EventLoop). In Go's own model every
// session has two goroutines, and each message wakes one of them through
// the runtime's poller and scheduler: about 4 µs of CPU per transaction
// more than PgBouncer's single event loop on the same machine (README,
// "Benchmark"). With the loop, a session's sockets leave Go's poller once
// its startup is done (a duplicate of the descriptor is kept and the
// net.Conn closed) for one epoll set, and the goroutine that waits on it
// runs the session's event-loop callbacks (evloop.go) itself, inline, while
// the session's goroutines stay parked: a relayed statement and its answer
// cost no goroutine switch at all.
//
// Inline runs only what cannot wait: a callback runs on the loop while both
// of the session's sockets wait in it and nothing written inline is still
// unsent, so that no goroutine of the session holds a lock it takes or
// writes beside it; a write the socket cannot take now is kept
// (fdConn.keepInline) and sent when it can, and until then the session's own
// goroutines run its callbacks, with backpressure. Whatever may wait (an
// answer of the proxy's, a barrier, a probe, a dial, routing work beyond a
// glance) calls connGroup.mayBlock first: the loop is handed over to a new
// goroutine and the callback goes on as any goroutine would. Other waits of
// a socket in the loop (a login's messages, a message read in parts, a full
// send buffer) park the caller in Go's poller, on a duplicate of the
// descriptor made for the wait (fdConn.poll).

// inlineConn is a connection in the shared event loop.
type inlineConn interface {
	inlineRaw() syscall.RawConn
}

// loopStats are an event loop's counters (pgrollup_event_loop_*).
type loopStats struct {
	waits, events, inline, handOvers uint64
}
