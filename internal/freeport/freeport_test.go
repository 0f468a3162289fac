package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestPorts(t *testing.T) {
	ports, err := Ports(20)
	if err != nil {
		t.Fatal(err)
	}
	start := ephemeralStart()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice: %v", p, ports)
		}
		seen[p] = true
		if start > lowest+1000 && (p < lowest || p >= start) {
			t.Errorf("port %d is outside %d..%d, below the outgoing connections' range", p, lowest, start-1)
		}
		// Free: the caller can bind it.
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestListenSkipsListeners(t *testing.T) {
	// A range of two ports, one listened on: every pick is the other.
	ports, err := Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := min(ports[0], ports[1]), max(ports[0], ports[1])
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hi))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for range 20 {
		l, err := listen(lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p == hi {
			t.Fatalf("port %d is listened on", p)
		}
		if hi == lo+1 && p != lo {
			t.Fatalf("picked %d outside %d..%d", p, lo, hi)
		}
	}
	// An empty range leaves the pick to the kernel.
	l, err := listen(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
