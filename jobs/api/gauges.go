package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterGauges registers on reg the gauges pgrollup_rollup_rows,
// pgrollup_rollup_bytes and pgrollup_rollup_age_seconds of the active
// versions of the rollups statuses lists.
func RegisterGauges(reg prometheus.Registerer, statuses func() []Status) error {
	return reg.Register(&gauges{view: statuses})
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

// Describe implements prometheus.Collector.
func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- rowsDesc
	ch <- bytesDesc
	ch <- ageDesc
}

// Collect implements prometheus.Collector.
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
