//go:build !linux

package proxy

import (
	"errors"
	"log/slog"
	"net"
)

// netLoop: there is no shared event loop here (netloop.go).
type netLoop struct{}

func newNetLoop(*slog.Logger) (*netLoop, error) {
	return nil, errors.New("the shared event loop needs Linux")
}

func (l *netLoop) close() {}

func (l *netLoop) takeConn(conn net.Conn, _ *connGroup) net.Conn { return conn }

type connGroup struct{}

func (g *connGroup) mayBlock() {}

func (g *connGroup) yield() bool { return false }
