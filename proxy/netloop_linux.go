//go:build linux

package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netLoop is the shared event loop (netloop.go): one epoll set holding the
// sockets of sessions taken out of Go's poller, and the goroutine that
// waits on it, the leader.
type netLoop struct {
	epfd, stopfd int
	log          *slog.Logger

	mu     sync.Mutex
	conns  connTable
	closed bool

	// leader is the runner waiting on the set; a runner that hands over
	// (netLoop.handOver) finishes its callback and ends.
	leader atomic.Pointer[loopRunner]
	done   chan struct{}
	start  time.Time // the clock of loopRunner.scheduled and woke

	// woke is when the leader's last wait returned, since start, and base
	// a reading of the wall clock, taken then every schedulePeriod at
	// most: what connGroup.now reads rather than the clock.
	woke atomic.Int64
	base atomic.Pointer[clockBase]

	// waits counts the waits that returned events, events those events,
	// inlineRuns the callbacks run inline, handOvers the times the loop was
	// handed over (stats), and maxKept is the most bytes a socket kept
	// written inline (for tests).
	waits, events, inlineRuns, handOvers, maxKept atomic.Uint64
}

// clockBase is a reading of the clock, at since the loop's start.
type clockBase struct {
	t  time.Time
	at time.Duration
}

// setBase reads the clock for wakeTime, and returns when, since start.
func (l *netLoop) setBase() time.Duration {
	now := time.Now()
	b := &clockBase{t: now, at: now.Sub(l.start)}
	l.base.Store(b)
	return b.at
}

// wakeTime is when the leader's last wait returned.
func (l *netLoop) wakeTime() time.Time {
	b := l.base.Load()
	return b.t.Add(time.Duration(l.woke.Load()) - b.at)
}

// now returns the time for the statements of the group's session: when
// the leader running its callback inline was woken, which is when what it
// handles had arrived, and costs no reading of the clock; otherwise the
// clock's. The wall clock it gives lags the clock's by the changes made to
// it since the leader last read it, within schedulePeriod.
func (g *connGroup) now() time.Time {
	if g == nil || !g.inline.Load() {
		return time.Now()
	}
	return g.loop.wakeTime()
}

// loopRunner is one leader's turn: the events it took from the set and
// which one it is handling.
type loopRunner struct {
	loop   *netLoop
	events []unix.EpollEvent
	// conns are the sockets of events[i:n], found together under one
	// hold of the loop's lock (resolve).
	conns     []*fdConn
	n, i      int
	inline    uint64        // callbacks run inline since the last count (publish)
	scheduled time.Duration // when it last passed through the scheduler, since the loop's start
	woke      time.Duration // when its last wait returned, since the loop's start
	based     time.Duration // when it last read the wall clock (clockBase), since the loop's start
}

// schedulePeriod is how often a runner passes through the Go scheduler,
// well within the 10 ms after which the runtime preempts a goroutine.
const schedulePeriod = 5 * time.Millisecond

const loopStopID = 0 // the stop eventfd's event data; sockets' are never 0

// connTable finds a socket of the set by its event data, an id: its slot in
// the table (low 32 bits, from 1) and the slot's generation (high 32 bits),
// so that an event already taken for a socket since closed, whose slot a
// new socket took, finds nothing. An index, not a hash, on every event.
type connTable struct {
	slots []*fdConn // slots[i] has slot i+1
	gens  []uint32
	free  []uint32 // slots free to reuse
}

func (t *connTable) add(c *fdConn) (id uint64) {
	var slot uint32
	if n := len(t.free); n > 0 {
		slot, t.free = t.free[n-1], t.free[:n-1]
	} else {
		t.slots = append(t.slots, nil)
		t.gens = append(t.gens, 0)
		slot = uint32(len(t.slots))
	}
	t.gens[slot-1]++
	t.slots[slot-1] = c
	return uint64(t.gens[slot-1])<<32 | uint64(slot)
}

func (t *connTable) get(id uint64) *fdConn {
	slot := uint32(id)
	if slot == 0 || int(slot) > len(t.slots) || t.gens[slot-1] != uint32(id>>32) {
		return nil
	}
	return t.slots[slot-1]
}

func (t *connTable) remove(id uint64) {
	if t.get(id) == nil {
		return
	}
	slot := uint32(id)
	t.slots[slot-1] = nil
	t.free = append(t.free, slot)
}

// newNetLoops starts n event loops; n = 0 is half of GOMAXPROCS, rounded
// up. A loop relays its sessions on one thread at a time, as PgBouncer
// does, so one is all a small machine needs (it then finds the most events
// per wait); a large one needs several to relay on more than one processor
// at once, and the other half of the processors is left for the work that
// leaves the loops (answers, rewrites).
func newNetLoops(n int, log *slog.Logger) ([]*netLoop, error) {
	if n <= 0 {
		n = (runtime.GOMAXPROCS(0) + 1) / 2
	}
	loops := make([]*netLoop, 0, n)
	for range n {
		l, err := newNetLoop(log)
		if err != nil {
			closeLoops(loops)
			return nil, err
		}
		loops = append(loops, l)
	}
	return loops, nil
}

// stats returns the loop's counters.
func (l *netLoop) stats() loopStats {
	return loopStats{waits: l.waits.Load(), events: l.events.Load(), inline: l.inlineRuns.Load(), handOvers: l.handOvers.Load()}
}

// closeLoops stops loops once every socket in them is closed.
func closeLoops(loops []*netLoop) {
	for _, l := range loops {
		l.close()
	}
}

// newNetLoop starts an event loop.
func newNetLoop(log *slog.Logger) (*netLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, loopStopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &netLoop{epfd: epfd, stopfd: stopfd, log: log, done: make(chan struct{}), start: time.Now()}
	r := &loopRunner{loop: l, events: make([]unix.EpollEvent, 128)}
	r.based = l.setBase()
	l.leader.Store(r)
	go l.run(r)
	return l, nil
}

// close stops the loop once every socket in it is closed.
func (l *netLoop) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	one := [8]byte{1}
	_, _ = unix.Write(l.stopfd, one[:])
	<-l.done
	unix.Close(l.epfd)
	unix.Close(l.stopfd)
}

// run waits on the set and handles what it reports until the loop stops
// or r hands over.
func (l *netLoop) run(r *loopRunner) {
	for {
		if r.i < r.n {
			r.resolve()
		}
		for r.i < r.n {
			ev := &r.events[r.i]
			if eventID(ev) == loopStopID {
				r.publish()
				close(l.done)
				return
			}
			if c := r.conns[r.i]; c != nil {
				r.conns[r.i] = nil
				c.ready(ev.Events, l, r)
			}
			if l.leader.Load() != r {
				r.publish()
				return // handed over during the callback
			}
			r.i++
		}
		r.publish()
		if r.woke-r.scheduled > schedulePeriod {
			// The runner never parks, so to the Go scheduler it looks
			// like a goroutine that has run for ever: every 10 ms its
			// monitor thread would preempt it and take its processor
			// away during the next wait, and poll every 20 µs again.
			// Passing through the scheduler now and then tells it the
			// runner is fine.
			r.scheduled = r.woke
			runtime.Gosched()
		}
		n, err := unix.EpollWait(l.epfd, r.events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			l.log.Error("event loop stopped", "err", err)
			close(l.done)
			return
		}
		r.n, r.i = n, 0
		r.woke = time.Since(l.start)
		if r.woke-r.based > schedulePeriod {
			r.based = l.setBase()
			r.woke = r.based
		}
		l.woke.Store(int64(r.woke))
		if n > 0 {
			l.waits.Add(1)
			l.events.Add(uint64(n))
		}
	}
}

// resolve finds the sockets of the events left to handle. A socket closed
// after it was found is one closed after its event was taken, which ready
// deals with; a slot reused since the event was taken finds nothing.
func (r *loopRunner) resolve() {
	l := r.loop
	if len(r.conns) < len(r.events) {
		r.conns = make([]*fdConn, len(r.events))
	}
	l.mu.Lock()
	for i := r.i; i < r.n; i++ {
		r.conns[i] = l.conns.get(eventID(&r.events[i]))
	}
	l.mu.Unlock()
}

// publish adds the callbacks r ran inline to the loop's count: once per
// wait rather than once per callback.
func (r *loopRunner) publish() {
	if r.inline > 0 {
		r.loop.inlineRuns.Add(r.inline)
		r.inline = 0
	}
}

// handOver makes a new runner the leader, with the events r took and has
// not handled, and lets r go on with the callback it runs: a callback that
// is about to wait must not hold up every other session of the loop.
func (l *netLoop) handOver(r *loopRunner) {
	next := &loopRunner{loop: l, events: make([]unix.EpollEvent, len(r.events)), scheduled: r.scheduled, woke: r.woke, based: r.based}
	next.n = copy(next.events, r.events[r.i+1:r.n])
	clear(r.conns[r.i+1 : r.n])
	r.n = r.i + 1
	l.leader.Store(next)
	l.handOvers.Add(1)
	go l.run(next)
}

// takeConn takes conn's socket out of Go's poller (a duplicate of its
// descriptor is kept and conn closed) into the loop, in group g. It returns
// conn unchanged when it is no plain socket or the loop refuses it.
func (l *netLoop) takeConn(conn net.Conn, g *connGroup) net.Conn {
	if l == nil {
		return conn
	}
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return conn
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return conn
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || dupErr != nil {
		return conn
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return conn
	}
	c := &fdConn{fd: fd, loop: l, g: g, laddr: conn.LocalAddr(), raddr: conn.RemoteAddr(),
		rch: make(chan readResult, 1)}
	c.state.Store(2) // the open reference
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		unix.Close(fd)
		return conn
	}
	c.id = l.conns.add(c)
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET}
	setEventID(&ev, c.id)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.mu.Lock()
		l.conns.remove(c.id)
		l.mu.Unlock()
		unix.Close(fd)
		return conn
	}
	conn.Close()
	g.add(c)
	return c
}

// connGroup is the sockets of one session in the loop. Its mutex guards
// the state of both, and an inline callback runs only while both wait in
// the loop with nothing left to write: then no goroutine of the session
// runs, and what the callback does (locks, writes) meets nothing of it.
type connGroup struct {
	loop    *netLoop
	mu      sync.Mutex
	members [2]*fdConn
	// inline: a leader runs a callback of the group; writes that would
	// wait keep the rest (fdConn.overflow) instead. Written with mu held.
	inline atomic.Bool
	runner *loopRunner // the leader running it
	// overflowing: a member has bytes in overflow. Written with mu held.
	overflowing atomic.Bool
}

// newConnGroup returns a group whose sockets join loop.
func newConnGroup(loop *netLoop) *connGroup { return &connGroup{loop: loop} }

// take takes conn into the group's loop (netLoop.takeConn).
func (g *connGroup) take(conn net.Conn) net.Conn { return g.loop.takeConn(conn, g) }

func (g *connGroup) add(c *fdConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, m := range g.members {
		if m == nil || m.isClosed() {
			g.members[i] = c
			return
		}
	}
}

// inlineOK reports whether a callback of c may run on the leader.
func (g *connGroup) inlineOK(c *fdConn) bool {
	if g.inline.Load() || g.overflowing.Load() {
		return false
	}
	n := 0
	for _, m := range g.members {
		if m == nil {
			continue
		}
		if m.isClosed() || m.rstate != readWaiting {
			return false
		}
		n++
	}
	return n == 2
}

// mayBlock is called by a session before something that may wait (an
// answer, a barrier, a dial): if a leader runs the session's callback, it
// hands the loop over and the callback goes on as any goroutine.
func (g *connGroup) mayBlock() {
	if g == nil {
		return
	}
	if !g.inline.Load() {
		return
	}
	g.mu.Lock()
	if !g.inline.Load() {
		g.mu.Unlock()
		return
	}
	g.inline.Store(false)
	r := g.runner
	g.runner = nil
	g.mu.Unlock()
	if r != nil && r.loop.leader.Load() == r {
		r.loop.handOver(r)
	}
}

// yield reports whether bytes written inline wait to be sent: the callback
// running inline then stops reading (connReader.yield), which bounds them.
func (g *connGroup) yield() bool { return g.overflowing.Load() }

// Read states of an fdConn.
const (
	readIdle    = iota // no reader waits: readiness is noted (rready)
	readWaiting        // a RawConn.Read waits with its callback (rf)
	readRunning        // a leader runs rf
)

type readResult struct {
	err  error
	done bool // rf returned true on the loop
}

// fdConn is a socket in the loop: a net.Conn whose RawConn.Read callbacks
// the loop runs inline while the caller waits, and whose other waits
// (Read, Write) park the caller in Go's poller (poll).
type fdConn struct {
	fd           int
	id           uint64
	loop         *netLoop
	g            *connGroup
	laddr, raddr net.Addr

	// state is the references to fd, times two (the open one and the calls
	// using it), plus 1 once closed: fd is closed when it drops to 1.
	state atomic.Int64

	// Guarded by g.mu:
	rstate    int
	rf        func(uintptr) bool
	rready    bool // readable since the last read began
	rdeadline time.Time
	rtimer    *time.Timer
	wdeadline time.Time
	overflow  []byte // written while inline, not yet sent

	rch chan readResult // the waiting RawConn.Read's result
	wmu sync.Mutex      // one writer at a time
}

var _ net.Conn = (*fdConn)(nil)
var _ syscall.Conn = (*fdConn)(nil)

func (c *fdConn) incref() error {
	for {
		st := c.state.Load()
		if st&1 != 0 {
			return net.ErrClosed
		}
		if c.state.CompareAndSwap(st, st+2) {
			return nil
		}
	}
}

func (c *fdConn) isClosed() bool { return c.state.Load()&1 != 0 }

func (c *fdConn) decref() {
	if c.state.Add(-2) == 1 {
		c.loop.mu.Lock()
		c.loop.conns.remove(c.id)
		c.loop.mu.Unlock()
		_ = unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		unix.Close(c.fd)
	}
}

// ready handles an event of the set for c, on leader r.
func (c *fdConn) ready(events uint32, l *netLoop, r *loopRunner) {
	g := c.g
	if events&unix.EPOLLOUT != 0 && g.overflowing.Load() {
		c.flushOverflow()
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	g.mu.Lock()
	if c.rstate != readWaiting {
		c.rready = true
		g.mu.Unlock()
		return
	}
	if c.isClosed() || !g.inlineOK(c) {
		c.wakeLocked(readResult{})
		g.mu.Unlock()
		return
	}
	// rf reads fd without a reference of its own: the RawConn.Read
	// waiting with it holds one, and is woken only once rf returns.
	c.rstate = readRunning
	g.inline.Store(true)
	g.runner = r
	f := c.rf
	g.mu.Unlock()

	r.inline++
	done := f(uintptr(c.fd))

	g.mu.Lock()
	if g.runner == r {
		g.inline.Store(false)
		g.runner = nil
	}
	c.rstate = readWaiting
	switch {
	case done:
		c.wakeLocked(readResult{done: true})
	case c.isClosed():
		c.wakeLocked(readResult{err: net.ErrClosed})
	case c.rdeadlinePassed():
		c.wakeLocked(readResult{err: os.ErrDeadlineExceeded})
	case c.rready || l.leader.Load() != r:
		// Readable again while the callback ran somewhere other than
		// on the leader: the caller runs it again itself.
		c.wakeLocked(readResult{})
	}
	members := g.members
	g.mu.Unlock()
	if g.overflowing.Load() {
		for _, m := range members {
			if m != nil {
				m.flushOverflow()
			}
		}
	}
}

// wakeLocked ends the wait of the RawConn.Read waiting on c.
func (c *fdConn) wakeLocked(res readResult) {
	if c.rstate != readWaiting {
		return
	}
	c.rstate, c.rf = readIdle, nil
	if c.rtimer != nil {
		c.rtimer.Stop()
	}
	c.rch <- res
}

func (c *fdConn) rdeadlinePassed() bool {
	return !c.rdeadline.IsZero() && !time.Now().Before(c.rdeadline)
}

// Read reads what the socket has, waiting for it on the caller's thread.
func (c *fdConn) Read(p []byte) (int, error) {
	if err := c.incref(); err != nil {
		return 0, err
	}
	defer c.decref()
	for {
		c.g.mu.Lock()
		c.rready = false
		c.g.mu.Unlock()
		n, err := rawRead(uintptr(c.fd), p)
		if err == nil {
			if n == 0 && len(p) > 0 {
				if c.isClosed() {
					return 0, net.ErrClosed
				}
				return 0, io.EOF
			}
			return n, nil
		}
		if err != errWouldBlock {
			return 0, err
		}
		if err := c.poll(unix.POLLIN, true); err != nil {
			return 0, err
		}
	}
}

// pollSlice bounds one wait of Read and Write, after which they look at
// their deadline and the connection's close again.
const pollSlice = 50 * time.Millisecond

// poll waits until the socket is ready for events (unix.POLLIN or
// POLLOUT), past its deadline, or closed.
//
// The wait is Go's poller's, on a duplicate of the descriptor made for it:
// a wait in poll(2) would hold the caller's thread, and every session
// waiting at once (logins, slow readers of big answers) would then hold a
// thread of its own. Ready sockets never get here, so the duplicate and its
// two epoll_ctl calls are paid only by waits.
func (c *fdConn) poll(events int16, read bool) error {
	if err := c.pollExpired(read); err != nil {
		return err
	}
	fd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	// The duplicate shares the socket's O_NONBLOCK, so os.NewFile puts
	// it in Go's poller; edge-triggered, it reports a socket ready before
	// it joined at once.
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// The poller forgets what it saw before each wait begins, so each
	// wait first looks at the socket itself (a poll(2) that does not
	// wait): readiness from before is found there, and any after makes an
	// edge the poller reports.
	ready := func(fd uintptr) bool {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds[:], 0)
		return n > 0 || err != nil && !errors.Is(err, unix.EINTR)
	}
	for {
		slice := time.Now().Add(pollSlice)
		if d := c.deadline(read); !d.IsZero() && d.Before(slice) {
			slice = d
		}
		if events&unix.POLLIN != 0 {
			_ = f.SetReadDeadline(slice)
			err = raw.Read(ready)
		} else {
			_ = f.SetWriteDeadline(slice)
			err = raw.Write(ready)
		}
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return err
		}
		if err := c.pollExpired(read); err != nil {
			return err
		}
	}
}

// deadline returns the read or the write deadline.
func (c *fdConn) deadline(read bool) time.Time {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if read {
		return c.rdeadline
	}
	return c.wdeadline
}

// pollExpired reports why a wait must end now: the connection is closed
// or its deadline has passed.
func (c *fdConn) pollExpired(read bool) error {
	if c.isClosed() {
		return net.ErrClosed
	}
	if d := c.deadline(read); !d.IsZero() && !time.Now().Before(d) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Write writes p whole: after anything written inline and not sent yet.
// Inline, what the socket cannot take now is kept for the loop to send.
func (c *fdConn) Write(p []byte) (int, error) {
	if err := c.incref(); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	n, err := c.writeLocked(p)
	c.wmu.Unlock()
	c.decref()
	return n, err
}

// writeLocked is Write with a reference taken and wmu held.
func (c *fdConn) writeLocked(p []byte) (int, error) {
	if c.g.overflowing.Load() {
		if done, err := c.writeAfterOverflow(p); done {
			return len(p), err
		}
	}
	written := 0
	for written < len(p) {
		n, err := rawWrite(uintptr(c.fd), p[written:])
		if err == nil {
			written += n
			continue
		}
		if err != errWouldBlock {
			return written, err
		}
		if c.g.inline.Load() && c.keepInline(p[written:]) {
			return len(p), nil
		}
		if err := c.poll(unix.POLLOUT, false); err != nil {
			return written, err
		}
	}
	return written, nil
}

// keepInline keeps p to send later, when the caller writes inline.
func (c *fdConn) keepInline(p []byte) bool {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if !c.g.inline.Load() {
		return false
	}
	c.overflow = append(c.overflow, p...)
	c.g.overflowing.Store(true)
	if n := uint64(len(c.overflow)); n > c.loop.maxKept.Load() {
		c.loop.maxKept.Store(n)
	}
	return true
}

// writeAfterOverflow deals with what is kept before p (c.wmu held): inline
// p is kept after it (done); otherwise it is sent first, waiting for the
// socket as long as it takes.
func (c *fdConn) writeAfterOverflow(p []byte) (done bool, err error) {
	for {
		c.g.mu.Lock()
		if len(c.overflow) == 0 {
			c.g.mu.Unlock()
			return false, nil
		}
		if c.g.inline.Load() {
			c.overflow = append(c.overflow, p...)
			c.g.mu.Unlock()
			return true, nil
		}
		n, err := rawWrite(uintptr(c.fd), c.overflow)
		if err != nil && err != errWouldBlock {
			c.g.mu.Unlock()
			return true, err
		}
		c.overflow = c.overflow[n:]
		c.g.noteOverflowLocked()
		c.g.mu.Unlock()
		if err == errWouldBlock {
			if err := c.poll(unix.POLLOUT, false); err != nil {
				return true, err
			}
		}
	}
}

// noteOverflowLocked sets overflowing after a member's overflow changed.
func (g *connGroup) noteOverflowLocked() {
	kept := false
	for _, m := range g.members {
		switch {
		case m == nil:
		case len(m.overflow) > 0 && !m.isClosed():
			kept = true
		default:
			m.overflow = nil // sent, or never will be
		}
	}
	g.overflowing.Store(kept)
}

// flushOverflow sends what the socket takes of what was written inline,
// unless a writer is at it (it sends it first).
func (c *fdConn) flushOverflow() {
	if !c.wmu.TryLock() {
		return
	}
	defer c.wmu.Unlock()
	if c.incref() != nil {
		return
	}
	defer c.decref()
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	for len(c.overflow) > 0 {
		n, err := rawWrite(uintptr(c.fd), c.overflow)
		if err != nil {
			break // would block: the next EPOLLOUT; else the next write fails
		}
		c.overflow = c.overflow[n:]
	}
	c.g.noteOverflowLocked()
}

// Close closes the connection: a wait on it ends with net.ErrClosed, and
// the descriptor is closed once no call uses it.
func (c *fdConn) Close() error {
	c.g.mu.Lock()
	if c.state.Or(1)&1 != 0 {
		c.g.mu.Unlock()
		return net.ErrClosed
	}
	c.wakeLocked(readResult{err: net.ErrClosed})
	c.g.noteOverflowLocked()
	c.g.mu.Unlock()
	// Wakes a Read or Write polling on another thread, as a close would not.
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	c.decref()
	return nil
}

func (c *fdConn) LocalAddr() net.Addr  { return c.laddr }
func (c *fdConn) RemoteAddr() net.Addr { return c.raddr }

func (c *fdConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *fdConn) SetReadDeadline(t time.Time) error {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if c.isClosed() {
		return net.ErrClosed
	}
	c.rdeadline = t
	if c.rstate == readWaiting {
		if c.rdeadlinePassed() {
			c.wakeLocked(readResult{err: os.ErrDeadlineExceeded})
		} else {
			c.armReadTimerLocked()
		}
	}
	return nil
}

func (c *fdConn) SetWriteDeadline(t time.Time) error {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if c.isClosed() {
		return net.ErrClosed
	}
	c.wdeadline = t
	return nil
}

// armReadTimerLocked ends the waiting RawConn.Read at its deadline.
func (c *fdConn) armReadTimerLocked() {
	if c.rdeadline.IsZero() {
		if c.rtimer != nil {
			c.rtimer.Stop()
		}
		return
	}
	d := time.Until(c.rdeadline)
	if c.rtimer == nil {
		c.rtimer = time.AfterFunc(d, c.readTimedOut)
		return
	}
	c.rtimer.Reset(d)
}

func (c *fdConn) readTimedOut() {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if c.rstate == readWaiting && c.rdeadlinePassed() {
		c.wakeLocked(readResult{err: os.ErrDeadlineExceeded})
	}
}

// SyscallConn returns the socket as the event loop and the idle poller use it.
func (c *fdConn) SyscallConn() (syscall.RawConn, error) { return fdRawConn{c}, nil }

// fdRawConn is an fdConn's socket.
type fdRawConn struct{ c *fdConn }

func (rc fdRawConn) Control(f func(fd uintptr)) error {
	c := rc.c
	if err := c.incref(); err != nil {
		return err
	}
	defer c.decref()
	f(uintptr(c.fd))
	return nil
}

// Read calls f until it returns true; between calls it waits for the
// socket to be readable, and the loop runs f itself, inline, while the
// session's sockets both wait in it (connGroup).
func (rc fdRawConn) Read(f func(fd uintptr) bool) error {
	c := rc.c
	if err := c.incref(); err != nil {
		return err
	}
	defer c.decref()
	for {
		c.g.mu.Lock()
		c.rready = false
		c.g.mu.Unlock()
		if f(uintptr(c.fd)) {
			return nil
		}
		c.g.mu.Lock()
		switch {
		case c.isClosed():
			c.g.mu.Unlock()
			return net.ErrClosed
		case c.rdeadlinePassed():
			c.g.mu.Unlock()
			return os.ErrDeadlineExceeded
		case c.rready:
			c.g.mu.Unlock()
			continue
		}
		c.rstate, c.rf = readWaiting, f
		c.armReadTimerLocked()
		c.g.mu.Unlock()
		res := <-c.rch
		if res.err != nil {
			return res.err
		}
		if res.done {
			return nil
		}
	}
}

func (rc fdRawConn) Write(f func(fd uintptr) bool) error {
	c := rc.c
	if err := c.incref(); err != nil {
		return err
	}
	defer c.decref()
	for !f(uintptr(c.fd)) {
		if err := c.poll(unix.POLLOUT, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *fdConn) inlineRaw() syscall.RawConn { return fdRawConn{c} }
