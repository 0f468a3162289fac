//go:build linux && race

package proxy

// raceEnabled: under the race detector raw reads and writes go through
// syscall.Read and syscall.Write, which tell it the buffers they touch and
// that a socket's write happens before its read, as net.Conn's do.
const raceEnabled = true
