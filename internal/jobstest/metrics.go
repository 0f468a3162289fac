package jobstest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter is the value of the counter name with exactly the labels given as
// name, value pairs, 0 when there is no such series.
func Counter(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel())*2 != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if !slices.ContainsFunc(pairs(labels), func(p [2]string) bool { return p == [2]string{l.GetName(), l.GetValue()} }) {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func pairs(labels []string) [][2]string {
	out := make([][2]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		out = append(out, [2]string{labels[i], labels[i+1]})
	}
	return out
}
