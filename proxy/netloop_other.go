//go:build !linux

package proxy

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// netLoop: there is no shared event loop here (netloop.go).
type netLoop struct{}

func newNetLoops(int, *slog.Logger) ([]*netLoop, error) {
	return nil, errors.New("the shared event loop needs Linux")
}

func closeLoops([]*netLoop) {}

func (l *netLoop) stats() loopStats { return loopStats{} }

type connGroup struct{}

func newConnGroup(*netLoop) *connGroup { return &connGroup{} }

func (g *connGroup) take(conn net.Conn) net.Conn { return conn }

func (g *connGroup) mayBlock() {}

func (g *connGroup) now() time.Time { return time.Now() }

func (g *connGroup) yield() bool { return false }
