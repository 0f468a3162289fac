package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// An idle session should cost what its state costs, as in PgBouncer, not
// two goroutines blocked in reads: a goroutine parked in a network read
// keeps a stack of at least 4 kB (the runtime halves a stack only while a
// quarter of it is unused), which is more than the rest of the session.
// So a connection that has been silent for a while gives up its goroutine:
// the sweeper interrupts its read (a read deadline in the past), the loop
// hands the connection to the idle poller and returns, and the poller
// starts the loop again when the connection has something to read or
// closes. A busy connection never sees any of it: its loop only marks when
// it starts and stops waiting.
const (
	// idleTick is how often the sweeper looks for silent connections.
	idleTick = 500 * time.Millisecond
	// idleTicks is how many ticks a connection must have waited before
	// its loop is asked to park: one to two seconds.
	idleTicks = 2
)

// pastDeadline interrupts a blocked read at once.
var pastDeadline = time.Unix(1, 0)

// idleWait is one side of a session (client or warehouse connection) as the
// idle machinery sees it. The sweeper reads waitingSince and kicks; the
// loop reads and parks; the poller resumes. id and resume are guarded by the
// poller's mu.
type idleWait struct {
	// conn is the connection whose read is interrupted, raw the socket
	// under it that the poller watches; raw is nil when the connection
	// cannot be watched (not a socket), which keeps its loop waiting.
	conn net.Conn
	raw  syscall.RawConn
	// clock is the sweeper's tick count, from 1.
	clock *atomic.Int64
	// waitingSince is the sweeper tick when the loop began waiting for
	// the next message, 0 while it reads with the pull path. In the event
	// loop it is not cleared while a callback handles what arrived: a
	// callback is short, and the sweeper's rare kick during one costs one
	// needless park, where clearing and setting it cost two atomic
	// stores on every event (startWaiting stores only a new tick).
	waitingSince atomic.Int64
	// kicked: the sweeper set a read deadline in the past to end the wait.
	kicked atomic.Bool

	id     uint64 // the poller's registration while parked, else 0
	resume func()
}

// newIdleWait prepares the idle side of conn, on the sweeper's clock.
func newIdleWait(conn net.Conn, clock *atomic.Int64) *idleWait {
	w := &idleWait{conn: conn, clock: clock}
	c := conn
	if t, ok := c.(*tls.Conn); ok {
		// A TLS read that timed out had no plaintext left to return, and
		// any partial record waits for more bytes from the socket: what
		// the socket has is all there is to watch.
		c = t.NetConn()
	}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	return w
}

// kickIfIdle ends the wait of a loop that has waited since before tick-idleTicks.
func (w *idleWait) kickIfIdle(tick int64) {
	if w == nil || w.raw == nil {
		return
	}
	since := w.waitingSince.Load()
	if since == 0 || tick-since < idleTicks || w.kicked.Load() {
		return
	}
	w.kicked.Store(true)
	_ = w.conn.SetReadDeadline(pastDeadline)
}

// wasKicked reports whether err is the sweeper's interruption, and if so
// clears it so that the connection reads again.
func (w *idleWait) wasKicked(err error) bool {
	if w == nil || !w.kicked.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	w.kicked.Store(false)
	_ = w.conn.SetReadDeadline(time.Time{})
	return true
}

// idlePoller watches parked connections and resumes their loops. The
// platform part (idle_linux.go) is an epoll set; where there is none,
// newIdlePoller returns nil and no connection parks.
type idlePoller struct {
	sys *pollerSys

	mu     sync.Mutex
	next   uint64
	waits  map[uint64]*idleWait
	closed bool
}

// park watches w's connection and calls resume, once, when it has
// something to read or has closed. It reports false when it cannot: the
// caller then goes on waiting itself.
func (p *idlePoller) park(w *idleWait, resume func()) bool {
	if p == nil || w.raw == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.next++
	id := p.next
	if err := p.sys.watch(w.raw, id); err != nil {
		return false
	}
	w.id, w.resume = id, resume
	p.waits[id] = w
	return true
}

// unpark takes w back from the poller before its connection closes. It
// reports whether w was parked: its loop is then the caller's to resume.
func (p *idlePoller) unpark(w *idleWait) bool {
	if p == nil || w == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.id == 0 {
		return false
	}
	delete(p.waits, w.id)
	w.id, w.resume = 0, nil
	p.sys.unwatch(w.raw)
	return true
}

// ready resumes the loop parked under id, unless it was taken back.
func (p *idlePoller) ready(id uint64) {
	p.mu.Lock()
	w := p.waits[id]
	var resume func()
	if w != nil {
		delete(p.waits, id)
		resume = w.resume
		w.id, w.resume = 0, nil
	}
	p.mu.Unlock()
	if resume != nil {
		resume()
	}
}

// parked returns how many loops are parked.
func (p *idlePoller) parked() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waits)
}

// close stops the poller once no session is left; a later park fails.
// Loops still parked are resumed so that they see their connections end.
func (p *idlePoller) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var resumes []func()
	for id, w := range p.waits {
		delete(p.waits, id)
		p.sys.unwatch(w.raw)
		resumes = append(resumes, w.resume)
		w.id, w.resume = 0, nil
	}
	p.mu.Unlock()
	p.sys.close()
	for _, resume := range resumes {
		resume()
	}
}

// errParked ends a loop that handed its connection to the idle poller.
var errParked = errors.New("parked")
