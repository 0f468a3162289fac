package builds

import (
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/jobstest"
)

// TestWindowRolls: a rollup filtered relative to now() with a refresh key is rebuilt
// when its window's bound moves though the key did not change, and not while the
// bound stays where the active version folded it.
func TestWindowRolls(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "window_rolls", jobstest.Shop...)
	rollups := `
rollups:
  - name: last_day
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: hour
    measures: [count(*)]
    filters: ["created_at >= now() - interval '1 day'"]
    refresh: {sql: "SELECT max(id) FROM orders"}
  - name: this_decade
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: hour
    measures: [count(*)]
    filters: ["created_at >= date_trunc('year', now()) - interval '10 years'"]
    refresh: {sql: "SELECT max(id) FROM orders"}
`
	_, cat, _, targets, _ := startSystem(t, dsn, t.TempDir(), rollups)
	moving, still := targets[0].Def, targets[1].Def
	jobstest.WaitFor(t, 60*time.Second, "window rebuild", func() bool {
		return len(jobstest.Records(jobstest.State(t, cat, moving), "success")) >= 2
	})
	s := jobstest.State(t, cat, moving)
	if s.Builds[1].Reason != ReasonWindow || len(s.Active.Windows) != 1 {
		t.Fatalf("second build of last_day: %+v, windows %+v", s.Builds[1], s.Active.Windows)
	}
	// One now() per build: the bound is the build's snapshot time less a day (UTC).
	if w := s.Active.Windows[0].Value; !w.Equal(s.Active.Started.Add(-24 * time.Hour)) {
		t.Errorf("the rebuilt window starts at %s, the build's now() was %s", w, s.Active.Started)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(jobstest.Records(jobstest.State(t, cat, still), "")); n != 1 {
		t.Errorf("this_decade was built %d times; its window did not move", n)
	}
}
