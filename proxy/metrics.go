package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the proxy's Prometheus collectors, registered on a registry the
// caller owns so that several servers (in tests) never share counters.
type Metrics struct {
	ClientConnections prometheus.Gauge
	Queries           *prometheus.CounterVec
	Fallbacks         *prometheus.CounterVec
	QueryDuration     *prometheus.HistogramVec // session_duration.go
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
		Queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_queries_total",
			Help: "Statements executed, by the route that answered them.",
		}, []string{"route"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_fallbacks_total",
			Help: "Statements the proxy meant to answer itself that were relayed to the warehouse after all, by reason.",
		}, []string{"reason"}),
		QueryDuration: newQueryDuration(),
		WarehouseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgrollup_warehouse_up",
			Help: "1 when the warehouse accepts connections, 0 while it is unreachable (then only statements answered from rollups run).",
		}),
		LocalLogins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgrollup_outage_logins_total",
			Help: "Sessions pgrollup authenticated itself because the warehouse was unreachable.",
		}),
	}
	reg.MustRegister(m.ClientConnections, m.Queries, m.Fallbacks, m.QueryDuration, m.WarehouseUp, m.LocalLogins)
	// Every route is present from the start so that rate() and the hit-rate
	// expression see a zero rather than a missing series.
	for _, r := range []Route{RoutePassthrough, RouteRollup, RouteAdmin, RouteError} {
		m.Queries.WithLabelValues(string(r))
		m.QueryDuration.WithLabelValues(string(r))
	}
	// The reason the proxy itself gives; executors' own reasons appear with
	// their first fallback.
	m.Fallbacks.WithLabelValues("answer_failed")
	return m
}
