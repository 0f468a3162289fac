package proxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StatementMetrics are pgrollup_queries_total and
// pgrollup_query_duration_seconds, by route.
//
// Nearly every statement is one the warehouse answers, counted as its
// answer completes by the session's upstream side, which holds the
// session's state lock then. So each session keeps its own tally of those
// (session.relayed, under stateMu) and the collector adds the sessions'
// tallies up when it is scraped, and a session's own when it ends: a
// relayed statement costs a few additions, not the atomic operations and
// bucket search of a Prometheus counter and histogram. The other routes
// are rare, and tallied here under a lock.
type StatementMetrics struct {
	queries, durations *prometheus.Desc
	// gather adds what the sessions hold to passthrough (the server's
	// gatherRelayed); nil for none.
	gather func()

	mu     sync.Mutex
	routes [len(statementRoutes)]tally
}

// statementRoutes are the routes, in the order of StatementMetrics.routes.
var statementRoutes = [...]Route{RoutePassthrough, RouteRollup, RouteAdmin, RouteError}

func routeIndex(r Route) int {
	for i, known := range statementRoutes {
		if r == known {
			return i
		}
	}
	return -1
}

// tally counts statements (counted, the queries metric) and the durations
// of those timed (the histogram).
type tally struct {
	counted uint64
	timed   uint64
	sum     time.Duration
	buckets [len(queryDurationBuckets)]uint64 // durations in (bound i-1, bound i]
}

// queryDurationBounds are queryDurationBuckets as durations.
var queryDurationBounds = func() (b [len(queryDurationBuckets)]time.Duration) {
	for i, s := range queryDurationBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// observe counts and times one statement.
func (t *tally) observe(d time.Duration) {
	t.counted++
	t.timed++
	t.sum += d
	for i, bound := range queryDurationBounds {
		if d <= bound {
			t.buckets[i]++
			return
		}
	}
}

// add adds o to t.
func (t *tally) add(o *tally) {
	t.counted += o.counted
	t.timed += o.timed
	t.sum += o.sum
	for i := range t.buckets {
		t.buckets[i] += o.buckets[i]
	}
}

func newStatementMetrics() *StatementMetrics {
	return &StatementMetrics{
		queries: prometheus.NewDesc("pgrollup_queries_total",
			"Statements executed, by the route that answered them.", []string{"route"}, nil),
		durations: prometheus.NewDesc("pgrollup_query_duration_seconds",
			"Time from a statement's arrival to its complete answer, by the route that answered it.", []string{"route"}, nil),
	}
}

// count counts a statement of route r, untimed.
func (m *StatementMetrics) count(r Route) {
	if i := routeIndex(r); i >= 0 {
		m.mu.Lock()
		m.routes[i].counted++
		m.mu.Unlock()
	}
}

// observe counts a statement of route r and its duration d.
func (m *StatementMetrics) observe(r Route, d time.Duration) {
	if i := routeIndex(r); i >= 0 {
		m.mu.Lock()
		m.routes[i].observe(d)
		m.mu.Unlock()
	}
}

// addRelayed adds a session's tally of relayed statements.
func (m *StatementMetrics) addRelayed(t *tally) {
	m.mu.Lock()
	m.routes[routeIndex(RoutePassthrough)].add(t)
	m.mu.Unlock()
}

// snapshot returns the tally of every route, the sessions' included.
func (m *StatementMetrics) snapshot() [len(statementRoutes)]tally {
	if m.gather != nil {
		m.gather()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.routes
}

// Describe implements prometheus.Collector.
func (m *StatementMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.queries
	ch <- m.durations
}

// Collect implements prometheus.Collector. Every route is there from the
// start, so that rate() and the hit-rate expression see a zero rather than
// a missing series.
func (m *StatementMetrics) Collect(ch chan<- prometheus.Metric) {
	routes := m.snapshot()
	for i, r := range statementRoutes {
		t := &routes[i]
		ch <- prometheus.MustNewConstMetric(m.queries, prometheus.CounterValue, float64(t.counted), string(r))
		buckets := make(map[float64]uint64, len(queryDurationBuckets))
		var cumulative uint64
		for j, upper := range queryDurationBuckets {
			cumulative += t.buckets[j]
			buckets[upper] = cumulative
		}
		ch <- prometheus.MustNewConstHistogram(m.durations, t.timed, t.sum.Seconds(), buckets, string(r))
	}
}

// gatherRelayed adds the tallies the sessions hold to the metrics.
func (s *Server) gatherRelayed() {
	s.mu.Lock()
	sessions := s.sessionsLocked()
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.foldRelayed()
	}
}

// sessionsLocked returns the sessions open now. The caller holds s.mu.
func (s *Server) sessionsLocked() []*session {
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	return sessions
}

// foldRelayed adds the session's tally of relayed statements to the
// server's metrics, and starts a new one.
func (s *session) foldRelayed() {
	s.stateMu.Lock()
	if s.relayed.counted > 0 {
		s.srv.metrics.Statements.addRelayed(&s.relayed)
		s.relayed = tally{}
	}
	s.stateMu.Unlock()
}
