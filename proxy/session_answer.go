package proxy

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// Deciding and running an answer of the proxy's: where a statement goes,
// what a Router or an Answer sees of the session, running an Answer and
// streaming its rows in the session's output settings, and accounting for
// an answer that fell back to the warehouse.

// route asks the router where a statement goes; statements that manage
// the proxy's own prepared statements it decides itself.
func (s *session) route(st *Statement) RouteDecision {
	if d, ok := s.sessionCommand(st); ok {
		return d
	}
	if d, ok := s.offlineCommand(st); ok {
		return d
	}
	if q, ok := s.srv.router.(QuickRouter); ok {
		if d, ok := q.RouteQuick(st); ok {
			return d
		}
	}
	s.group.mayBlock() // parsing, deciding, perhaps more
	d := s.srv.router.Route(s.ctx, st, s.session())
	if d.Answer == nil && d.Finish == nil {
		d.Route = RoutePassthrough
	}
	return d
}

// session refreshes and returns what a Router or an Answer may know of the
// session: it changes between a Parse and its Executes.
func (s *session) session() *SessionInfo {
	info := &s.sessInfo
	info.User, info.Database = s.user, s.database
	if p := s.params.Load(); p != nil {
		info.Parameters = *p
	}
	info.TxStatus = byte(s.txStatus.Load())
	s.stateMu.Lock()
	info.TxWrote, info.Now = s.txSnapshotLocked()
	info.Probe, info.Probed = nil, nil
	if s.set.known {
		info.Probe, info.Probed = s.set.probe, s.set.probed
	}
	s.stateMu.Unlock()
	return info
}

// encoder returns the encoding settings of the session as it is now: the
// parameters the warehouse reports, and extra_float_digits, which it does
// not (session_settings.go).
func (s *session) encoder(set sessionSettings) (*encoder, error) {
	params := map[string]string{}
	if p := s.params.Load(); p != nil {
		for k, v := range *p {
			params[k] = v
		}
	}
	if set.floatDigits != "" {
		params["extra_float_digits"] = set.floatDigits
	}
	settings, err := pgfmt.SettingsFromParams(params)
	if err != nil {
		return nil, err
	}
	return &encoder{settings: settings}, nil
}

// start starts an answer and takes the session's output settings with it.
func (s *session) start(ctx context.Context, a Answer, sess *SessionInfo, params []Param, set sessionSettings) (*Result, *encoder, error) {
	enc, err := s.encoder(set)
	if err != nil {
		return nil, nil, err
	}
	s.group.mayBlock()
	res, err := a.Run(ctx, sess, params)
	for tries := 0; errors.Is(err, ErrStaleContext); tries++ {
		// The Prober moved on between the read of the session's context
		// and the answer: read it again and answer with it, never with
		// the stale one nor as if it were unknown.
		if tries == staleContextRetries {
			return nil, nil, settingsUnknownError{}
		}
		if err := s.readContextAgain(); err != nil {
			return nil, nil, err
		}
		res, err = a.Run(ctx, s.session(), params)
	}
	if err != nil {
		return nil, nil, err
	}
	return res, enc, nil
}

// streamed is what stream did.
type streamed struct {
	n         int  // rows encoded
	done      bool // the rows ran out and CommandComplete was added
	committed bool // part of the answer reached the client
}

// chunkBytes is how much of an answer the proxy encodes before writing it
// to the client. An answer that fails before its first chunk is written can
// still fall back to the warehouse.
const chunkBytes = 64 << 10

// stream encodes up to maxRows rows (0: all) after out, writing to the
// client a chunk at a time, and adds CommandComplete when the rows run out;
// PortalSuspended is the caller's to add. It returns what is left to write.
// After an error nothing more is encoded; whether the statement may still
// fall back depends on st.committed. It stops when ctx ends (a cancel, the
// statement timeout) even if the rows do not watch ctx.
func (s *session) stream(ctx context.Context, out []byte, res *Result, enc *encoder, cols []Column, formats []int16, maxRows int) ([]byte, streamed, error) {
	var st streamed
	for maxRows == 0 || st.n < maxRows {
		if !res.Rows.Next() {
			if err := res.Rows.Err(); err != nil {
				return out, st, err
			}
			st.done = true
			return appendCommandComplete(out, commandTag(res.Tag, st.n)), st, nil
		}
		var err error
		if out, err = appendRow(out, enc, cols, formats, res.Rows.Values()); err != nil {
			return out, st, err
		}
		st.n++
		if len(out) >= chunkBytes {
			if err := ctx.Err(); err != nil {
				return out, st, err
			}
			if err := s.writeClient(out); err != nil {
				return nil, st, err
			}
			st.committed = true
			out = out[:0]
		}
	}
	return out, st, nil
}

// commandTag gives the CommandComplete tag of an Execute that sent n rows:
// Postgres counts the rows of that Execute, not of the whole portal.
func commandTag(tag string, n int) string {
	if strings.HasPrefix(tag, "SELECT") {
		return "SELECT " + strconv.Itoa(n)
	}
	return tag
}

// fallbackReason is the error's own reason when it has one (a worker
// timeout, a missing file), for the metric's label; else answer_failed.
func fallbackReason(err error) string {
	var r interface{ FallbackReason() string }
	if errors.As(err, &r) {
		if reason := r.FallbackReason(); reason != "" {
			return reason
		}
	}
	return "answer_failed"
}

// fellBack accounts for an answer that failed after the decision, whose
// statement st the warehouse answers instead. It counts the fallback and
// warns, a limited number of times, with the rollup, the error and the
// statement's shape: the client sees nothing wrong, and only the log can
// say why the statement was not faster.
func (s *session) fellBack(d RouteDecision, a Answer, st *Statement, err error) {
	reason := fallbackReason(err)
	s.srv.fallback(reason)
	s.clock.fellBack() // the warehouse's answer counts as passthrough
	rollup := ""
	if n, ok := a.(RollupNamer); ok {
		rollup = n.RollupName()
	}
	var expected interface{ ExpectedFallback() bool }
	log, suppressed := false, 0
	if !errors.As(err, &expected) || !expected.ExpectedFallback() {
		log, suppressed = s.srv.fallbackLog.allow(rollup, err.Error())
	}
	if !log {
		s.logger().Debug("answer failed; relaying to the warehouse", "route", d.Route, "rollup", rollup, "reason", reason, "err", err)
		return
	}
	shape, fingerprint := statementShape(st.SQL, s.srv.limits)
	s.logger().Warn("answer failed after the decision; the warehouse answers instead",
		"rollup", rollup, "reason", reason, "err", err,
		"statement", shape, "fingerprint", fingerprint,
		"suppressed", suppressed)
}
