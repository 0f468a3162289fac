package builds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/jobs/local"
	"github.com/pgrollup/pgrollup/rollup"
)

// healSystem is a worker, a scheduler whose steps the test takes itself, and
// an integrity checker over the catalog, on an embedded server and file://
// storage.
type healSystem struct {
	sched     *Scheduler
	cat       *catalog.Catalog
	storage   *rollup.FileStorage
	files     *integrity.Checker
	reg       *prometheus.Registry
	def       *rollup.Definition
	mu        sync.Mutex
	forgotten []string
}

func startHealSystem(t *testing.T, dsn string) *healSystem {
	t.Helper()
	dir := t.TempDir()
	cfg := jobstest.LoadConfig(t, dsn, dir, `
rollups:
  - name: heal
    table: public.orders
    dimensions: [status]
    measures: [sum(amount), count(*)]
`)
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
	ctx, cancel := context.WithCancel(context.Background())
	view, err := cat.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &healSystem{cat: cat, storage: st, def: targets[0].Def}
	h.reg = prometheus.NewRegistry()
	metrics, err := integrity.NewMetrics(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.files = integrity.New(integrity.Options{Catalog: cat, View: view, Metrics: metrics, Name: "test", Log: jobstest.Log(t)})
	h.files.OnBroken(func(keys []string) {
		h.mu.Lock()
		h.forgotten = append(h.forgotten, keys...)
		h.mu.Unlock()
	})
	// The scheduler does not run: the test ticks and scrubs it, so that it sees
	// each state before the rebuild changes it.
	h.sched, err = NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn, Storage: st,
		Files: h.files, Log: jobstest.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, Concurrency: 1, AckWait: 3 * time.Second, Log: jobstest.Log(t),
		Builder: &rollup.Builder{DSN: dsn, Storage: st, TempDir: t.TempDir()}})
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	wg.Go(func() { h.files.Follow(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := h.sched.Startup(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitActive(t, "")
	return h
}

func (h *healSystem) state(t *testing.T) *rollup.State { return jobstest.State(t, h.cat, h.def) }

// waitActive waits for an active version other than not, and returns it.
func (h *healSystem) waitActive(t *testing.T, not string) *rollup.Version {
	t.Helper()
	var v *rollup.Version
	jobstest.WaitFor(t, 60*time.Second, "an active version other than "+not, func() bool {
		s := h.state(t)
		if s != nil && s.Active != nil && s.Active.ID != not && s.Status == rollup.StatusActive {
			v = s.Active
			return true
		}
		return false
	})
	return v
}

// checkBroken checks that the version is out of service for file, of kind.
func (h *healSystem) checkBroken(t *testing.T, version, file, kind string) {
	t.Helper()
	s := h.state(t)
	b := s.LastBroken()
	if s.Active != nil || s.Status != rollup.StatusFailed || !strings.Contains(s.LastError, file) || b == nil ||
		b.Version != version || b.File != file || b.Kind != kind {
		t.Fatalf("after the broken file: active %v, status %s, last error %q, broken %+v", s.Active, s.Status, s.LastError, b)
	}
	if n := jobstest.Counter(t, h.reg, "pgrollup_rollup_file_errors_total", "rollup", h.def.Name, "kind", kind); n < 1 {
		t.Errorf("pgrollup_rollup_file_errors_total{kind=%q} = %v", kind, n)
	}
	jobstest.WaitFor(t, 10*time.Second, "the version's files dropped", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.forgotten, file)
	})
}

// rebuild ticks the scheduler and waits for the rebuilt version.
func (h *healSystem) rebuild(t *testing.T, broken string) *rollup.Version {
	t.Helper()
	h.sched.Tick(context.Background())
	if s := h.state(t); s.QueuedReason != ReasonBrokenFile && s.Building == nil && s.Active == nil {
		t.Fatalf("no rebuild queued: %+v", s)
	}
	v := h.waitActive(t, broken)
	s := h.state(t)
	last := s.Builds[len(s.Builds)-1]
	if s.LastError != "" || last.Reason != ReasonBrokenFile || last.Incremental {
		t.Errorf("after the rebuild: last error %q, last build %+v", s.LastError, last)
	}
	return v
}

// TestHealBrokenFiles: a file of the active version corrupted in place (same
// size, other bytes) is found by its next use, and a deleted one by the
// scrub; each takes the version out of service with the file named, and the
// rollup is rebuilt in full and active again.
func TestHealBrokenFiles(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "heal", jobstest.Shop...)
	h := startHealSystem(t, dsn)
	ctx := context.Background()
	c, err := cache.New(cache.Options{Storage: h.storage, Integrity: h.files})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db, err := duck.Open(64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// use reads the files of keys as the single binary does: in place, each
	// checked first.
	exec := local.NewInPlace(c, db, h.storage.Dir())
	use := func(keys ...string) error {
		paths := make([]string, len(keys))
		for i, k := range keys {
			paths[i] = filepath.Join(h.storage.Dir(), k)
		}
		rows, err := exec.Query(ctx, jobstest.Query(`SELECT count(*) FROM %s`, paths, "count"))
		if err != nil {
			return err
		}
		_, err = jobstest.Collect(rows)
		return err
	}

	v1 := h.state(t).Active
	for _, p := range v1.Partitions {
		if p.SHA256 == "" {
			t.Fatalf("partition %s has no checksum", p.File)
		}
	}
	key := v1.Partitions[0].File
	if err := use(key); err != nil {
		t.Fatalf("the intact file: %v", err)
	}

	// Same size, flipped bytes.
	path := filepath.Join(h.storage.Dir(), key)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < len(b)/3+8; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = use(key)
	var fe *rollup.FileError
	if !errors.As(err, &fe) || fe.Kind != rollup.FileChecksum || jobstest.ReasonOf(err) != executor.FallbackBrokenFile {
		t.Fatalf("the corrupted file: err = %v, fallback %q", err, jobstest.ReasonOf(err))
	}
	h.checkBroken(t, v1.ID, key, rollup.FileChecksum)
	v2 := h.rebuild(t, v1.ID)
	if err := use(v2.Files()...); err != nil {
		t.Fatalf("the rebuilt version's files: %v", err)
	}

	// Deleted: the scrub finds it without any query.
	key2 := v2.Partitions[0].File
	if err := os.Remove(filepath.Join(h.storage.Dir(), key2)); err != nil {
		t.Fatal(err)
	}
	if err := h.sched.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	h.checkBroken(t, v2.ID, key2, rollup.FileMissing)
	if err := use(key2); jobstest.ReasonOf(err) != executor.FallbackMissingFile {
		t.Errorf("the deleted file: %v", err)
	}
	h.rebuild(t, v2.ID)
	if s := h.state(t); len(s.Broken) != 2 {
		t.Errorf("%d broken versions recorded, want 2", len(s.Broken))
	}
}

// TestBrokenBackoff: versions that keep breaking are rebuilt ever later.
func TestBrokenBackoff(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var broken []rollup.BrokenVersion
	want := []time.Duration{0, 0, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		now := at.Add(time.Duration(i) * time.Minute)
		broken = append(broken, rollup.BrokenVersion{At: now})
		if got := brokenBackoff(broken, now); got != w {
			t.Errorf("break %d within the hour: backoff %s, want %s", i+1, got, w)
		}
	}
	if got := brokenBackoff(broken, at.Add(3*time.Hour)); got != 0 {
		t.Errorf("hours later: %s", got)
	}
}
