package proxy

import (
	"context"
	"log/slog"
	"time"
)

// Counting and timing statements: pgrollup_queries_total and
// pgrollup_query_duration_seconds by route, and a debug log line for each.

// queryDurationBuckets run from a rollup answer served from memory (100µs)
// to a warehouse scan that a BI tool is about to give up on (60s), roughly
// 1-2.5-5 per decade so that the percentiles of both ends stay readable.
var queryDurationBuckets = [...]float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10, 30, 60,
}

// RollupNamer is implemented by an Answer that knows which rollup answers
// it, so that the statement log can name it.
type RollupNamer interface {
	RollupName() string
}

// Bounds on the per-session maps of passthrough reasons: a client that
// prepares ever new statement names without closing them must not grow a
// session without limit. Past the bound the map starts afresh, which costs
// only the reason in a debug log line.
const maxReasons = 1024

// statementClock times a session's statements and remembers, for the debug
// log, why those the warehouse answers were not answered from a rollup.
//
// The warehouse's answers arrive on the upstream loop, long after the client
// loop relayed the statement, so each relayed Query and Execute waits in
// inflight, in the order of the session's expect queue, until the message
// that completes it.
type statementClock struct {
	// Client loop only.
	received      time.Time            // arrival of the client message being handled
	read          uint64               // connReader.reads when it was handled
	readAt        time.Time            // when read was, if known
	group         *connGroup           // the session's in an event loop, whose clock it reads (connGroup.now)
	reason        relayNote            // why the statement about to be relayed passes through
	stmtReasons   map[string]relayNote // relayed prepared statement -> its reason
	lastBound     lastName[relayNote]  // the last statement bound and its reason
	portalReasons portalNotes          // relayed portal -> its statement's reason

	// Guarded by session.stateMu, like the expect queue they shadow.
	pushed, popped uint64 // expectations ever added to and removed from the queue
	inflight       []relayedStatement
	inflightHead   int // inflight[:inflightHead] are done
}

// maxKeptInflight is the most statements whose room statementClock.inflight
// keeps once they are answered: enough for a session that sends one
// statement per batch to time each without an allocation, and little
// memory for an idle one.
const maxKeptInflight = 4

// relayedStatement is a Query or Execute the warehouse has yet to answer.
type relayedStatement struct {
	seq    uint64 // its position in the expect queue, counted since the session began
	kind   byte   // 'Q' or 'E'
	start  time.Time
	reason relayNote
}

// relayNote is what the router said of a statement it passed through: the
// reason, and whom to tell how long the warehouse took.
type relayNote struct {
	reason string
	done   func(time.Duration) // RouteDecision.Relayed; nil when nobody asked
}

func noteOf(d RouteDecision) relayNote { return relayNote{reason: d.Reason, done: d.Relayed} }

// arrived notes the arrival of a client message of type typ, handled
// after read reads of the client's connection (connReader.reads); a
// statement's latency counts from here, including any wait behind earlier
// statements. Messages that came in the same read arrived together, so the
// clock is read at most once per read: at once for a message that starts a
// statement (Query, Parse, Execute, FunctionCall), and only when it is
// asked for otherwise (at): most Binds, Describes and Syncs never need it,
// and reading the clock costs as much as handling them.
func (c *statementClock) arrived(typ byte, read uint64) {
	if read != c.read {
		c.read, c.readAt = read, time.Time{}
	}
	c.received = time.Time{}
	switch typ {
	case 'Q', 'P', 'E', 'F':
		c.received = c.at()
	}
	c.reason = relayNote{}
}

// at returns the arrival of the client message being handled.
func (c *statementClock) at() time.Time {
	if c.received.IsZero() {
		if c.readAt.IsZero() {
			c.readAt = c.group.now()
		}
		c.received = c.readAt
	}
	return c.received
}

// querying notes the decision on a simple Query about to be relayed.
func (c *statementClock) querying(d RouteDecision) { c.reason = noteOf(d) }

// prepared notes the decision on a Parse; on one the proxy answers itself
// the reason is empty, which also forgets an earlier statement of that name.
func (c *statementClock) prepared(name string, d RouteDecision) {
	if c.stmtReasons == nil || len(c.stmtReasons) >= maxReasons {
		c.stmtReasons = map[string]relayNote{}
	}
	c.stmtReasons[name] = noteOf(d)
	c.lastBound.forget()
}

// bound notes a Bind of a portal to a statement, relayed or not. A client
// binds the same statement again and again: the last one's reason is kept
// beside the map (only prepared changes the map, and forgets it).
func (c *statementClock) bound(portal string, stmt []byte) {
	note, ok := c.lastBound.get(stmt)
	if !ok {
		note = c.stmtReasons[string(stmt)]
		c.lastBound.set(stmt, note)
	}
	c.portalReasons.set(portal, note)
}

// relayedPortal notes, for a portal its Binder left to the warehouse, the
// reason and callback the Binder gives for it.
func (c *statementClock) relayedPortal(portal string, b RelayBinder, params []Param) {
	reason, done := b.Relayed(params)
	c.portalReasons.set(portal, relayNote{reason: reason, done: done})
}

// executing notes an Execute of a portal about to be relayed.
func (c *statementClock) executing(portal string) { c.reason = c.portalReasons.get(portal) }

// portalNotes are the notes of portals by name. The unnamed portal, which
// most clients bind for every statement, has a field rather than a map
// entry.
type portalNotes struct {
	unnamed relayNote
	named   map[string]relayNote
}

func (p *portalNotes) set(portal string, note relayNote) {
	if portal == "" {
		p.unnamed = note
		return
	}
	if p.named == nil || len(p.named) >= maxReasons {
		p.named = map[string]relayNote{}
	}
	p.named[portal] = note
}

func (p *portalNotes) get(portal string) relayNote {
	if portal == "" {
		return p.unnamed
	}
	return p.named[portal]
}

// fellBack notes that the statement about to be relayed was meant to be
// answered by the proxy; the reason is the one the fallback metric uses.
func (c *statementClock) fellBack() { c.reason = relayNote{reason: "answer_failed"} }

// pushExpect adds an expectation to the queue and, for a relayed Query or
// Execute of the client's, starts its clock. The caller holds stateMu.
func (s *session) pushExpect(e *expectation) {
	before := s.expect.len()
	s.expect.push(e)
	if s.expect.len() == before {
		return // dropped: the warehouse skips everything until Sync
	}
	c := &s.clock
	seq := c.pushed
	c.pushed++
	if (e.kind == 'Q' || e.kind == 'E') && !e.swallow {
		c.inflight = append(c.inflight, relayedStatement{seq: seq, kind: e.kind, start: c.at(), reason: c.reason})
		c.reason = relayNote{}
	}
}

// observeExpect accounts for a warehouse message in the expect queue and
// observes the duration of the statement it completes, if any. The caller
// holds stateMu.
func (s *session) observeExpect(typ byte) (relay bool) {
	before := s.expect.len()
	relay = s.expect.observe(typ)
	n := uint64(before - s.expect.len())
	if n == 0 {
		return relay
	}
	// The queue only ever loses its oldest entries.
	c := &s.clock
	c.popped += n
	done := false
	for c.inflightHead < len(c.inflight) && c.inflight[c.inflightHead].seq < c.popped {
		st := c.inflight[c.inflightHead]
		c.inflight[c.inflightHead] = relayedStatement{}
		c.inflightHead++
		// One message answers at most one statement. An error in the
		// extended protocol answers the first statement of the batch still
		// waiting, even when its Parse or Bind failed (1/0 fails at Bind);
		// the warehouse skips those after it, so they were never answered.
		if !done && completes(st.kind, typ) {
			done = true
			elapsed := c.group.now().Sub(st.start)
			s.relayDone(st.reason.reason, elapsed)
			if st.reason.done != nil {
				st.reason.done(elapsed)
			}
		}
	}
	if c.inflightHead == len(c.inflight) {
		c.inflightHead = 0
		c.inflight = c.inflight[:0]
		if cap(c.inflight) > maxKeptInflight {
			c.inflight = nil // let a pipeline's backing array go
		}
	}
	return relay
}

// completes reports whether a warehouse message of type typ is the last
// answer to a client message of the given kind.
func completes(kind, typ byte) bool {
	switch kind {
	case 'Q':
		return typ == 'Z'
	case 'E':
		// CommandComplete, EmptyQueryResponse, PortalSuspended or an error.
		return typ == 'C' || typ == 'I' || typ == 's' || typ == 'E'
	}
	return false
}

// answered counts and times a statement the proxy answered itself (from a
// rollup, an admin command or an error) and passes err through, so that a
// call site can wrap its final write: the duration then includes it.
func (s *session) answered(d RouteDecision, a Answer, err error) error {
	rollup := ""
	if n, ok := a.(RollupNamer); ok {
		rollup = n.RollupName()
	}
	s.statementDone(d.Route, rollup, d.Reason, time.Since(s.clock.at()))
	return err
}

// statementDone counts one answered statement under its route, observes its
// duration and logs it at debug level. A statement is counted once it is
// answered, where it was answered: one that fell back counts as
// passthrough, and one the warehouse skipped after an earlier error in its
// batch is not counted at all.
//
// The log line names the route and the rollup or the reason, never the
// statement's text or its parameter values, which may hold what the
// warehouse protects.
func (s *session) statementDone(route Route, rollup, reason string, elapsed time.Duration) {
	s.srv.metrics.Statements.observe(route, elapsed)
	s.logStatement(route, rollup, reason, elapsed)
}

// relayDone is statementDone for a statement the warehouse answered,
// tallied by the session (StatementMetrics). The caller holds stateMu.
func (s *session) relayDone(reason string, elapsed time.Duration) {
	s.relayed.observe(elapsed)
	s.logStatement(RoutePassthrough, "", reason, elapsed)
}

// logStatement writes the debug log's line for a statement done.
func (s *session) logStatement(route Route, rollup, reason string, elapsed time.Duration) {
	if !s.srv.logStatements {
		return
	}
	attrs := make([]slog.Attr, 0, 3)
	attrs = append(attrs, slog.String("route", string(route)))
	if rollup != "" {
		attrs = append(attrs, slog.String("rollup", rollup))
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	attrs = append(attrs, slog.Duration("latency", elapsed))
	s.logger().LogAttrs(context.Background(), slog.LevelDebug, "statement", attrs...)
}

func (s *session) count(r Route) {
	s.srv.metrics.Statements.count(r)
}
