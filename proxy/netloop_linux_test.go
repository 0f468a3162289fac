//go:build linux

package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopPair returns the two ends of a TCP connection, the first in the loop
// l in group g.
func loopPair(t *testing.T, l *netLoop, g *connGroup) (inLoop *fdConn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	t.Cleanup(func() { peer.Close() })
	fc, ok := l.takeConn(c, g).(*fdConn)
	if !ok {
		t.Fatal("takeConn kept the net.Conn")
	}
	t.Cleanup(func() { fc.Close() })
	return fc, peer
}

func newTestLoop(t *testing.T) *netLoop {
	t.Helper()
	l, err := newNetLoop(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// TestFdConn: an fdConn reads, writes, keeps its deadlines and ends its
// waits when closed, as a net.Conn does.
func TestFdConn(t *testing.T) {
	l := newTestLoop(t)
	c, peer := loopPair(t, l, &connGroup{})

	// Both ways, more than a socket buffer holds.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	go func() { _, _ = peer.Write(big) }()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(peer, got)
		done <- err
	}()
	if n, err := c.Write(big); err != nil || n != len(big) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if err := <-done; err != nil || !bytes.Equal(got, big) {
		t.Fatalf("peer read: %v", err)
	}

	// A read deadline ends a Read and a RawConn.Read, in the past or
	// the future.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := c.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	raw := c.inlineRaw()
	never := func(uintptr) bool { return false }
	if err := raw.Read(never); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("raw read past its deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = c.SetReadDeadline(pastDeadline)
	}()
	if err := raw.Read(never); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("raw read kicked: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})

	// A RawConn.Read callback sees what arrives. With one socket in its
	// group, the loop does not run it inline: the caller does.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("x"))
	}()
	var read []byte
	err := raw.Read(func(fd uintptr) bool {
		buf := make([]byte, 16)
		n, err := rawRead(fd, buf)
		if err != nil {
			return false
		}
		read = append(read, buf[:n]...)
		return true
	})
	if err != nil || string(read) != "x" {
		t.Fatalf("raw read: %q, %v", read, err)
	}
	if n := l.inlineRuns.Load(); n != 0 {
		t.Errorf("%d callbacks ran inline for a socket alone in its group", n)
	}

	// Close ends a wait, and what follows fails.
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}()
	if err := raw.Read(never); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("raw read of a closed conn: %v", err)
	}
	if _, err := c.Write([]byte("y")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a closed conn: %v", err)
	}
	// The peer sees the end.
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(got); err != io.EOF {
		t.Fatalf("peer after close: %v", err)
	}
}

// TestFdConnInline: with both sockets of a group waiting, the loop runs
// their callbacks itself; a write the socket cannot take waits for it
// without holding the loop, and a callback that calls mayBlock hands the
// loop over, so that the other group is served meanwhile.
func TestFdConnInline(t *testing.T) {
	l := newTestLoop(t)
	g := &connGroup{}
	a, aPeer := loopPair(t, l, g)
	b, bPeer := loopPair(t, l, g)

	// Relay a to b inline, as a session relays client to warehouse.
	relay := func(from, to *fdConn, block <-chan struct{}) func(uintptr) bool {
		buf := make([]byte, 64<<10)
		return func(fd uintptr) bool {
			for {
				n, err := rawRead(fd, buf)
				if err == errWouldBlock {
					return false
				}
				if err != nil || n == 0 {
					return true
				}
				if block != nil && buf[0] == 'B' {
					g.mayBlock()
					<-block
				}
				if _, err := to.Write(buf[:n]); err != nil {
					return true
				}
			}
		}
	}
	unblock := make(chan struct{})
	aDone := make(chan error, 1)
	go func() { aDone <- a.inlineRaw().Read(relay(a, b, unblock)) }()
	bDone := make(chan error, 1)
	go func() { bDone <- b.inlineRaw().Read(relay(b, a, nil)) }()

	// Many round trips, relayed inline.
	buf := make([]byte, 4)
	for i := 0; i < 100; i++ {
		if _, err := aPeer.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(bPeer, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("round %d: %q %v", i, buf, err)
		}
		if _, err := bPeer.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(aPeer, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("round %d: %q %v", i, buf, err)
		}
	}
	if n := l.inlineRuns.Load(); n < 150 {
		t.Errorf("%d callbacks ran inline for 200 messages", n)
	}

	// More than the peer reads: kept, then sent once it reads.
	big := bytes.Repeat([]byte("z"), 8<<20)
	go func() { _, _ = aPeer.Write(big) }()
	time.Sleep(100 * time.Millisecond)
	got := make([]byte, len(big))
	_ = bPeer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(bPeer, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big relay: %v", err)
	}

	// A callback that blocks hands the loop over: another group's
	// sockets are served meanwhile.
	g2 := &connGroup{}
	c, cPeer := loopPair(t, l, g2)
	d, dPeer := loopPair(t, l, g2)
	go func() { _ = c.inlineRaw().Read(relay(c, d, nil)) }()
	go func() { _ = d.inlineRaw().Read(relay(d, c, nil)) }()
	if _, err := aPeer.Write([]byte("B")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := cPeer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = dPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(dPeer, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("another group while one blocks: %q %v", buf, err)
	}
	if l.handOvers.Load() == 0 {
		t.Error("a blocking callback did not hand the loop over")
	}
	close(unblock)
	_ = bPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(bPeer, buf[:1]); err != nil || buf[0] != 'B' {
		t.Fatalf("after the block: %q %v", buf[:1], err)
	}

	a.Close()
	b.Close()
	c.Close()
	d.Close()
	for _, ch := range []chan error{aDone, bDone} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("a RawConn.Read did not end with its conn")
		}
	}
}

// TestEventLoopSessions runs sessions through the proxy with two shared
// event loops: answers are the warehouse's, and both loops relayed them
// inline.
func TestEventLoopSessions(t *testing.T) {
	start := time.Now()
	p := startProxy(t, func(o *Options) { o.EventLoop, o.EventLoops = true, 2 })
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		conn := connect(t, p.dsn(trustUser, ""))
		var n int
		var s string
		for j := 0; j < 50; j++ {
			if err := conn.QueryRow(ctx, "select $1::int + 1, repeat('x', $2)", j, 10000).Scan(&n, &s); err != nil {
				t.Fatal(err)
			}
			if n != j+1 || len(s) != 10000 {
				t.Fatalf("got %d, %d bytes", n, len(s))
			}
		}
		rows, err := conn.Query(ctx, "select g, repeat('y', 100) from generate_series(1, 20000) g")
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for rows.Next() {
			count++
		}
		if rows.Err() != nil || count != 20000 {
			t.Fatalf("%d rows: %v", count, rows.Err())
		}
	}
	// The sessions took turns between the two loops.
	var inline uint64
	for i, l := range p.srv.loops {
		n := l.inlineRuns.Load()
		if n < 50 {
			t.Errorf("loop %d: only %d callbacks ran inline", i, n)
		}
		inline += n
		// The loop's clock followed its wake-ups.
		if woke := l.wakeTime(); woke.Before(start) || woke.After(time.Now()) {
			t.Errorf("loop %d: last woke at %v, not between the test's start %v and now", i, woke, start)
		}
	}
	// The metrics sum the loops' counters.
	families, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "pgrollup_event_loop_") {
			got[f.GetName()] = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if v := got["pgrollup_event_loop_inline_total"]; v < float64(inline) {
		t.Errorf("pgrollup_event_loop_inline_total = %v, the loops counted %d", v, inline)
	}
	if w, e := got["pgrollup_event_loop_waits_total"], got["pgrollup_event_loop_events_total"]; w < 1 || e < w {
		t.Errorf("pgrollup_event_loop_waits_total = %v, events = %v", w, e)
	}
	if _, ok := got["pgrollup_event_loop_handovers_total"]; !ok {
		t.Error("no pgrollup_event_loop_handovers_total")
	}
}

// TestEventLoopSlowReader: an answer far bigger than the socket buffers,
// to a client that reads it slowly, arrives whole, and what the loop keeps
// for it stays within a read or two of the warehouse's.
func TestEventLoopSlowReader(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.EventLoop = true })
	ctx := context.Background()
	conn := connect(t, p.dsn(trustUser, ""))
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	pc := conn.PgConn()
	mrr := pc.Exec(ctx, "select g, repeat('s', 1000) from generate_series(1, 20000) g")
	// pgconn reads as it is asked to: slowly, at first.
	rows := 0
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		for rr.NextRow() {
			if rows < 2000 && rows%100 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if len(rr.Values()[1]) != 1000 {
				t.Fatalf("row %d: %d bytes", rows, len(rr.Values()[1]))
			}
			rows++
		}
		if _, err := rr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mrr.Close(); err != nil {
		t.Fatal(err)
	}
	if rows != 20000 {
		t.Fatalf("%d rows", rows)
	}
	if kept := p.srv.loops[0].maxKept.Load(); kept > 1<<20 {
		t.Errorf("the loop kept %d bytes for a slow client", kept)
	}
	t.Logf("most bytes kept: %d", p.srv.loops[0].maxKept.Load())
}

// TestFdConnWaitsHoldNoThread: Reads and Writes that wait for their socket
// park their goroutines, as on a net.Conn, rather than each holding a
// thread (a login storm, or many slow readers of big answers, would start a
// thread per session).
func TestFdConnWaitsHoldNoThread(t *testing.T) {
	l := newTestLoop(t)
	const readers, writers = 150, 50
	threads := func() int {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		return len(tasks)
	}
	before := threads()
	var peers []net.Conn
	done := make(chan error, readers+writers)
	for i := 0; i < readers+writers; i++ {
		c, peer := loopPair(t, l, &connGroup{loop: l})
		peers = append(peers, peer)
		if i < readers {
			go func() {
				buf := make([]byte, 1)
				_, err := io.ReadFull(c, buf)
				done <- err
			}()
			continue
		}
		// More than the socket buffers hold, to a peer that reads
		// nothing yet.
		go func() {
			_, err := c.Write(make([]byte, 8<<20))
			done <- err
		}()
	}
	time.Sleep(500 * time.Millisecond) // every goroutine waiting
	if during := threads(); during > before+20 {
		t.Errorf("%d threads with %d Reads and Writes waiting, %d before", during, readers+writers, before)
	}
	for i, peer := range peers {
		if i < readers {
			_, _ = peer.Write([]byte("x"))
			continue
		}
		go func() { _, _ = io.Copy(io.Discard, peer) }()
	}
	for i := 0; i < readers+writers; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d waits still going", readers+writers-i)
		}
	}
}

func TestConnTable(t *testing.T) {
	var tab connTable
	a, b := &fdConn{}, &fdConn{}
	ida := tab.add(a)
	idb := tab.add(b)
	if ida == loopStopID || idb == loopStopID || ida == idb {
		t.Fatalf("ids %d and %d: want two distinct non-zero ids", ida, idb)
	}
	if tab.get(ida) != a || tab.get(idb) != b {
		t.Fatal("get does not find what add added")
	}
	tab.remove(ida)
	if tab.get(ida) != nil {
		t.Fatal("a removed socket's id still finds it")
	}
	// The slot is reused, under a new generation: an event taken for the
	// socket removed finds nothing, not the new socket.
	c := &fdConn{}
	idc := tab.add(c)
	if uint32(idc) != uint32(ida) {
		t.Fatalf("slot %d not reused (got %d)", uint32(ida), uint32(idc))
	}
	if tab.get(ida) != nil || tab.get(idc) != c {
		t.Fatalf("after reuse: get(old) = %p, get(new) = %p, want nil and %p", tab.get(ida), tab.get(idc), c)
	}
	tab.remove(ida) // stale: must not free c's slot
	if tab.get(idc) != c {
		t.Fatal("removing a stale id removed the socket now in its slot")
	}
	for _, id := range []uint64{0, 1 << 40, uint64(len(tab.slots) + 1)} {
		if tab.get(id) != nil {
			t.Fatalf("get(%#x) found a socket", id)
		}
	}
}

// TestLoopClock checks the clock sessions read in a loop (connGroup.now):
// the leader's wake-up while a callback runs inline, with the wall clock of
// a reading at most schedulePeriod older; the clock itself otherwise.
func TestLoopClock(t *testing.T) {
	l, err := newNetLoop(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	g := newConnGroup(l)
	before := time.Now()
	if got := g.now(); got.Before(before) || time.Since(got) > time.Second {
		t.Fatalf("not inline: now() = %v, want the clock's (%v)", got, before)
	}
	var nilGroup *connGroup
	if got := nilGroup.now(); got.Before(before) {
		t.Fatalf("no group: now() = %v, want the clock's", got)
	}
	// As run does after a wait: the wake-up, and a new base when the
	// last is older than schedulePeriod.
	time.Sleep(2 * schedulePeriod)
	at := l.setBase()
	l.woke.Store(int64(at + time.Millisecond))
	g.inline.Store(true)
	got := g.now()
	g.inline.Store(false)
	base := l.base.Load()
	if want := base.t.Add(time.Millisecond); !got.Equal(want) {
		t.Fatalf("inline: now() = %v, want the base %v and 1 ms", got, base.t)
	}
	if d := got.Sub(before); d < 2*schedulePeriod {
		t.Fatalf("inline: now() is %v after a time read %v earlier", d, 2*schedulePeriod)
	}
	// The monotonic reading goes with it: durations are measured on it.
	if d := got.Sub(base.t); d != time.Millisecond {
		t.Fatalf("inline: %v after the base, want 1ms", d)
	}
}

// TestFdConnCloseInCallback: a socket closed while the loop runs its
// callback inline (as a session that ends its connection from a handler
// does) stays open until the callback returns, which may still read it
// (the end, after the shutdown), and is closed then: the RawConn.Read
// waiting with the callback holds the descriptor for it.
func TestFdConnCloseInCallback(t *testing.T) {
	l := newTestLoop(t)
	g := &connGroup{}
	a, aPeer := loopPair(t, l, g)
	b, _ := loopPair(t, l, g)
	go func() { _ = b.inlineRaw().Read(func(uintptr) bool { return false }) }()

	type seen struct {
		closedErr  error
		readErr    error
		fdErr      error
		stateAfter int64
		inline     bool
	}
	inCallback := make(chan seen, 1)
	done := make(chan error, 1)
	go func() {
		done <- a.inlineRaw().Read(func(fd uintptr) bool {
			buf := make([]byte, 16)
			if _, err := rawRead(fd, buf); err != nil {
				return false
			}
			var s seen
			s.closedErr = a.Close()
			// fd is still ours: reading it finds the end, not EBADF.
			_, s.readErr = rawRead(fd, buf)
			_, s.fdErr = unix.FcntlInt(fd, unix.F_GETFD, 0)
			s.stateAfter = a.state.Load()
			s.inline = g.inline.Load()
			inCallback <- s
			return false
		})
	}()
	// The callback runs inline once both sockets wait in the loop.
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		waiting := a.rstate == readWaiting && b.rstate == readWaiting
		g.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sockets never both waited in the loop")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := aPeer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var s seen
	select {
	case s = <-inCallback:
	case <-time.After(5 * time.Second):
		t.Fatal("the callback did not run")
	}
	if s.closedErr != nil || s.readErr != nil || s.fdErr != nil {
		t.Errorf("in the callback after Close: Close %v, read %v, fcntl %v; want all nil", s.closedErr, s.readErr, s.fdErr)
	}
	if s.stateAfter != 3 {
		t.Errorf("state in the callback after Close = %d, want 3 (closed, the waiting read's reference)", s.stateAfter)
	}
	if !s.inline {
		t.Error("the callback did not run inline")
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("RawConn.Read of a conn closed in its callback: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the RawConn.Read did not end")
	}
	if st := a.state.Load(); st != 1 {
		t.Errorf("state once the callback returned = %d, want 1 (closed)", st)
	}
}
