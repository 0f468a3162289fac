package proxy

import (
	"errors"
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// A session spends nearly all its life idle, waiting for its client or its
// warehouse to say something. What it holds then is what pgrollup costs per
// connection, so its read and write buffers exist only while there is
// something in them: they come from pools shared by all sessions, and go
// back once drained. An idle session keeps only a small array per direction
// to wait for the next message in.
const (
	// bufferSize is the size of the pooled buffers the sessions read and
	// write through; a message that fits in one is handled in place.
	bufferSize = 32 << 10
	// smallReadSize is what an idle session reads into: a whole message of
	// short statements and answers (pgbench's are under 100 bytes).
	smallReadSize = 256
	// minPooledMessage and maxPooledMessage bound the message buffers kept
	// in pools by size (powers of two): larger ones are allocated for one
	// message and dropped, so that no session pins the memory of a rare
	// big message.
	minPooledMessage = 2 * bufferSize
	maxPooledMessage = minPooledMessage << (messageClasses - 1) // 2 MiB
	messageClasses   = 6
)

// bufferPool hands out the sessions' buffers. Pooled buffers go back to
// the garbage collector when unused for two collections (sync.Pool), so a
// burst of traffic leaves no lasting memory behind.
type bufferPool struct {
	io    sync.Pool // *[]byte of bufferSize
	sized [messageClasses]sync.Pool
	// out counts the I/O buffers taken and not given back: those idle
	// sessions would hold, which should be none.
	out atomic.Int64
}

func newBufferPool() *bufferPool {
	p := &bufferPool{}
	p.io.New = func() any { b := make([]byte, bufferSize); return &b }
	for i := range p.sized {
		size := minPooledMessage << i
		p.sized[i].New = func() any { b := make([]byte, size); return &b }
	}
	return p
}

func (p *bufferPool) get() *[]byte {
	p.out.Add(1)
	return p.io.Get().(*[]byte)
}

func (p *bufferPool) put(b *[]byte) {
	p.out.Add(-1)
	p.io.Put(b)
}

// message returns a buffer of length n for one message, pooled by its size
// class when n is at most maxPooledMessage.
func (p *bufferPool) message(n int) *[]byte {
	if i := p.class(n); i >= 0 {
		b := p.sized[i].Get().(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// putMessage returns a buffer from message.
func (p *bufferPool) putMessage(b *[]byte) {
	if i := p.class(cap(*b)); i >= 0 && cap(*b) == minPooledMessage<<i {
		*b = (*b)[:cap(*b)]
		p.sized[i].Put(b)
	}
}

// class is the size class of a buffer of n bytes, -1 when none is pooled.
func (p *bufferPool) class(n int) int {
	if n > maxPooledMessage {
		return -1
	}
	if n <= minPooledMessage {
		return 0
	}
	return bits.Len(uint((n - 1) / minPooledMessage))
}

// connReader is a buffered reader of one connection, like bufio.Reader,
// whose buffer is small while the connection is idle: it reads into its
// own small array while no more is known to be waiting, and takes a pooled
// buffer only when a message does not fit or a read fills the array.
type connReader struct {
	rd   io.Reader
	pool *bufferPool
	buf  []byte  // small[:] or *big
	big  *[]byte // the pooled buffer, nil while buf is small
	r, w int     // unread bytes are buf[r:w]
	err  error
	// idle is how the connection parks while silent (idle.go); nil for
	// one that never does.
	idle *idleWait
	// full: the last read filled the space it was given, so more is
	// probably waiting and the pooled buffer is worth keeping.
	full bool
	// raw is the socket an event loop reads (evloop.go), nil when the
	// loop reads with rd.Read; ev is the event loop's state, and inLoop
	// is set while the loop holds the socket, when rd must not be read.
	raw    syscall.RawConn
	ev     *eventLoop
	inLoop bool
	// closing: closeConn has shut the socket down; the loop stops.
	closing atomic.Bool
	// yield, when set, says whether the event loop should leave its
	// connection to the pull path before reading more (netloop.go).
	yield func() bool
	// reads counts the reads that brought bytes: messages handled between
	// two reads arrived together (statementClock.arrived).
	reads uint64
	small [smallReadSize]byte
}

// errReadInLoop is a read of a connection inside its own event loop, which
// would wait for itself.
var errReadInLoop = errors.New("proxy: a connection read inside its event loop")

func newConnReader(rd io.Reader, pool *bufferPool) *connReader {
	c := &connReader{rd: rd, pool: pool}
	c.buf = c.small[:]
	if conn, ok := rd.(net.Conn); ok {
		c.raw = eventConn(conn)
	}
	return c
}

// Buffered returns the number of bytes read and not yet consumed.
func (c *connReader) Buffered() int { return c.w - c.r }

// Size is the most a peek can return.
func (c *connReader) Size() int { return bufferSize }

// readErr returns the read error to report once the buffer is drained.
func (c *connReader) readErr() error {
	err := c.err
	c.err = nil
	return err
}

// fill reads until at least n (at most bufferSize) bytes are buffered.
func (c *connReader) fill(n int) error {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if c.big != nil && !c.full {
			// Drained, and the last read found no more waiting: go
			// back to waiting with the small array.
			c.pool.put(c.big)
			c.big, c.buf = nil, c.small[:]
		}
	}
	for c.w-c.r < n {
		if c.err != nil {
			return c.readErr()
		}
		if c.inLoop {
			return errReadInLoop
		}
		if c.closing.Load() {
			c.err = net.ErrClosed // as the closed connection would say
			continue
		}
		c.makeRoom(n)
		got, err := c.rd.Read(c.buf[c.w:])
		if got == 0 && c.idle.wasKicked(err) {
			continue
		}
		c.full = got == len(c.buf)-c.w
		c.w += got
		c.reads++
		if err != nil {
			c.err = err
		} else if got == 0 {
			c.err = io.ErrNoProgress
		}
	}
	return nil
}

// wait blocks until something is buffered or the connection fails, and
// keeps the error for the next read. It reports false when the idle
// sweeper ended the wait with nothing read: the loop may then park
// (idle.go).
func (c *connReader) wait() bool {
	if c.r < c.w || c.err != nil {
		return true
	}
	c.startWaiting()
	n, err := c.rd.Read(c.buf)
	if c.idle != nil {
		c.idle.waitingSince.Store(0)
		if n == 0 && c.idle.wasKicked(err) {
			return false
		}
	}
	c.full = n == len(c.buf)
	c.w = n
	c.reads++
	c.err = err
	return true
}

// startWaiting is called before waiting for the connection: drained, the
// reader gives back its pooled buffer unless the last read filled it, and
// the wait starts for the idle sweeper.
func (c *connReader) startWaiting() {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if c.big != nil && !c.full {
			c.pool.put(c.big)
			c.big, c.buf = nil, c.small[:]
		}
	}
	if c.idle != nil {
		if tick := c.idle.clock.Load(); c.idle.waitingSince.Load() != tick {
			c.idle.waitingSince.Store(tick)
		}
	}
}

// makeRoom makes space for n bytes from the first unread one and for at
// least one more read: the unread bytes move to the front of the buffer,
// or to a pooled one when they need more than the small array or the last
// read filled it.
func (c *connReader) makeRoom(n int) {
	if len(c.buf)-c.r < n || c.w == len(c.buf) {
		if n > len(c.buf) || c.full && c.big == nil {
			c.grow()
		} else {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
	}
}

// grow moves the unread bytes into a pooled buffer.
func (c *connReader) grow() {
	if c.big != nil {
		c.w = copy(*c.big, c.buf[c.r:c.w])
		c.r = 0
		return
	}
	big := c.pool.get()
	c.w = copy(*big, c.buf[c.r:c.w])
	c.r = 0
	c.big, c.buf = big, *big
}

// peek returns the next n bytes (n at most bufferSize) without consuming
// them; they stay valid until the next call.
func (c *connReader) peek(n int) ([]byte, error) {
	if c.w-c.r < n {
		if err := c.fill(n); err != nil {
			return c.buf[c.r:c.w], err
		}
	}
	return c.buf[c.r : c.r+n], nil
}

// discard consumes n buffered bytes.
func (c *connReader) discard(n int) { c.r += n }

// buffered returns the bytes buffered and not yet consumed, without reading.
func (c *connReader) buffered() []byte { return c.buf[c.r:c.w] }

// Read reads into p, through the buffer unless it is empty and p large.
func (c *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.r == c.w {
		if len(p) >= bufferSize && c.err == nil {
			for {
				n, err := c.rd.Read(p)
				if n > 0 || !c.idle.wasKicked(err) {
					return n, err
				}
			}
		}
		if err := c.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// copyTo copies the next n bytes to w through the buffer, without a buffer
// of their size: how a message too big to hold passes through.
func (c *connReader) copyTo(w io.Writer, n int) error {
	for n > 0 {
		if c.r == c.w {
			if err := c.fill(1); err != nil {
				return unexpected(err)
			}
		}
		chunk := c.buf[c.r:min(c.w, c.r+n)]
		c.r += len(chunk)
		n -= len(chunk)
		if w != nil {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

// close gives the pooled buffer back for good: the connection is done.
func (c *connReader) close() {
	if c.big != nil {
		c.pool.put(c.big)
		c.big, c.buf = nil, c.small[:]
	}
	c.r, c.w = 0, 0
}

// connWriter is a buffered writer of one connection, like bufio.Writer,
// whose buffer is taken from the pool on the first Write and given back by
// Flush: a session between messages holds none.
type connWriter struct {
	wr   io.Writer
	pool *bufferPool
	buf  *[]byte
	n    int
	err  error
}

func newConnWriter(wr io.Writer, pool *bufferPool) *connWriter {
	return &connWriter{wr: wr, pool: pool}
}

// Write buffers p, writing through when the buffer fills; a write as large
// as the buffer goes straight to the connection when nothing is buffered.
func (c *connWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if c.err != nil {
			return written, c.err
		}
		if c.n == 0 && len(p) >= bufferSize {
			n, err := c.wr.Write(p)
			written += n
			if err != nil {
				c.err = err
			}
			return written, err
		}
		if c.buf == nil {
			c.buf = c.pool.get()
		}
		n := copy((*c.buf)[c.n:], p)
		c.n += n
		written += n
		p = p[n:]
		if c.n == len(*c.buf) {
			c.writeOut()
		}
	}
	return written, nil
}

// writeOut writes what is buffered, keeping the buffer.
func (c *connWriter) writeOut() {
	if c.n == 0 || c.err != nil {
		return
	}
	n, err := c.wr.Write((*c.buf)[:c.n])
	if err == nil && n < c.n {
		err = io.ErrShortWrite
	}
	if err != nil {
		c.err = err
		return
	}
	c.n = 0
}

// writeFlush is Write and Flush of p: with nothing buffered, p goes to the
// connection as it is, without a copy or a buffer.
func (c *connWriter) writeFlush(p []byte) error {
	if c.n > 0 || c.err != nil || len(p) == 0 {
		_, _ = c.Write(p)
		return c.Flush()
	}
	if c.buf != nil {
		c.pool.put(c.buf)
		c.buf = nil
	}
	n, err := c.wr.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return err
}

// Flush writes what is buffered and gives the buffer back.
func (c *connWriter) Flush() error {
	c.writeOut()
	if c.buf != nil && (c.n == 0 || c.err != nil) {
		c.pool.put(c.buf)
		c.buf, c.n = nil, 0
	}
	return c.err
}

// close gives the buffer back, dropping what it holds: the connection is
// done.
func (c *connWriter) close() {
	if c.buf != nil {
		c.pool.put(c.buf)
		c.buf, c.n = nil, 0
	}
	if c.err == nil {
		c.err = io.ErrClosedPipe
	}
}
