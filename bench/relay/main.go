// Command pgrollup-relay is an instrument for issue 17: the cheapest TCP relay
// one can write in Go with a given I/O model, to measure (with bench/pgbench's
// relay-* targets) how close each model comes to PgBouncer's CPU per
// transaction on this machine, apart from anything pgrollup itself does.
//
// It relays bytes unchanged between each client and its own upstream
// connection (session pooling without a pool: one upstream connection per
// client, dialed when the client connects), parsing nothing. Models:
//
//   - goroutine: a goroutine per direction per session, each a Read/Write
//     loop on net.Conn (Go's netpoller parks and wakes them): the model of
//     pgrollup's sessions.
//   - epoll: -loops event loops, each a goroutine locked to its OS thread
//     that waits in epoll_wait on its own SO_REUSEPORT listener and on its
//     sessions' sockets, and relays inline: read one side, write the other
//     side at once, no goroutine hop. PgBouncer's libevent loop, in Go.
//     -raw-wait makes its epoll_wait a raw system call, which the Go
//     scheduler does not see.
//   - handoff: sessions accepted and dialed as net.Conns, as pgrollup's
//     are, then handed to one such loop (after the startup, say): each
//     socket is duplicated and its net.Conn closed, which takes it out of
//     Go's poller.
//   - shared: the same, but the net.Conns stay open, so that Go's poller
//     watches the sockets the loop watches (the cost of a loop that leaves
//     the session's net.Conns as they are).
//
// Linux only (epoll, SO_REUSEPORT).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6433", "host:port to accept clients on (IPv4)")
	upstream := flag.String("upstream", "127.0.0.1:5432", "host:port of the server (IPv4)")
	mode := flag.String("mode", "epoll", "I/O model: goroutine, epoll, handoff or shared")
	loops := flag.Int("loops", 1, "epoll mode: event loops (threads), each with its own SO_REUSEPORT listener")
	raw := flag.Bool("raw-wait", false, "epoll mode: call epoll_wait as a raw system call, which the Go scheduler does not see (the loop's thread keeps its P while it waits)")
	procs := flag.Int("procs", 0, "GOMAXPROCS, 0 for Go's default (the CPUs)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "goroutine":
		err = relayGoroutines(ctx, *listen, *upstream)
	case "epoll":
		err = relayEpoll(ctx, *listen, *upstream, *loops, *raw)
	case "handoff", "shared":
		err = relayHandoff(ctx, *listen, *upstream, *raw, *mode == "handoff")
	default:
		err = fmt.Errorf("unknown -mode %q (goroutine, epoll, handoff, shared)", *mode)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		os.Exit(1)
	}
}

// relayGoroutines serves each client with two goroutines, one per direction.
func relayGoroutines(ctx context.Context, listen, upstream string) error {
	return acceptSessions(ctx, listen, upstream, func(c, u net.Conn) {
		go copyHalf(c, u)
		copyHalf(u, c)
	})
}

// acceptSessions accepts clients on listen until ctx ends, and calls serve
// in a goroutine of its own with each client and its connection to upstream.
func acceptSessions(ctx context.Context, listen, upstream string, serve func(c, u net.Conn)) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				slog.Error("dial upstream", "err", err)
				c.Close()
				return
			}
			serve(c, u)
		}()
	}
}

// copyHalf relays src to dst until either fails, then closes both. A plain
// buffer loop rather than io.Copy, which would splice(2) TCP to TCP.
func copyHalf(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				slog.Debug("read", "err", err)
			}
			break
		}
	}
	src.Close()
	dst.Close()
}

// relayEpoll runs loops event loops until ctx ends.
func relayEpoll(ctx context.Context, listen, upstream string, loops int, raw bool) error {
	lAddr, err := sockaddr(listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	uAddr, err := sockaddr(upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	errs := make(chan error, loops)
	for i := 0; i < max(loops, 1); i++ {
		l, err := newLoop(lAddr, uAddr)
		if err != nil {
			return err
		}
		l.rawWait = raw
		go func() { errs <- l.run() }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// relayHandoff serves sessions as pgrollup would take them over: accepted
// and dialed as net.Conns (Go's poller watches them), then handed to one
// event loop. detach takes each socket out of Go's poller first (a dup of
// the descriptor, then Close on the net.Conn, which unregisters and closes
// the original); without it the loop watches sockets Go's poller watches
// too, as it would if the session kept its net.Conns.
func relayHandoff(ctx context.Context, listen, upstream string, raw, detach bool) error {
	uAddr, err := sockaddr(upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	l, err := newLoop(nil, uAddr)
	if err != nil {
		return err
	}
	l.rawWait = raw
	errs := make(chan error, 2)
	go func() { errs <- l.run() }()
	go func() {
		errs <- acceptSessions(ctx, listen, upstream, func(c, u net.Conn) {
			var h handoff
			for i, conn := range []net.Conn{c, u} {
				fd, err := socketOf(conn, detach)
				if err != nil {
					slog.Error("hand over", "err", err)
					c.Close()
					u.Close()
					return
				}
				h.fds[i] = fd
				if !detach {
					h.conns[i] = conn
				}
			}
			l.give(h)
		})
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// socketOf returns conn's descriptor; with detach a duplicate of it, after
// which conn is closed, so that only the duplicate is left, not in Go's poller.
func socketOf(conn net.Conn, detach bool) (int, error) {
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		if !detach {
			fd = int(s)
			return
		}
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	if detach {
		conn.Close()
	}
	return fd, nil
}

// sockaddr parses an IPv4 host:port.
func sockaddr(hostport string) (*unix.SockaddrInet4, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IPv4 address", host)
	}
	sa := &unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], ip)
	return sa, nil
}

// side is one socket of a session: a client or its upstream connection.
type side struct {
	id      int32
	fd      int
	peer    *side
	pending []byte // bytes read from peer not yet written to fd
	paused  bool   // not reading fd until peer's pending bytes are written
	closed  bool
	conn    net.Conn // the shared mode: the net.Conn that owns fd, closed instead of fd
}

// loop is one event loop: an epoll set holding its listener and its sessions.
type loop struct {
	epfd     int
	listenFD int
	upstream unix.Sockaddr
	sides    map[int32]*side
	nextID   int32
	buf      []byte
	rawWait  bool

	// Sessions whose sockets began as net.Conns (the handoff modes):
	// their pairs of descriptors (client, upstream), with a write to
	// handoffFD to wake the loop.
	handoff   chan handoff
	handoffFD int
}

const (
	listenerID = 0 // the loop's listener
	handoffID  = 1 // the eventfd that says sessions wait in handoff
)

// newLoop makes a loop that dials upstream for its sessions, with its own
// listener on listen unless listen is nil (its sessions are then handed to it).
func newLoop(listen, upstream unix.Sockaddr) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	l := &loop{epfd: epfd, listenFD: -1, upstream: upstream, sides: map[int32]*side{}, nextID: handoffID + 1,
		buf: make([]byte, 64<<10), handoff: make(chan handoff, 1024)}
	if l.handoffFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, l.handoffFD, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: handoffID}); err != nil {
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if listen == nil {
		return l, nil
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, opt, 1); err != nil {
			return nil, fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.Bind(lfd, listen); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: listenerID}); err != nil {
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	l.listenFD = lfd
	return l, nil
}

// give hands a session to the loop from another goroutine.
func (l *loop) give(h handoff) {
	l.handoff <- h
	one := [8]byte{1}
	_, _ = unix.Write(l.handoffFD, one[:])
}

// run waits for events and handles them inline, on one OS thread.
func (l *loop) run() error {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var err error
		if l.rawWait {
			n, err = rawEpollWait(l.epfd, events)
		} else {
			n, err = unix.EpollWait(l.epfd, events, -1)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			switch ev.Fd {
			case listenerID:
				l.accept()
				continue
			case handoffID:
				l.takeHandoffs()
				continue
			}
			s := l.sides[ev.Fd]
			if s == nil || s.closed {
				continue // closed earlier in this batch
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(s)
			}
			if !s.closed && ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !s.paused {
				l.relay(s)
			}
		}
	}
}

// accept takes every waiting client and dials its upstream connection.
func (l *loop) accept() {
	for {
		cfd, _, err := unix.Accept4(l.listenFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR {
				slog.Error("accept4", "err", err)
			}
			return
		}
		ufd, err := l.dial()
		if err != nil {
			slog.Error("dial upstream", "err", err)
			unix.Close(cfd)
			continue
		}
		_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.add(handoff{fds: [2]int{cfd, ufd}})
	}
}

// add serves a session from now on: its client's and its upstream
// connection's non-blocking sockets, and in the shared mode the net.Conns
// they belong to.
func (l *loop) add(h handoff) {
	c := &side{id: l.nextID, fd: h.fds[0], conn: h.conns[0]}
	u := &side{id: l.nextID + 1, fd: h.fds[1], conn: h.conns[1]}
	l.nextID += 2
	c.peer, u.peer = u, c
	l.sides[c.id], l.sides[u.id] = c, u
	for _, s := range []*side{c, u} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: s.id}); err != nil {
			slog.Error("epoll_ctl add", "err", err)
			l.close(c)
			return
		}
	}
}

// handoff is a session whose sockets began as net.Conns, for a loop.
type handoff struct {
	fds   [2]int      // client, upstream
	conns [2]net.Conn // in the shared mode, the net.Conns that still own fds
}

// takeHandoffs adds the sessions handed over since the last wake.
func (l *loop) takeHandoffs() {
	var b [8]byte
	_, _ = unix.Read(l.handoffFD, b[:])
	for {
		select {
		case h := <-l.handoff:
			l.add(h)
		default:
			return
		}
	}
}

// dial connects to the upstream server. Blocking: on loopback the connect is
// immediate, and the experiment's connections are made before its measurement.
func (l *loop) dial() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, l.upstream); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return fd, nil
}

// relay reads s once and writes what it read to its peer. What the peer
// cannot take now waits in peer.pending, and s is not read until it is sent.
func (l *loop) relay(s *side) {
	n, err := rawRead(s.fd, l.buf)
	if err == unix.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		l.close(s)
		return
	}
	p := s.peer
	w, err := rawWrite(p.fd, l.buf[:n])
	if err != nil && err != unix.EAGAIN {
		l.close(s)
		return
	}
	if w < n {
		p.pending = append(p.pending[:0], l.buf[max(w, 0):n]...)
		s.paused = true
		l.watch(s, 0)
		l.watch(p, unix.EPOLLIN|unix.EPOLLOUT)
	}
}

// flush writes s's pending bytes; when they are all sent, its peer is read again.
func (l *loop) flush(s *side) {
	if len(s.pending) == 0 {
		return
	}
	w, err := rawWrite(s.fd, s.pending)
	if err != nil && err != unix.EAGAIN {
		l.close(s)
		return
	}
	s.pending = s.pending[max(w, 0):]
	if len(s.pending) > 0 {
		return
	}
	s.pending = nil
	l.watch(s, unix.EPOLLIN)
	s.peer.paused = false
	l.watch(s.peer, unix.EPOLLIN)
}

func (l *loop) watch(s *side, events uint32) {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, s.fd, &unix.EpollEvent{Events: events, Fd: s.id}); err != nil {
		slog.Error("epoll_ctl mod", "err", err)
	}
}

// close ends a session: both sockets.
func (l *loop) close(s *side) {
	for _, x := range []*side{s, s.peer} {
		if x.closed {
			continue
		}
		x.closed = true
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, x.fd, nil)
		if x.conn != nil {
			x.conn.Close()
		} else {
			unix.Close(x.fd)
		}
		delete(l.sides, x.id)
	}
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets
// without the Go scheduler's syscall bookkeeping: they never block.
func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// rawEpollWait is epoll_wait(2) with no timeout as a raw system call: the
// loop's thread waits without telling the Go scheduler, as a C program's does.
func rawEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), ^uintptr(0), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
