package builds

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the build metrics in the README's Metrics table. A nil *Metrics records
// nothing.
type Metrics struct {
	builds   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers pgrollup_builds_total and pgrollup_build_duration_seconds
// on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_builds_total",
			Help: "Rollup builds run by this process, by rollup and result (success or error).",
		}, []string{"rollup", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pgrollup_build_duration_seconds",
			Help:    "Duration of rollup builds run by this process.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
		}, []string{"rollup"}),
	}
	for _, c := range []prometheus.Collector{m.builds, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// build counts a build of rollup that ended with result after d.
func (m *Metrics) build(rollup, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.builds.WithLabelValues(rollup, result).Inc()
	m.duration.WithLabelValues(rollup).Observe(d.Seconds())
}
