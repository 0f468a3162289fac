package builds

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// startSystem runs a scheduler and an in-process worker on an embedded server in dir.
func startSystem(t *testing.T, dsn, dir, rollups string) (*Scheduler, *catalog.Catalog, *rollup.FileStorage, []Target, func()) {
	t.Helper()
	cfg := jobstest.LoadConfig(t, dsn, dir, rollups)
	targets, err := Targets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, cat := jobstest.Embedded(t, filepath.Join(dir, "nats"))
	fsDir, _ := cfg.Storage.LocalDir()
	st, err := rollup.NewFileStorage(fsDir)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn, Storage: st,
		Tick: 100 * time.Millisecond, RefreshKeyInterval: 200 * time.Millisecond, GCInterval: time.Hour, GCGrace: time.Millisecond, Log: jobstest.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, Concurrency: 2, AckWait: 3 * time.Second, Log: jobstest.Log(t),
		Builder: &rollup.Builder{DSN: dsn, Storage: st, TempDir: t.TempDir()}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = w.Run(ctx); done <- struct{}{} }()
	go func() { _ = sched.Run(ctx); done <- struct{}{} }()
	stop := func() { cancel(); <-done; <-done }
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return sched, cat, st, targets, stop
}

// TestScheduling: start-up builds, a refresh key that triggers only when its value
// changes, incremental refresh of the window's partitions, manual refresh, garbage
// collection, and a restart that keeps the catalog without rebuilding.
func TestScheduling(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "sched", jobstest.Shop...)
	dir := t.TempDir()
	rollups := `
rollups:
  - name: by_key
    table: public.orders
    dimensions: [status]
    measures: [sum(amount), count(*)]
    refresh: {sql: "SELECT max(id) FROM orders"}
  - name: incremental
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: hour
    measures: [count(*)]
    partition_granularity: day
    refresh: {every: 3s, incremental: true, update_window: 1 hour}
`
	sched, cat, st, targets, stop := startSystem(t, dsn, dir, rollups)
	byKey, inc := targets[0].Def, targets[1].Def
	ctx := context.Background()

	jobstest.WaitFor(t, 60*time.Second, "start-up builds", func() bool {
		a, b := jobstest.State(t, cat, byKey), jobstest.State(t, cat, inc)
		return a != nil && a.Active != nil && b != nil && b.Active != nil
	})
	if s := jobstest.State(t, cat, byKey); len(jobstest.Records(s, "")) != 1 || s.Builds[0].Reason != ReasonStartup || s.Status != rollup.StatusActive {
		t.Fatalf("by_key after start-up: status %s, builds %+v", s.Status, s.Builds)
	}

	// A change that leaves the key alone triggers nothing.
	jobstest.SQLExec(t, dsn, `UPDATE orders SET amount = amount + 1 WHERE id = 1`)
	time.Sleep(1500 * time.Millisecond)
	if n := len(jobstest.Records(jobstest.State(t, cat, byKey), "")); n != 1 {
		t.Fatalf("%d builds after a change the refresh key does not see, want 1", n)
	}
	// A new key value triggers exactly one build.
	jobstest.SQLExec(t, dsn, `INSERT INTO orders VALUES (3001, 'new', 5, now())`)
	jobstest.WaitFor(t, 30*time.Second, "refresh key build", func() bool { return len(jobstest.Records(jobstest.State(t, cat, byKey), "success")) == 2 })
	time.Sleep(1500 * time.Millisecond)
	s := jobstest.State(t, cat, byKey)
	if n := len(jobstest.Records(s, "")); n != 2 || s.Builds[1].Reason != ReasonRefreshKey || s.Active.Watermark != "3001" {
		t.Fatalf("after the key changed: %d builds %+v, watermark %q", n, s.Builds, s.Active.Watermark)
	}

	// Incremental: the scheduled build rebuilds only the partitions in the last hour.
	jobstest.WaitFor(t, 30*time.Second, "incremental build", func() bool { return len(jobstest.Records(jobstest.State(t, cat, inc), "success")) >= 2 })
	is := jobstest.State(t, cat, inc)
	full, next := is.Builds[0], is.Builds[1]
	if full.Incremental || len(full.Partitions) < 3 {
		t.Errorf("start-up build: incremental %v, %d partitions", full.Incremental, len(full.Partitions))
	}
	if !next.Incremental || next.Reason != ReasonEvery || len(next.Partitions) < 1 || len(next.Partitions) > 2 {
		t.Errorf("scheduled build: reason %s, incremental %v, partitions %v", next.Reason, next.Incremental, next.Partitions)
	}
	// The incremental version carries every partition of the full one
	// forward and adds only those it built: a run that crosses midnight
	// (UTC) builds a partition for the new day's rows.
	want := map[time.Time]bool{}
	for _, start := range append(append([]time.Time(nil), full.Partitions...), next.Partitions...) {
		want[start.UTC()] = true
	}
	got := map[time.Time]bool{}
	for _, p := range is.Active.Partitions {
		got[p.Start.UTC()] = true
	}
	if len(got) != len(want) {
		t.Errorf("incremental version has partitions %v, want those of the full build and the incremental one %v", got, want)
	}
	for start := range want {
		if !got[start] {
			t.Errorf("incremental version lacks the partition starting %s", start)
		}
	}

	// Manual refresh.
	job, err := sched.Refresh(ctx, "by_key")
	if err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "manual build", func() bool {
		s := jobstest.State(t, cat, byKey)
		return !s.Active.Started.Before(job.Due)
	})
	if s := jobstest.State(t, cat, byKey); s.Builds[len(s.Builds)-1].Reason != ReasonManual {
		t.Errorf("last build: %+v", s.Builds[len(s.Builds)-1])
	}

	// Garbage collection keeps every active file and removes replaced ones.
	stop()
	sched.CollectGarbage(ctx) // first sight of unreferenced files
	time.Sleep(5 * time.Millisecond)
	deleted, err := sched.CollectGarbage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) == 0 {
		t.Error("no replaced file was collected")
	}
	for _, d := range []*rollup.Definition{byKey, inc} {
		for _, f := range jobstest.State(t, cat, d).Active.Files() {
			if _, err := os.Stat(filepath.Join(st.Dir(), f)); err != nil {
				t.Errorf("active file collected: %v", err)
			}
		}
	}

	// Restart on the same data directory: the catalog is kept and nothing is rebuilt
	// (the incremental rollup's 3s schedule is not due within the first second).
	before := len(jobstest.Records(jobstest.State(t, cat, byKey), ""))
	_, cat2, _, _, stop2 := startSystem(t, dsn, dir, rollups)
	time.Sleep(time.Second)
	s2 := jobstest.State(t, cat2, byKey)
	if s2 == nil || s2.Active == nil || len(jobstest.Records(s2, "")) != before {
		t.Fatalf("after restart: %+v", s2)
	}
	stop2()
}

// TestTickFor checks schedules often enough for the shortest refresh.every.
func TestTickFor(t *testing.T) {
	every := func(d time.Duration) Target { return Target{Refresh: config.Refresh{Every: config.Duration(d)}} }
	for _, tc := range []struct {
		name    string
		targets []Target
		want    time.Duration
	}{
		{"none", nil, defaultTick},
		{"cron only", []Target{{Refresh: config.Refresh{Cron: "@hourly"}}}, defaultTick},
		{"hourly", []Target{every(time.Hour)}, defaultTick},
		{"every 15s", []Target{every(time.Hour), every(15 * time.Second)}, 3 * time.Second},
		{"every 5s", []Target{every(5 * time.Second), every(time.Minute)}, time.Second},
		{"every 100ms", []Target{every(100 * time.Millisecond)}, minTick},
	} {
		if got := tickFor(tc.targets); got != tc.want {
			t.Errorf("%s: tick %s, want %s", tc.name, got, tc.want)
		}
	}
}
