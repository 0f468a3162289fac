package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns at most its chunk sizes per Read, in turn, as a socket
// does with what has arrived.
type chunkReader struct {
	r      io.Reader
	chunks []int
	i      int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n := c.chunks[c.i%len(c.chunks)]
	c.i++
	return c.r.Read(p[:min(len(p), n)])
}

// randomMessages returns count messages of random bodies, of sizes around
// the small array and the pooled buffer and the extra ones, as one stream
// and one by one.
func randomMessages(rng *rand.Rand, count int, extra ...int) (stream []byte, msgs [][]byte) {
	sizes := append([]int{0, 1, 4, smallReadSize - 6, smallReadSize - 5, smallReadSize, bufferSize - 6, bufferSize - 5, bufferSize - 4, bufferSize, 3 * bufferSize}, extra...)
	for range count {
		body := make([]byte, sizes[rng.IntN(len(sizes))])
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		msg := appendMessage(nil, 'x', body)
		msgs = append(msgs, msg)
		stream = append(stream, msg...)
	}
	return stream, msgs
}

// TestConnReaderFraming reads a stream of messages of every size around
// the small array and the pooled buffer through reads of every size, and
// checks each message comes out whole and in order.
func TestConnReaderFraming(t *testing.T) {
	stream, want := randomMessages(rand.New(rand.NewPCG(1, 2)), 200, maxPooledMessage+1)
	for _, chunks := range [][]int{{1}, {7, 300}, {smallReadSize}, {bufferSize}, {1 << 20}, {5, bufferSize + 3, 17}} {
		pool := newBufferPool()
		r := newMessageReader(newConnReader(&chunkReader{r: bytes.NewReader(stream), chunks: chunks}, pool), 0)
		for i, w := range want {
			m, err := r.next()
			if err != nil {
				t.Fatalf("chunks %v: message %d: %v", chunks, i, err)
			}
			if !bytes.Equal(m.raw, w) || m.rest != 0 {
				t.Fatalf("chunks %v: message %d of %d bytes read as %d bytes (rest %d)", chunks, i, len(w), len(m.raw), m.rest)
			}
		}
		if _, err := r.next(); err != io.EOF {
			t.Fatalf("chunks %v: after the last message: %v", chunks, err)
		}
	}
}

// TestConnReaderIdleHoldsNoBuffer checks the buffer goes back to the pool
// once drained, and is kept only while reads keep filling it.
func TestConnReaderIdleHoldsNoBuffer(t *testing.T) {
	pool := newBufferPool()
	small := appendMessage(nil, 'Q', []byte("SELECT 1\x00"))
	big := appendMessage(nil, 'D', make([]byte, bufferSize/2))
	in := bytes.NewReader(append(append(append([]byte(nil), small...), big...), small...))
	r := newMessageReader(newConnReader(in, pool), 0)
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if r.r.big != nil {
		t.Fatal("a small message took a pooled buffer")
	}
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if r.r.big == nil {
		t.Fatal("a message bigger than the small array is not in a pooled buffer")
	}
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	// Waiting for the next message, the reader holds only its array.
	if _, err := r.next(); err != io.EOF {
		t.Fatal(err)
	}
	if r.r.big != nil {
		t.Fatal("the pooled buffer was kept while waiting")
	}
}

// TestStreamedMessages checks that a message above its type's stream
// threshold comes with only a part of its body, that relayRest passes the
// rest on without holding it, and that a rest nobody relayed is skipped.
func TestStreamedMessages(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1<<20) // 10 MB
	big := appendMessage(nil, 'Q', body)
	next := appendMessage(nil, 'S', nil)
	var policy streamPolicy
	policy['Q'] = 1 << 20
	for _, relay := range []bool{true, false} {
		in := bytes.NewReader(append(append(append([]byte(nil), big...), big...), next...))
		r := newMessageReader(newConnReader(iotest.HalfReader(in), newBufferPool()), 64<<20)
		r.stream = &policy
		for range 2 {
			m, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if m.rest == 0 || len(m.raw)+m.rest != len(big) || len(m.raw) > bufferSize {
				t.Fatalf("streamed message: %d bytes held, rest %d, of %d", len(m.raw), m.rest, len(big))
			}
			if int(binary.BigEndian.Uint32(m.raw[1:5])) != len(body)+4 {
				t.Fatal("the header of a streamed message is not its own")
			}
			if relay {
				var out bytes.Buffer
				out.Write(m.raw)
				if err := r.relayRest(&out); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), big) {
					t.Fatal("relayed message differs")
				}
			}
		}
		m, err := r.next()
		if err != nil || m.typ != 'S' {
			t.Fatalf("message after the streamed ones: %q, %v", m.typ, err)
		}
	}
	// A type without a threshold is held whole.
	r := newMessageReader(newConnReader(bytes.NewReader(appendMessage(nil, 'D', body)), newBufferPool()), 64<<20)
	r.stream = &policy
	if m, err := r.next(); err != nil || m.rest != 0 || len(m.body()) != len(body) {
		t.Fatalf("unstreamed type: %d bytes, rest %d, %v", len(m.body()), m.rest, err)
	}
}

// TestStreamedTruncated checks that a connection closed inside a streamed
// message is an unexpected EOF, as for any other.
func TestStreamedTruncated(t *testing.T) {
	var policy streamPolicy
	policy['d'] = bufferSize
	msg := appendMessage(nil, 'd', make([]byte, 4*bufferSize))
	r := newMessageReader(newConnReader(bytes.NewReader(msg[:3*bufferSize]), newBufferPool()), 0)
	r.stream = &policy
	m, err := r.next()
	if err != nil || m.rest == 0 {
		t.Fatalf("first part: rest %d, %v", m.rest, err)
	}
	if err := r.relayRest(io.Discard); err != io.ErrUnexpectedEOF {
		t.Fatalf("relaying the rest: %v, want unexpected EOF", err)
	}
}

// TestConnWriter checks that writes come out whole and in order, and that
// Flush gives the buffer back.
func TestConnWriter(t *testing.T) {
	var out bytes.Buffer
	pool := newBufferPool()
	w := newConnWriter(&out, pool)
	var want []byte
	for _, n := range []int{1, 100, bufferSize - 101, 5, bufferSize, 3*bufferSize + 7, 2} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		want = append(want, p...)
		if k, err := w.Write(p); k != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("written bytes differ")
	}
	if w.buf != nil {
		t.Fatal("Flush kept the buffer")
	}
	if err := w.Flush(); err != nil || w.buf != nil {
		t.Fatalf("Flush of nothing: %v", err)
	}
}

func TestConnWriterError(t *testing.T) {
	w := newConnWriter(iotest.TruncateWriter(io.Discard, 0), newBufferPool())
	w.wr = errWriter{}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != io.ErrClosedPipe {
		t.Fatalf("Flush: %v", err)
	}
	if _, err := w.Write([]byte("y")); err != io.ErrClosedPipe {
		t.Fatalf("Write after a failed flush: %v", err)
	}
	if w.buf != nil {
		t.Fatal("a failed writer kept its buffer")
	}
}

// TestConnWriterWriteFlush checks writeFlush: with nothing buffered it
// writes p in one Write of the connection and takes no buffer; with bytes
// buffered they go first; a failure sticks.
func TestConnWriterWriteFlush(t *testing.T) {
	var out writeLog
	pool := newBufferPool()
	w := newConnWriter(&out, pool)
	if err := w.writeFlush([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if len(out.writes) != 1 || out.writes[0] != "abc" || w.buf != nil || pool.out.Load() != 0 {
		t.Fatalf("writes %q, buffer %v, pooled buffers out %d", out.writes, w.buf != nil, pool.out.Load())
	}
	if _, err := w.Write([]byte("de")); err != nil {
		t.Fatal(err)
	}
	if err := w.writeFlush([]byte("fg")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.writes, "|") != "abc|defg" || w.buf != nil {
		t.Fatalf("writes %q, buffer %v", out.writes, w.buf != nil)
	}
	w.wr = errWriter{}
	if err := w.writeFlush([]byte("h")); err != io.ErrClosedPipe {
		t.Fatalf("writeFlush to a closed connection: %v", err)
	}
	if err := w.writeFlush([]byte("i")); err != io.ErrClosedPipe {
		t.Fatalf("writeFlush after a failure: %v", err)
	}
}

// writeLog records each Write.
type writeLog struct{ writes []string }

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestMessagePoolClasses(t *testing.T) {
	p := newBufferPool()
	for _, n := range []int{1, minPooledMessage, minPooledMessage + 1, 300 << 10, maxPooledMessage, maxPooledMessage + 1} {
		b := p.message(n)
		if len(*b) != n {
			t.Fatalf("message(%d) has length %d", n, len(*b))
		}
		pooled := n <= maxPooledMessage
		if pooled && cap(*b) != minPooledMessage<<p.class(n) {
			t.Fatalf("message(%d) has capacity %d, not its class's", n, cap(*b))
		}
		p.putMessage(b)
	}
}

// TestParamMapsShared checks that sessions hearing the same reports share
// their maps, that a report changing nothing changes no map, and that the
// maps are right whatever is shared.
func TestParamMapsShared(t *testing.T) {
	var p paramMaps
	reports := [][2]string{{"TimeZone", "UTC"}, {"DateStyle", "ISO, MDY"}, {"server_version", "16.4"}}
	var sessions [3]*map[string]string
	for i := range sessions {
		for _, r := range reports {
			sessions[i] = p.with(sessions[i], []byte(r[0]), []byte(r[1]))
		}
	}
	if sessions[0] != sessions[1] || sessions[1] != sessions[2] {
		t.Fatal("sessions with the same reports have maps of their own")
	}
	if again := p.with(sessions[0], []byte("TimeZone"), []byte("UTC")); again != sessions[0] {
		t.Fatal("a report changing nothing made a new map")
	}
	berlin := p.with(sessions[0], []byte("TimeZone"), []byte("Europe/Berlin"))
	if (*berlin)["TimeZone"] != "Europe/Berlin" || (*sessions[0])["TimeZone"] != "UTC" || len(*berlin) != 3 {
		t.Fatalf("maps %v and %v", *berlin, *sessions[0])
	}
	for i := range maxParamSteps + 10 {
		p.with(nil, []byte("application_name"), []byte(strconv.Itoa(i)))
	}
	if len(p.next) > maxParamSteps {
		t.Fatalf("%d reports remembered", len(p.next))
	}
}

// TestConnReaderCountsReads checks that every read that brings bytes is
// counted, through wait (the pull path's first read of a batch) and fill:
// messages handled between two counts arrived together, and share a
// reading of the clock (statementClock.arrived).
func TestConnReaderCountsReads(t *testing.T) {
	var stream []byte
	for range 3 {
		stream = appendMessage(stream, 'Q', []byte("SELECT 1\x00"))
	}
	// One message per read, the last in two parts.
	c := newConnReader(&chunkReader{r: bytes.NewReader(stream), chunks: []int{14, 14, 7, 7}}, newBufferPool())
	m := newMessageReader(c, 0)
	var reads []uint64
	for range 3 {
		if !c.wait() {
			t.Fatal("wait failed")
		}
		if _, err := m.next(); err != nil {
			t.Fatal(err)
		}
		reads = append(reads, c.reads)
	}
	if reads[0] != 1 || reads[1] != 2 || reads[2] != 4 {
		t.Fatalf("reads counted after each message: %v, want [1 2 4]", reads)
	}
}

// TestUpstreamWriterInPlace checks the messages an upstreamWriter relays in
// place: a flush writes them as they lie, in one write; another write
// copies them out first, so that the order holds; a dead writer drops them.
func TestUpstreamWriterInPlace(t *testing.T) {
	var out writeLog
	conn, peer := net.Pipe()
	defer peer.Close()
	u := &upstreamWriter{w: newConnWriter(&out, newBufferPool()), conn: conn}
	buf := []byte("BBBEEESSS")
	u.relayInPlace(buf[:3])
	u.relayInPlace(buf[:6]) // the run grows
	u.relayInPlace(buf[:9])
	if len(out.writes) != 0 {
		t.Fatalf("written before the flush: %q", out.writes)
	}
	_ = u.Flush()
	if strings.Join(out.writes, "|") != "BBBEEESSS" || u.pendingInPlace() != nil {
		t.Fatalf("flush: writes %q, pending %v", out.writes, u.pendingInPlace() != nil)
	}
	out.writes = nil
	u.relayInPlace(buf[:3])
	_, _ = u.Write([]byte("own"))
	u.relayInPlace(buf[3:6])
	u.copyInPlace() // a read comes
	buf[3] = 'x'    // ... and reuses the buffer
	_ = u.Flush()
	if strings.Join(out.writes, "|") != "BBBownEEE" {
		t.Fatalf("writes %q, want the messages in order and as they were", out.writes)
	}
	u.relayInPlace(buf[:3])
	u.w.wr = errWriter{}
	_ = u.Flush()
	u.relayInPlace(buf[:3])
	if !u.dead || u.pendingInPlace() != nil {
		t.Fatalf("after a failed write: dead %v, pending %v", u.dead, u.pendingInPlace() != nil)
	}
	var none *upstreamWriter // a session without a connection
	none.relayInPlace(buf)
	none.copyInPlace()
	if none.pendingInPlace() != nil || none.Flush() != nil {
		t.Fatal("a nil writer kept something")
	}
}
