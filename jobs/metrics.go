package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the build metrics of DESIGN.md §2. A nil *Metrics records
// nothing.
type Metrics struct {
	builds   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers pgrollup_builds_total and pgrollup_build_duration_seconds
// on reg, and, when view is not nil, the gauges pgrollup_rollup_rows,
// pgrollup_rollup_bytes and pgrollup_rollup_age_seconds of the current
// definitions' active versions.
func NewMetrics(reg prometheus.Registerer, view func() []Status) (*Metrics, error) {
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
	cs := []prometheus.Collector{m.builds, m.duration}
	if view != nil {
		cs = append(cs, &gauges{view: view})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) build(rollup, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.builds.WithLabelValues(rollup, result).Inc()
	m.duration.WithLabelValues(rollup).Observe(d.Seconds())
}

var (
	rowsDesc  = prometheus.NewDesc("pgrollup_rollup_rows", "Rows of the rollup's active version.", []string{"rollup"}, nil)
	bytesDesc = prometheus.NewDesc("pgrollup_rollup_bytes", "Bytes of the rollup's active version.", []string{"rollup"}, nil)
	ageDesc   = prometheus.NewDesc("pgrollup_rollup_age_seconds", "Seconds since the rollup's active version was built.", []string{"rollup"}, nil)
)

// gauges reads the catalog view at scrape time, so they are never stale.
type gauges struct {
	view func() []Status
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- rowsDesc
	ch <- bytesDesc
	ch <- ageDesc
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, s := range g.view() {
		if s.Version == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(rowsDesc, prometheus.GaugeValue, float64(s.Rows), s.Name)
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.GaugeValue, float64(s.Bytes), s.Name)
		if s.BuiltAt != nil {
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, now.Sub(*s.BuiltAt).Seconds(), s.Name)
		}
	}
}
