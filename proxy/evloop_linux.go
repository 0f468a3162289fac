//go:build linux

package proxy

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// eventLoops: loops on plain sockets read them in an event loop (evloop.go).
const eventLoops = true

// errWouldBlock is the read that found the socket drained.
var errWouldBlock error = unix.EAGAIN

// rawRead reads the socket fd once; errWouldBlock when it has nothing.
func rawRead(fd uintptr, p []byte) (int, error) {
	return rawIO(unix.SYS_READ, "read", fd, p)
}

// rawWrite writes p to the socket fd once; errWouldBlock when it has no room.
func rawWrite(fd uintptr, p []byte) (int, error) {
	return rawIO(unix.SYS_WRITE, "write", fd, p)
}

// rawIO is read(2) or write(2) on a non-blocking socket as a raw system
// call, which the Go scheduler does not account as one that may block: it
// never blocks (socketWriter says why that matters).
func rawIO(trap uintptr, name string, fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		var n uintptr
		var e syscall.Errno
		if raceEnabled {
			n, e = syscallIO(trap, fd, p)
		} else {
			n, _, e = unix.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		}
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, os.NewSyscallError(name, e)
	}
}

// shutdownSocket ends both directions of the socket fd: the peer sees the
// end, and a loop waiting to read it wakes.
func shutdownSocket(fd uintptr) {
	_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
}

// syscallIO is rawIO's call through syscall.Read or syscall.Write.
func syscallIO(trap, fd uintptr, p []byte) (uintptr, syscall.Errno) {
	var n int
	var err error
	if trap == unix.SYS_READ {
		n, err = syscall.Read(int(fd), p)
	} else {
		n, err = syscall.Write(int(fd), p)
	}
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return uintptr(n), 0
}
