//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollerSys is an epoll set of parked connections, and an eventfd that
// tells its goroutine to stop. A connection is watched once per park
// (EPOLLONESHOT), level-triggered, so that bytes that arrived before the
// park count; Go's own poller watches the same sockets edge-triggered, which
// two epoll sets allow. Every epoll_ctl on a connection goes through its
// RawConn.Control, which holds the descriptor open, so that a descriptor
// closed and reused by another connection is never touched; a closed one
// leaves the set by itself.
type pollerSys struct {
	epfd, stopfd int
	done         chan struct{}
}

const stopID = 0 // the eventfd's event data; registrations start at 1

// newIdlePoller starts the poller; it returns nil, and sessions do not
// park, when the system refuses an epoll set.
func newIdlePoller() (*idlePoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, stopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	p := &idlePoller{
		sys:   &pollerSys{epfd: epfd, stopfd: stopfd, done: make(chan struct{})},
		waits: map[uint64]*idleWait{},
	}
	go p.sys.run(p.ready)
	return p, nil
}

// run hands each ready registration to ready until stopped.
func (s *pollerSys) run(ready func(id uint64)) {
	defer close(s.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(s.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			id := eventID(&ev)
			if id == stopID {
				return
			}
			ready(id)
		}
	}
}

// watch arms the registration id for one readiness of raw's descriptor.
func (s *pollerSys) watch(raw syscall.RawConn, id uint64) error {
	var ctlErr error
	err := raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
		setEventID(&ev, id)
		ctlErr = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(ctlErr, unix.ENOENT) {
			ctlErr = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil {
		return err
	}
	return ctlErr
}

// unwatch takes raw's descriptor out of the set, if it is still open. A
// descriptor left in it with no events asked for would still report a
// hang-up (a peer's reset, a shutdown before the close), and under an id
// that may be the stop's.
func (s *pollerSys) unwatch(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// close stops run and releases the set.
func (s *pollerSys) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(s.stopfd, one[:])
	<-s.done
	unix.Close(s.epfd)
	unix.Close(s.stopfd)
}

// The event data is a union of fd and u64 in C; x/sys/unix spells it as
// Fd and Pad (two int32s on amd64 and arm64).
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
