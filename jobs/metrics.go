package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/rollup"
)

// Metrics are the build metrics of DESIGN.md §2 and the count of broken rollup
// files. A nil *Metrics records nothing.
type Metrics struct {
	builds     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	fileErrors *prometheus.CounterVec
}

// NewMetrics registers pgrollup_builds_total, pgrollup_build_duration_seconds and
// pgrollup_rollup_file_errors_total on reg, and, when view is not nil, the gauges
// pgrollup_rollup_rows, pgrollup_rollup_bytes and pgrollup_rollup_age_seconds of the
// current definitions' active versions.
func NewMetrics(reg prometheus.Registerer, view func() []Status) (*Metrics, error) {
	m := &Metrics{
		fileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_file_errors_total",
			Help: "Rollup files this process found missing from storage (kind missing), differing from the size, SHA-256 or ETag their build recorded (checksum), or unreadable (read). Each takes the version that names the file out of service and rebuilds the rollup.",
		}, []string{"rollup", "kind"}),
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
	cs := []prometheus.Collector{m.builds, m.duration, m.fileErrors}
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

// fileError counts a broken file of rollup.
func (m *Metrics) fileError(rollup, kind string) {
	if m == nil {
		return
	}
	m.fileErrors.WithLabelValues(rollup, kind).Inc()
}

// fileErrorSeries makes rollup's series of pgrollup_rollup_file_errors_total exist at
// 0, so that increase() over them sees the first error.
func (m *Metrics) fileErrorSeries(rollupName string) {
	if m == nil {
		return
	}
	for _, k := range rollup.FileKinds {
		m.fileErrors.WithLabelValues(rollupName, k)
	}
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
