// Package freeport picks TCP ports on the loopback address for the servers
// tests and benchmarks start (Postgres, MinIO, NATS, pgrollup).
//
// A port found free by binding to port 0 comes from the range the kernel
// also hands out to outgoing connections, so any connection opened on the
// machine between the pick and the server's own bind can take it, and the
// server then fails with "address already in use". The ports here come from
// below that range, where only listeners compete, and each is checked free
// by binding it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// lowest is the lowest port picked: well above the well-known and
// registered ports most services listen on.
const lowest = 10000

// Port returns a TCP port on 127.0.0.1 that nothing listens on now.
func Port() (int, error) {
	ports, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// Ports returns n distinct TCP ports on 127.0.0.1 that nothing listens on
// now. All n are held until the last is chosen, so that none is handed out
// twice.
func Ports(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	lo, hi := lowest, ephemeralStart()-1
	if hi-lo < 1000 {
		lo, hi = 0, -1 // no room below the range: the kernel picks
	}
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := listen(lo, hi)
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listen binds a random port from lo to hi, or one the kernel picks when
// the range is empty or a hundred tries found none free.
func listen(lo, hi int) (net.Listener, error) {
	for i := 0; i < 100 && lo <= hi; i++ {
		port := lo + rand.IntN(hi-lo+1)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// ephemeralStart is the first port of the kernel's range for outgoing
// connections (Linux's net.ipv4.ip_local_port_range), or lowest when it is
// unknown, which leaves the pick to the kernel.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lowest
	}
	var start, end int
	if _, err := fmt.Sscan(string(b), &start, &end); err != nil || start <= lowest {
		return lowest
	}
	return start
}
