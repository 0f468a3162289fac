package integrity

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/rollup"
)

// Metrics counts the broken rollup files a process finds. A nil *Metrics
// records nothing.
type Metrics struct {
	fileErrors *prometheus.CounterVec
}

// NewMetrics registers pgrollup_rollup_file_errors_total on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		fileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_file_errors_total",
			Help: "Rollup files this process found missing from storage (kind missing), differing from the size, SHA-256 or ETag their build recorded (checksum), or unreadable (read). Each takes the version that names the file out of service and rebuilds the rollup.",
		}, []string{"rollup", "kind"}),
	}
	if err := reg.Register(m.fileErrors); err != nil {
		return nil, err
	}
	return m, nil
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
