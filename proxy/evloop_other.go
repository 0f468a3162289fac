//go:build !linux

package proxy

import "errors"

// eventLoops: loops read with conn.Read here (evloop.go).
const eventLoops = false

var errWouldBlock = errors.New("would block")

func rawRead(uintptr, []byte) (int, error) { return 0, errWouldBlock }

func shutdownSocket(uintptr) {}

func rawWrite(uintptr, []byte) (int, error) { return 0, errWouldBlock }
