package proxy

import (
	"context"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// A local answer stops as a statement in Postgres does: at a CancelRequest,
// and when it outlives statement_timeout. Either ends its context with a
// cause, and the answer's error becomes Postgres's own; it never falls back
// to the warehouse, because the client asked for no answer, or for none
// that late.

// errCanceled is Postgres's answer to a cancelled statement.
var errCanceled = newError(severityError, sqlstate.QueryCanceled, "canceling statement due to user request")

// errStatementTimeout is Postgres's answer to a statement that ran longer
// than statement_timeout.
var errStatementTimeout = newError(severityError, sqlstate.QueryCanceled, "canceling statement due to statement timeout")

// running records how to stop the answer being computed now, for a
// CancelRequest; nil when none is.
func (s *session) running(cancel context.CancelCauseFunc) {
	s.answerMu.Lock()
	s.answerCancel = cancel
	s.answerMu.Unlock()
}

// cancelAnswer stops the answer being computed, as a CancelRequest asks.
func (s *session) cancelAnswer() {
	s.answerMu.Lock()
	defer s.answerMu.Unlock()
	if s.answerCancel != nil {
		s.answerCancel(errCanceled)
	}
}

// cancelUpstream forwards a client's CancelRequest to its warehouse backend,
// unless the warehouse is answering nothing of the session's: then the
// statement the client cancels is an answer of the proxy's, stopped here,
// and a cancel that reached the backend after that answer's error could
// stop the client's next statement instead (Postgres cancels whatever its
// backend runs when the signal arrives).
func (s *session) cancelUpstream() {
	s.cancelAnswer()
	k := s.upKey.Load()
	if k == nil || !s.warehouseAnswering() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.warehouse.cancel(ctx, k.pid, k.secret); err != nil {
		s.logger().Warn("cancel request not delivered", "err", err)
	}
}

// warehouseAnswering reports whether the warehouse owes the session an
// answer: a relayed message, or a query of the proxy's own, is waiting for
// its response.
func (s *session) warehouseAnswering() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.expect.len() > 0
}

// answerContext returns the context an answer runs in: a CancelRequest
// cancels it (cancel with errCanceled) and, when timeout is set, it ends at
// the deadline statement_timeout gives it, which the answer (and whatever
// it asks in turn, a worker over the network) can see.
func answerContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	if timeout <= 0 {
		return ctx, cancel
	}
	dctx, stop := context.WithDeadlineCause(ctx, time.Now().Add(timeout), errStatementTimeout)
	return dctx, func(cause error) {
		cancel(cause)
		stop()
	}
}

// timeLimit ends an answer's context after statement_timeout (0: never),
// and returns what stops the clock: for a portal read over several
// Executes, whose context outlives each.
func timeLimit(cancel context.CancelCauseFunc, timeout time.Duration) (stop func()) {
	if timeout <= 0 {
		return func() {}
	}
	t := time.AfterFunc(timeout, func() { cancel(errStatementTimeout) })
	return func() { t.Stop() }
}

// interrupted turns the error of an answer whose context a CancelRequest
// or statement_timeout ended into Postgres's own.
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	switch cause := context.Cause(ctx); cause {
	case errCanceled, errStatementTimeout:
		return cause
	}
	return err
}

// isInterrupt reports whether err is a cancel or a timeout, which never
// falls back.
func isInterrupt(err error) bool { return err == errCanceled || err == errStatementTimeout }
