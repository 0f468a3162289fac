//go:build linux && race

package proxy

import (
	"runtime"
	"unsafe"
)

// The race detector learns of the buffers raw reads and writes touch, as
// it does of those syscall.Read and syscall.Write touch.

func raceReadRange(p []byte) {
	if len(p) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	}
}

func raceWriteRange(p []byte) {
	if len(p) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	}
}
