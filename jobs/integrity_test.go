package jobs

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// healSystem is a worker, a scheduler whose steps the test takes itself, and
// an Integrity over the catalog, on an embedded server and file:// storage.
type healSystem struct {
	sched     *Scheduler
	cat       *catalog.Catalog
	storage   *rollup.FileStorage
	files     *Integrity
	metrics   *Metrics
	def       *rollup.Definition
	mu        sync.Mutex
	forgotten []string
}

func startHealSystem(t *testing.T, dsn string) *healSystem {
	t.Helper()
	dir := t.TempDir()
	cfg := loadConfig(t, dsn, dir, `
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
	_, js, cat := embedded(t, filepath.Join(dir, "nats"))
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
	if h.metrics, err = NewMetrics(prometheus.NewRegistry(), nil); err != nil {
		t.Fatal(err)
	}
	h.files = NewIntegrity(IntegrityOptions{Catalog: cat, View: view, Metrics: h.metrics, Name: "test", Log: testLog(t)})
	h.files.OnBroken(func(keys []string) {
		h.mu.Lock()
		h.forgotten = append(h.forgotten, keys...)
		h.mu.Unlock()
	})
	// The scheduler does not run: the test ticks and scrubs it, so that it sees
	// each state before the rebuild changes it.
	h.sched, err = NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn, Storage: st,
		Files: h.files, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, Concurrency: 1, AckWait: 3 * time.Second, Log: testLog(t),
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

func (h *healSystem) state(t *testing.T) *rollup.State { return state(t, h.cat, h.def) }

// waitActive waits for an active version other than not, and returns it.
func (h *healSystem) waitActive(t *testing.T, not string) *rollup.Version {
	t.Helper()
	var v *rollup.Version
	waitFor(t, 60*time.Second, "an active version other than "+not, func() bool {
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
	if n := testutil.ToFloat64(h.metrics.fileErrors.WithLabelValues(h.def.Name, kind)); n < 1 {
		t.Errorf("pgrollup_rollup_file_errors_total{kind=%q} = %v", kind, n)
	}
	waitFor(t, 10*time.Second, "the version's files dropped", func() bool {
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
	dsn := newDatabase(t, "heal", shop...)
	h := startHealSystem(t, dsn)
	ctx := context.Background()
	cache, err := NewCache(CacheOptions{Storage: h.storage, Integrity: h.files})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()

	v1 := h.state(t).Active
	for _, p := range v1.Partitions {
		if p.SHA256 == "" {
			t.Fatalf("partition %s has no checksum", p.File)
		}
	}
	key := v1.Partitions[0].File
	_, release, err := cache.Acquire(ctx, []string{key})
	if err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	release()

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
	_, _, err = cache.Acquire(ctx, []string{key})
	var fe *rollup.FileError
	if !errors.As(err, &fe) || fe.Kind != rollup.FileChecksum || reasonOf(fileError(ctx, err)) != executor.FallbackBrokenFile {
		t.Fatalf("the corrupted file: err = %v, fallback %q", err, reasonOf(fileError(ctx, err)))
	}
	h.checkBroken(t, v1.ID, key, rollup.FileChecksum)
	v2 := h.rebuild(t, v1.ID)
	if _, release, err := cache.Acquire(ctx, v2.Files()); err != nil {
		t.Fatalf("the rebuilt version's files: %v", err)
	} else {
		release()
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
	if _, _, err := cache.Acquire(ctx, []string{key2}); reasonOf(fileError(ctx, err)) != executor.FallbackMissingFile {
		t.Errorf("the deleted file: %v", err)
	}
	h.rebuild(t, v2.ID)
	if s := h.state(t); len(s.Broken) != 2 {
		t.Errorf("%d broken versions recorded, want 2", len(s.Broken))
	}
}

// TestCacheVerifiesDownloads: a download that storage does not have, or
// whose bytes are not those its build recorded, takes the version out of
// service and is never cached; the files of such a version are dropped, a
// file in use once its query is done.
func TestCacheVerifiesDownloads(t *testing.T) {
	ctx := context.Background()
	_, _, cat := embedded(t, t.TempDir())
	fsys, err := rollup.NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := otherStorage{fsys} // downloaded, not read in place
	content := putParquet(t, st, `SELECT i FROM range(500) r(i)`, "r/id/v1/part-1.parquet", "r/id/v1/part-2.parquet")
	sum := func(b []byte) string {
		h := rollup.Hasher()
		h.Write(b)
		return hex.EncodeToString(h.Sum(nil))
	}
	good := rollup.Partition{Bytes: int64(len(content)), SHA256: sum(content)}
	activate := func(id string, files ...string) {
		t.Helper()
		v := &rollup.Version{ID: id}
		for _, f := range files {
			p := good
			p.File = f
			v.Partitions = append(v.Partitions, p)
		}
		if _, err := cat.Update(ctx, "r", "id", func(s *rollup.State) error { s.Active, s.Status = v, rollup.StatusActive; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	activate("v1", "r/id/v1/part-1.parquet", "r/id/v1/part-2.parquet")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	view, err := cat.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	files := NewIntegrity(IntegrityOptions{Catalog: cat, View: view, Metrics: metrics, Name: "test"})
	c, err := NewCache(CacheOptions{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: st, Integrity: files})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files.OnBroken(c.Forget)
	var followed sync.WaitGroup
	followed.Go(func() { files.Follow(wctx) })
	defer func() { cancel(); followed.Wait() }()
	<-view.Ready()

	// part-1 is intact and held by a query; part-2 is replaced by other bytes
	// of the same size in storage.
	paths, release, err := c.Acquire(ctx, []string{"r/id/v1/part-1.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(content)
	bad[len(bad)/2] ^= 1
	if err := fsys.Put(ctx, "r/id/v1/part-2.parquet", bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Acquire(ctx, []string{"r/id/v1/part-2.parquet"})
	var fe *rollup.FileError
	if !errors.As(err, &fe) || fe.Kind != rollup.FileChecksum {
		t.Fatalf("a corrupted download: %v", err)
	}
	s, _ := cat.Get(ctx, "r", "id")
	if s.Active != nil || s.Status != rollup.StatusFailed || !strings.Contains(s.LastError, "r/id/v1/part-2.parquet") {
		t.Fatalf("after the corrupted download: active %v, status %s, last error %q", s.Active, s.Status, s.LastError)
	}
	if c.Cached("r/id/v1/part-2.parquet") {
		t.Error("the corrupted download was cached")
	}
	if n := testutil.ToFloat64(metrics.fileErrors.WithLabelValues("r", rollup.FileChecksum)); n != 1 {
		t.Errorf("file errors %v, want 1", n)
	}
	// The intact file of the broken version stays while its query reads it,
	// is refused to new queries, and goes when the query is done.
	waitFor(t, 10*time.Second, "the version's files doomed", func() bool {
		_, rel, err := c.Acquire(ctx, []string{"r/id/v1/part-1.parquet"})
		if err == nil {
			// Not doomed yet: let go of the file again, or it stays in use.
			rel()
		}
		return reasonOf(err) == executor.FallbackBrokenFile
	})
	if _, err := os.Stat(paths[0]); err != nil {
		t.Errorf("a file in use was deleted: %v", err)
	}
	release()
	if _, err := os.Stat(paths[0]); err == nil || c.Cached("r/id/v1/part-1.parquet") {
		t.Errorf("the broken version's file stayed after its query: %v", err)
	}

	// A version whose file storage does not have.
	activate("v2", "r/id/v2/part-1.parquet")
	waitFor(t, 5*time.Second, "the view to see v2", func() bool { return view.Get("r", "id").Active != nil })
	_, _, err = c.Acquire(ctx, []string{"r/id/v2/part-1.parquet"})
	if !errors.As(err, &fe) || fe.Kind != rollup.FileMissing || reasonOf(fileError(ctx, err)) != executor.FallbackMissingFile {
		t.Fatalf("a missing download: %v", err)
	}
	if s, _ := cat.Get(ctx, "r", "id"); s.Active != nil || s.LastBroken().Kind != rollup.FileMissing {
		t.Errorf("after the missing download: %+v", s)
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
