package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the proxy's Prometheus collectors, registered on a registry the
// caller owns so that several servers (in tests) never share counters.
type Metrics struct {
	ClientConnections prometheus.Gauge
	// Statements are pgrollup_queries_total and
	// pgrollup_query_duration_seconds (statement_metrics.go).
	Statements *StatementMetrics
	Fallbacks  *prometheus.CounterVec
	// WarehouseUp is 1 while the warehouse accepts connections, 0 during
	// an outage (outage.go); LocalLogins counts the sessions the proxy
	// authenticated itself meanwhile.
	WarehouseUp prometheus.Gauge
	LocalLogins prometheus.Counter
}

// NewMetrics creates the proxy's collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ClientConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgrollup_client_connections",
			Help: "Client sessions currently open.",
		}),
		Statements: newStatementMetrics(),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_fallbacks_total",
			Help: "Statements the proxy meant to answer itself that were relayed to the warehouse after all, by reason.",
		}, []string{"reason"}),
		WarehouseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgrollup_warehouse_up",
			Help: "1 when the warehouse accepts connections, 0 while it is unreachable (then only statements answered from rollups run).",
		}),
		LocalLogins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgrollup_outage_logins_total",
			Help: "Sessions pgrollup authenticated itself because the warehouse was unreachable.",
		}),
	}
	reg.MustRegister(m.ClientConnections, m.Statements, m.Fallbacks, m.WarehouseUp, m.LocalLogins)
	// The reason the proxy itself gives; executors' own reasons appear with
	// their first fallback.
	m.Fallbacks.WithLabelValues("answer_failed")
	return m
}

// registerLoopMetrics registers the event loops' counters, summed over the
// loops when scraped. Events per wait is how much a loop finds each time it
// wakes: the more, the less each transaction costs.
func (s *Server) registerLoopMetrics(reg prometheus.Registerer) {
	for _, m := range []struct {
		name, help string
		value      func(loopStats) uint64
	}{
		{"pgrollup_event_loop_waits_total", "Times an event loop woke with sockets ready.", func(st loopStats) uint64 { return st.waits }},
		{"pgrollup_event_loop_events_total", "Socket events the event loops handled; per wait, how much a loop found each time it woke.", func(st loopStats) uint64 { return st.events }},
		{"pgrollup_event_loop_inline_total", "Session callbacks the event loops ran themselves, waking no goroutine.", func(st loopStats) uint64 { return st.inline }},
		{"pgrollup_event_loop_handovers_total", "Times an event loop handed itself to a new goroutine before work that may wait (an answer from a rollup, a dial).", func(st loopStats) uint64 { return st.handOvers }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			var sum uint64
			for _, l := range s.loops {
				sum += m.value(l.stats())
			}
			return float64(sum)
		}))
	}
}
