package proxy

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestTallyMatchesHistogram feeds the same durations to a tally and to a
// Prometheus histogram of the same buckets, and compares what each exposes:
// the bounds, and either side of them, fall in the same buckets.
func TestTallyMatchesHistogram(t *testing.T) {
	var durations []time.Duration
	for _, b := range queryDurationBounds {
		durations = append(durations, b-1, b, b+1)
	}
	durations = append(durations, 0, 37*time.Microsecond, 3*time.Minute)

	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: queryDurationBuckets[:]})
	m := newStatementMetrics()
	for _, d := range durations {
		h.Observe(d.Seconds())
		m.observe(RouteRollup, d)
	}
	var want dto.Metric
	if err := h.Write(&want); err != nil {
		t.Fatal(err)
	}
	got := collected(t, m, RouteRollup)
	wh, gh := want.GetHistogram(), got.GetHistogram()
	if gh.GetSampleCount() != wh.GetSampleCount() || math.Abs(gh.GetSampleSum()-wh.GetSampleSum()) > 1e-9 {
		t.Fatalf("count %d, sum %v; want %d, %v", gh.GetSampleCount(), gh.GetSampleSum(), wh.GetSampleCount(), wh.GetSampleSum())
	}
	if len(gh.GetBucket()) != len(wh.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(gh.GetBucket()), len(wh.GetBucket()))
	}
	for i, b := range wh.GetBucket() {
		if g := gh.GetBucket()[i]; g.GetUpperBound() != b.GetUpperBound() || g.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d, want le=%v: %d", g.GetUpperBound(), g.GetCumulativeCount(), b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	// Counted without a duration: the queries metric only.
	m.count(RouteError)
	if e := collected(t, m, RouteError); e.GetHistogram().GetSampleCount() != 0 {
		t.Error("an untimed statement was timed")
	}
}

// collected returns the histogram m exposes for route r, with the counter
// of the same route checked against its sample count plus untimed ones.
func collected(t *testing.T, m *StatementMetrics, r Route) *dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric, 2*len(statementRoutes))
	m.Collect(ch)
	close(ch)
	var hist *dto.Metric
	for metric := range ch {
		var d dto.Metric
		if err := metric.Write(&d); err != nil {
			t.Fatal(err)
		}
		if d.GetLabel()[0].GetValue() != string(r) {
			continue
		}
		if d.Histogram != nil {
			hist = &d
		}
	}
	if hist == nil {
		t.Fatalf("no histogram for route %s", r)
	}
	return hist
}

// TestRelayedStatementsGathered checks that the statements a session has
// relayed count when the metrics are scraped while it is open, and once
// only after it ends, when its tally joins the server's.
func TestRelayedStatementsGathered(t *testing.T) {
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, beforeTimed := p.queries(t, RoutePassthrough), p.timed(t, RoutePassthrough)
	conn := connect(t, p.dsn(trustUser, ""))
	for i := range 5 {
		if _, err := conn.Exec(ctx, "SELECT 1 AS a"); err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	if got := p.queries(t, RoutePassthrough) - before; got != 5 {
		t.Fatalf("session open: %v statements counted, want 5", got)
	}
	if got := p.queries(t, RoutePassthrough) - before; got != 5 {
		t.Fatalf("scraped again: %v statements counted, want 5", got)
	}
	// Three more, which no scrape sees before the session ends.
	for i := range 3 {
		if _, err := conn.Exec(ctx, "SELECT 2 AS b"); err != nil {
			t.Fatalf("statement %d: %v", 5+i, err)
		}
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to end", func() bool { return sessions(p) == 0 })
	if got, timed := p.queries(t, RoutePassthrough)-before, p.timed(t, RoutePassthrough)-beforeTimed; got != 8 || timed != 8 {
		t.Fatalf("session ended: %v statements counted, %d timed; want 8 and 8", got, timed)
	}
}
