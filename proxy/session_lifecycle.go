package proxy

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// How an established session runs and ends: the goroutines of its two
// loops, closing its connections, draining it for shutdown, and ending it
// once both loops are done.

// run serves the session from its startup packet on. Its goroutine ends
// when the session does, or earlier when the client loop parks (idle.go):
// the session then ends in whichever goroutine resumes it (end).
func (s *session) run() {
	registered, ok := s.establish()
	if !ok {
		s.closeConns()
		if registered {
			s.srv.unregister(s)
		}
		s.srv.wg.Done()
		return
	}
	s.serveClient()
}

// serveClient runs the client loop, and ends the session when the loop
// ends other than by parking.
func (s *session) serveClient() {
	err := s.clientLoop()
	if err == errParked {
		return
	}
	s.end(err)
}

// end closes a session whose client loop has ended (clientErr), once the
// upstream loop has too, and tells the server.
func (s *session) end(clientErr error) {
	s.dropAllPortals()
	s.closeConns()
	s.stateMu.Lock()
	done := s.upDone
	s.stateMu.Unlock()
	if done != nil {
		<-done
	}
	s.foldRelayed()
	s.releaseBuffers()
	s.logger().Debug("session ended", "client_end", errText(clientErr))
	s.srv.unregister(s)
	s.srv.wg.Done()
}

// startUpstreamLoop starts relaying the warehouse's messages to the client.
func (s *session) startUpstreamLoop() {
	done := make(chan struct{})
	s.stateMu.Lock()
	s.upDone = done
	s.detached.Store(false)
	s.stateMu.Unlock()
	go s.runUpstream(done)
}

// runUpstream runs the upstream loop of the connection whose end closes
// done, unless the loop parks.
func (s *session) runUpstream(done chan struct{}) {
	err := s.upstreamLoop(done)
	if err == errParked {
		return
	}
	close(done)
	s.logger().Debug("warehouse connection ended", "end", errText(err))
}

// releaseBuffers gives the session's buffers back to the pool once both
// loops are done with them.
func (s *session) releaseBuffers() {
	s.clientR.close()
	s.clientMu.Lock()
	s.clientW.close()
	s.clientMu.Unlock()
	if s.upR != nil {
		s.upR.close()
		s.upW.w.close()
	}
}

// closeConns closes both connections, which ends both loops: a parked
// loop is resumed to see its connection closed.
func (s *session) closeConns() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.stateMu.Lock()
		s.closing = true
		s.drained.Broadcast()
		s.stateMu.Unlock()
		parked := s.srv.closeLoopConn(s.client, s.clientR)
		if parked {
			s.resumeClient()
		}
		s.closeUpstream()
	})
}

// resumeClient runs the parked client loop again.
func (s *session) resumeClient() { go s.serveClient() }

func (s *session) idleLocked() bool {
	return s.expect.len() == 0 && !s.inExtended && byte(s.txStatus.Load()) == 'I'
}

// drain asks the session to end as soon as it is idle: now if it is.
func (s *session) drain() {
	s.stateMu.Lock()
	s.draining = true
	now := s.idleLocked() && !s.closing
	if now {
		s.closing = true
	}
	s.stateMu.Unlock()
	if now {
		s.terminate(newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command"))
	}
}

// terminate tells the client why its session ends, says goodbye to the
// warehouse and closes both connections.
func (s *session) terminate(e *pgError) {
	s.clientMu.Lock()
	_, _ = s.clientW.Write(e.encode(nil))
	_ = s.clientW.Flush()
	s.clientMu.Unlock()
	s.upMu.Lock()
	if s.upstream != nil && !s.isDetached() {
		_ = s.upstream.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.upstream.Write([]byte{'X', 0, 0, 0, 4})
	}
	s.upMu.Unlock()
	s.closeConns()
}

func errText(err error) string {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	return err.Error()
}
