package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgrollup/pgrollup/jobs/builds"
	"github.com/pgrollup/pgrollup/jobs/integrity"
)

// NewRegistry is a process's Prometheus registry, with the Go runtime's and
// the process's collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metrics are the job system's metrics that both binaries export.
type metrics struct {
	builds *builds.Metrics
	files  *integrity.Metrics
}

// newMetrics registers the build metrics and the count of broken files on reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	b, err := builds.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	f, err := integrity.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metrics{builds: b, files: f}, nil
}
