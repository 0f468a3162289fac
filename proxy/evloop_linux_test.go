//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: the one a
// loop reads, and the peer that writes to it.
func tcpPair(t *testing.T) (*net.TCPConn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		peer.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer
}

// eventReader is a connection's message reader with an event loop.
func eventReader(t *testing.T, c net.Conn) *messageReader {
	t.Helper()
	r := newConnReader(c, newBufferPool())
	if r.raw == nil {
		t.Fatal("a TCP connection has no event loop")
	}
	return newMessageReader(r, 0)
}

// loop runs m as the session loops do: the event loop, and the pull path
// for what it leaves, calling handle with each message (its raw bytes,
// with the rest of a streamed one) until an error.
func loop(m *messageReader, handle func(raw []byte) error) error {
	one := func(msg message) error {
		raw := msg.raw
		if msg.rest > 0 {
			var rest bytes.Buffer
			if err := m.relayRest(&rest); err != nil {
				return err
			}
			raw = append(append([]byte(nil), raw...), rest.Bytes()...)
		}
		return handle(raw)
	}
	for {
		err, waitErr := m.serveEvents(one)
		if err != nil {
			return err
		}
		if waitErr != nil {
			m.r.err = waitErr
		}
		msg, err := m.next()
		if err != nil {
			return err
		}
		if err := one(msg); err != nil {
			return err
		}
	}
}

// TestEventLoopFraming sends messages of every size around the small array
// and the pooled buffer, in chunks of every size with pauses between, and
// checks the event loop and the pull path together hand each one over
// whole and in order, and then the end.
func TestEventLoopFraming(t *testing.T) {
	stream, want := randomMessages(rand.New(rand.NewPCG(3, 4)), 300)
	for _, policy := range []*streamPolicy{nil, upstreamStreamPolicy()} {
		c, peer := tcpPair(t)
		m := eventReader(t, c)
		m.stream = policy
		go func() {
			rng := rand.New(rand.NewPCG(5, 6))
			rest := stream
			for len(rest) > 0 {
				n := min(len(rest), []int{1, 5, 100, smallReadSize, bufferSize, 3 * bufferSize}[rng.IntN(6)])
				if _, err := peer.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				}
			}
			peer.(*net.TCPConn).CloseWrite()
		}()
		var got [][]byte
		err := loop(m, func(raw []byte) error {
			got = append(got, append([]byte(nil), raw...))
			return nil
		})
		if err != io.EOF {
			t.Fatalf("after %d messages: %v, want EOF", len(got), err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d of %d bytes came as %d bytes", i, len(want[i]), len(got[i]))
			}
		}
		if c := m.r; c.big != nil {
			t.Error("the drained reader holds a pooled buffer")
		}
	}
}

// TestEventLoopNoMissedReadiness sends each message only while the loop is
// handling the one before, after its read found the socket drained: the
// readiness of the new bytes must wake the wait that follows, or the loop
// waits for ever.
func TestEventLoopNoMissedReadiness(t *testing.T) {
	c, peer := tcpPair(t)
	m := eventReader(t, c)
	const count = 300
	msg := appendMessage(nil, 'x', []byte("ping"))
	handled := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		for i := 0; i < count; i++ {
			if _, err := peer.Write(msg); err != nil {
				return
			}
			if i > 0 {
				sent <- struct{}{}
			}
			<-handled
		}
		peer.Close()
	}()
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- loop(m, func([]byte) error {
			n++
			handled <- struct{}{}
			if n < count {
				<-sent // the next message is on its way while this one is handled
				time.Sleep(50 * time.Microsecond)
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if n != count || err != io.EOF {
			t.Fatalf("%d messages, then %v; want %d and EOF", n, err, count)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the loop missed a readiness after %d messages", n)
	}
}

// TestEventLoopCloseWhileWaiting closes the connection while its loop
// waits, from another goroutine and from inside the loop's own handler: the
// loop ends with the connection closed, and neither close waits for it.
func TestEventLoopCloseWhileWaiting(t *testing.T) {
	t.Run("other goroutine", func(t *testing.T) {
		c, _ := tcpPair(t)
		m := eventReader(t, c)
		done := make(chan error, 1)
		go func() { done <- loop(m, func([]byte) error { return nil }) }()
		time.Sleep(20 * time.Millisecond)
		closeConn(c, m.r)
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("the loop ended with %v, want the connection closed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the loop went on waiting on a closed connection")
		}
	})
	t.Run("own handler", func(t *testing.T) {
		c, peer := tcpPair(t)
		m := eventReader(t, c)
		if _, err := peer.Write(appendMessage(nil, 'x', nil)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		done := make(chan error, 1)
		go func() {
			done <- loop(m, func(raw []byte) error {
				got = append(got, raw[0])
				closeConn(c, m.r)
				return nil
			})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) || string(got) != "x" {
				t.Fatalf("the loop handled %q and ended with %v, want x and the connection closed", got, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a handler closing its own connection waits for itself")
		}
		// The peer sees the end.
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("the peer read %v, want EOF", err)
		}
	})
}

// TestEventLoopDescriptorReuse closes a connection from inside its loop's
// handler and opens others at once: while the loop runs, its descriptor is
// not released for another connection to take, so the loop never reads
// another connection's bytes.
func TestEventLoopDescriptorReuse(t *testing.T) {
	c, peer := tcpPair(t)
	m := eventReader(t, c)
	fd := socketFD(t, c)
	if _, err := peer.Write(appendMessage(nil, 'x', nil)); err != nil {
		t.Fatal(err)
	}
	var others []net.Conn
	err := loop(m, func([]byte) error {
		closeConn(c, m.r)
		for range 4 {
			o, op := tcpPair(t)
			others = append(others, o)
			if socketFD(t, o) == fd {
				t.Errorf("a new connection took descriptor %d while the loop held it", fd)
			}
			if _, err := op.Write(appendMessage(nil, 'z', nil)); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the loop ended with %v, want the connection closed", err)
	}
	if len(others) != 4 {
		t.Fatalf("the handler ran %d times, want once", len(others)/4)
	}
}

// socketFD is the descriptor under c.
func socketFD(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestEventLoopKick ends a wait with a read deadline in the past, as the
// idle sweeper does: the loop returns the deadline with no buffer held, and
// reads on once the deadline is cleared.
func TestEventLoopKick(t *testing.T) {
	c, peer := tcpPair(t)
	m := eventReader(t, c)
	big := appendMessage(nil, 'x', make([]byte, 2*smallReadSize))
	if _, err := peer.Write(big); err != nil {
		t.Fatal(err)
	}
	count := 0
	handle := func(message) error {
		count++
		return nil
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = c.SetReadDeadline(pastDeadline)
	}()
	err, waitErr := m.serveEvents(handle)
	if err != nil || !errors.Is(waitErr, os.ErrDeadlineExceeded) {
		t.Fatalf("serveEvents: %v, %v; want the deadline", err, waitErr)
	}
	if count != 1 || m.r.big != nil || m.r.Buffered() != 0 {
		t.Fatalf("kicked after %d messages, holding a pooled buffer %v, %d bytes buffered; want 1, none, 0", count, m.r.big != nil, m.r.Buffered())
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write(big)
		time.Sleep(20 * time.Millisecond)
		_ = c.SetReadDeadline(pastDeadline)
	}()
	if err, waitErr := m.serveEvents(handle); err != nil || !errors.Is(waitErr, os.ErrDeadlineExceeded) || count != 2 {
		t.Fatalf("after the kick: %v, %v, %d messages; want the deadline after 2", err, waitErr, count)
	}
}

// TestIdlePollerSurvivesHangUp parks a connection, takes it back and shuts
// it down, as closeConn does, and then parks another: the first one's
// hang-up must not stop the poller, which still resumes the second.
func TestIdlePollerSurvivesHangUp(t *testing.T) {
	p, err := newIdlePoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var clock atomic.Int64
	first, _ := tcpPair(t)
	w := newIdleWait(first, &clock)
	if !p.park(w, func() { t.Error("a connection taken back was resumed") }) {
		t.Fatal("cannot park")
	}
	if !p.unpark(w) {
		t.Fatal("the parked connection was not parked")
	}
	closeConn(first, newConnReader(first, newBufferPool()))
	time.Sleep(20 * time.Millisecond)
	second, peer := tcpPair(t)
	resumed := make(chan struct{})
	if !p.park(newIdleWait(second, &clock), func() { close(resumed) }) {
		t.Fatal("cannot park")
	}
	if _, err := peer.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("the poller stopped after a connection it no longer watched hung up")
	}
}

// TestSocketWriter writes through a raw socket writer what the peer can
// only take after a while (the writer waits for room), then checks the
// bytes, a write past its deadline and a write to a closed connection.
func TestSocketWriter(t *testing.T) {
	c, peer := tcpPair(t)
	if err := c.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	w := socketWriter(c)
	if _, ok := w.(*rawSocketWriter); !ok {
		t.Fatalf("a TCP connection's writer is %T, not a raw socket writer", w)
	}
	want := make([]byte, 1<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(rnd.Uint32())
	}

	got := make(chan []byte)
	go func() {
		time.Sleep(100 * time.Millisecond) // the writer fills the socket first
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	n, err := w.Write(want)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(want))
	}

	// The peer reads no more: a write that cannot finish by its deadline
	// fails with the deadline's error, as conn.Write does.
	c2, _ := tcpPair(t)
	w2 := socketWriter(c2)
	if err := c2.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	err = nil
	for i := 0; i < 64 && err == nil; i++ { // until the socket's buffers are full
		_, err = w2.Write(want)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write past its deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	c2.Close()
	if _, err := w2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write to a closed connection: %v, want %v", err, net.ErrClosed)
	}
}
