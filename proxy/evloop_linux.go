//go:build linux

package proxy

import (
	"os"

	"golang.org/x/sys/unix"
)

// eventLoops: loops on plain sockets read them in an event loop (evloop.go).
const eventLoops = true

// errWouldBlock is the read that found the socket drained.
var errWouldBlock error = unix.EAGAIN

// rawRead reads the socket fd once; errWouldBlock when it has nothing.
func rawRead(fd uintptr, p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, os.NewSyscallError("read", err)
	}
}

// shutdownSocket ends both directions of the socket fd: the peer sees the
// end, and a loop waiting to read it wakes.
func shutdownSocket(fd uintptr) {
	_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
}
