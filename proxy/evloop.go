package proxy

import (
	"encoding/binary"
	"io"
	"net"
	"syscall"
)

// A loop that reads its connection with conn.Read pays a read that fails
// for every message: Go's poller tries the read, finds nothing (EAGAIN),
// parks the goroutine, and reads again once the socket is readable. On a
// request/response protocol every read after an answer is such a miss, so
// a proxy makes twice the reads it needs, and PgBouncer, which reads only
// when epoll says the socket is readable, does not.
//
// So where it can (a plain TCP or Unix socket, evloop_linux.go), a loop
// runs inside RawConn.Read: Go's poller calls back when the socket is
// readable, the callback reads what is there with one syscall, handles
// every whole message read, and then, the socket drained (a short read),
// asks to wait for the next readiness without trying again. The poller
// clears its readiness flag before it calls back, so bytes that arrive
// during the read or while the messages are handled set it again and the
// wait returns at once: none is missed.
//
// What the callback does not handle leaves it for the pull path
// (messageReader.next and conn.Read), one message at a time: a message too
// big for the buffer, a bad length, a read error or the end of the
// connection. A handler must not read its own connection (the callback
// holds it), and its connection must not be closed with a Close that waits
// for the callback to return: closeConn closes it without waiting.

// eventConn returns the socket under conn that a loop can read in an event
// loop, or nil when the loop reads with conn.Read: TLS, which has to read
// through its own state, and platforms without an event loop.
func eventConn(conn net.Conn) syscall.RawConn {
	if !eventLoops {
		return nil
	}
	if c, ok := conn.(inlineConn); ok {
		return c.inlineRaw()
	}
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// serveEvents runs handle for every whole message the connection brings,
// as the loop framed it, until handle fails, the next message needs the
// pull path, or the wait for the socket fails. It returns
// handle's error, or else the wait's (an idle kick, a closed connection);
// with neither, the caller reads the next message with next.
func (m *messageReader) serveEvents(handle func(message) error) (handleErr, waitErr error) {
	c := m.r
	ev := c.ev
	if ev == nil {
		ev = &eventLoop{m: m}
		ev.readable = ev.onReadable
		c.ev = ev
	}
	ev.handle = handle
	c.inLoop = true
	waitErr = c.raw.Read(ev.readable)
	c.inLoop = false
	ev.handle = nil
	handleErr, ev.err = ev.err, nil
	if c.idle != nil {
		c.idle.waitingSince.Store(0)
	}
	return handleErr, waitErr
}

// eventLoop is the state of a connection's event loop: its callback, made
// once, and what it reports.
type eventLoop struct {
	m        *messageReader
	readable func(fd uintptr) bool // onReadable
	handle   func(message) error
	err      error // handle's
}

// onReadable is the event loop's RawConn.Read callback: it handles the
// whole messages buffered, reads what the socket has, and reports false to
// wait for the socket to be readable again once it is drained, true to
// leave the loop.
func (ev *eventLoop) onReadable(fd uintptr) bool {
	c := ev.m.r
	for {
		if !ev.handleWhole() {
			return true
		}
		if c.yield != nil && c.yield() {
			// The loop runs this callback inline and a write it made
			// waits to be sent: the session's goroutine reads on,
			// waiting for the socket as it writes.
			return true
		}
		if c.closing.Load() && c.err == nil {
			c.err = net.ErrClosed
		}
		if c.err != nil {
			return true // the pull path reports the end
		}
		space := c.room()
		n, err := rawRead(fd, c.buf[c.w:])
		if err == errWouldBlock {
			c.full = false
			break
		}
		if err != nil || n <= 0 {
			if err == nil {
				err = io.EOF
			}
			c.err = err
			return true
		}
		c.w += n
		c.reads++
		c.full = n == space
		if !c.full {
			// Drained: handle what came, then wait for the next
			// readiness instead of reading into EAGAIN.
			if !ev.handleWhole() {
				return true
			}
			break
		}
	}
	c.startWaiting()
	return false
}

// handleWhole runs handle for each whole message buffered. It reports false
// when the loop must leave: handle failed (err), the connection is being
// closed, or the next message is one for the pull path (too big to hold, a
// bad length, the rest of a message relayed in parts).
func (ev *eventLoop) handleWhole() bool {
	m := ev.m
	c := m.r
	for {
		if m.pending > 0 {
			return false
		}
		n := c.w - c.r
		if n < 5 {
			return true
		}
		length := int(int32(binary.BigEndian.Uint32(c.buf[c.r+1:])))
		if length < 4 || 1+length > c.Size() || (m.maxLen > 0 && length > m.maxLen) {
			return false
		}
		if n < 1+length {
			return true
		}
		if c.closing.Load() {
			return false
		}
		if err := ev.handle(m.takeWhole(1 + length)); err != nil {
			ev.err = err
			return false
		}
	}
}

// room makes space for the rest of the message begun in the buffer (whole
// messages are handled before) and returns the space after the buffered
// bytes. Like fill, it reads into the small array until a read fills it.
func (c *connReader) room() int {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	need := 5
	if c.w-c.r >= 5 {
		need = 1 + int(binary.BigEndian.Uint32(c.buf[c.r+1:]))
	}
	c.makeRoom(need)
	return len(c.buf) - c.w
}

// closeLoopConn closes a connection a loop reads (r its reader) and reports
// whether the loop was parked: the caller resumes it to see the end. The
// connection is marked closing before the loop is taken back, so that a
// loop parking at the same time takes itself back (parkLoop).
func (s *Server) closeLoopConn(conn net.Conn, r *connReader) (parked bool) {
	r.closing.Store(true)
	parked = s.idle.unpark(r.idle)
	closeConn(conn, r)
	return parked
}

// parkLoop parks the loop reading r (idle.go) unless its connection is
// closing: then the loop goes on to find it closed, unless closeLoopConn
// took it back first and resumes it.
func (s *Server) parkLoop(r *connReader, resume func()) bool {
	if !s.idle.park(r.idle, resume) {
		return false
	}
	if r.closing.Load() && s.idle.unpark(r.idle) {
		return false
	}
	return true
}

// shutdownConn ends a connection whose loop may be parked and that its
// loop closes once it finds it ended (upstreamWriter.died): the shutdown
// wakes a parked loop, where a close would take the socket out of the idle
// poller's set unseen. A connection without an event loop is closed.
func shutdownConn(conn net.Conn, r *connReader) {
	if r == nil || r.raw == nil {
		conn.Close()
		return
	}
	r.closing.Store(true)
	_ = r.raw.Control(shutdownSocket)
}

// closeConn closes one of the session's connections, r its reader. A loop
// in its event loop holds the socket, and a plain Close would wait for the
// loop to return, which may be waiting for the caller, or be the caller: so
// the socket is shut down at once, which wakes the loop, and closed in the
// background, once the loop has let go of it.
func closeConn(conn net.Conn, r *connReader) {
	shutdownConn(conn, r)
	if r != nil && r.raw != nil {
		go conn.Close()
	}
}

// socketWriter returns the writer for conn's outgoing bytes: on a plain
// socket (eventConn) one that writes with a system call the Go scheduler
// does not see (rawWrite), else conn itself.
//
// Why: a write to a local socket wakes its reader, and on a busy machine
// often the writer is switched out before the call returns. Made through
// conn.Write, such a call counts as a blocking system call: the Go
// scheduler's monitor thread, finding a processor held by it, hands the
// processor to another thread and keeps polling every 20 µs instead of
// backing off, a wake-up of two threads each time. A write to a
// non-blocking socket never blocks, so the scheduler need not know.
func socketWriter(conn net.Conn) io.Writer {
	if _, ok := conn.(inlineConn); ok {
		return conn // writes with raw system calls itself
	}
	raw := eventConn(conn)
	if raw == nil {
		return conn
	}
	w := &rawSocketWriter{raw: raw}
	w.writable = w.onWritable
	return w
}

// rawSocketWriter writes a socket through its RawConn: the poller's lock,
// deadlines and wait for room as conn.Write has them, with raw writes.
type rawSocketWriter struct {
	raw      syscall.RawConn
	writable func(fd uintptr) bool // onWritable
	p        []byte
	n        int
	err      error
}

func (w *rawSocketWriter) Write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.raw.Write(w.writable)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p, w.err = nil, nil
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// onWritable writes what is left of p; false waits for room.
func (w *rawSocketWriter) onWritable(fd uintptr) bool {
	for w.n < len(w.p) {
		n, err := rawWrite(fd, w.p[w.n:])
		if err == errWouldBlock {
			return false
		}
		if err != nil {
			w.err = err
			return true
		}
		w.n += n
	}
	return true
}
