//go:build !linux

package proxy

import (
	"errors"
	"syscall"
)

var errNoPoller = errors.New("no idle poller on this platform")

// pollerSys has no implementation here: sessions keep their goroutines.
type pollerSys struct{}

// newIdlePoller returns nil: idle sessions do not park on this platform.
func newIdlePoller() (*idlePoller, error) { return nil, nil }

func (*pollerSys) watch(syscall.RawConn, uint64) error { return errNoPoller }
func (*pollerSys) unwatch(syscall.RawConn)             {}
func (*pollerSys) close()                              {}
