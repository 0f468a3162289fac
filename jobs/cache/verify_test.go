package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/rollup"
)

// TestCacheVerifiesDownloads: a download that storage does not have, or
// whose bytes are not those its build recorded, takes the version out of
// service and is never cached; the files of such a version are dropped, a
// file in use once its query is done.
func TestCacheVerifiesDownloads(t *testing.T) {
	ctx := context.Background()
	_, cat := jobstest.Embedded(t, t.TempDir())
	fsys, err := rollup.NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := jobstest.OtherStorage{Storage: fsys} // downloaded, not read in place
	content := jobstest.PutParquet(t, st, `SELECT i FROM range(500) r(i)`, "r/id/v1/part-1.parquet", "r/id/v1/part-2.parquet")
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
	reg := prometheus.NewRegistry()
	metrics, err := integrity.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	files := integrity.New(integrity.Options{Catalog: cat, View: view, Metrics: metrics, Name: "test"})
	c, err := New(Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: st, Integrity: files})
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
	if n := jobstest.Counter(t, reg, "pgrollup_rollup_file_errors_total", "rollup", "r", "kind", rollup.FileChecksum); n != 1 {
		t.Errorf("file errors %v, want 1", n)
	}
	// The intact file of the broken version stays while its query reads it,
	// is refused to new queries, and goes when the query is done.
	jobstest.WaitFor(t, 10*time.Second, "the version's files doomed", func() bool {
		_, rel, err := c.Acquire(ctx, []string{"r/id/v1/part-1.parquet"})
		if err == nil {
			// Not doomed yet: let go of the file again, or it stays in use.
			rel()
		}
		return jobstest.ReasonOf(err) == executor.FallbackBrokenFile
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
	jobstest.WaitFor(t, 5*time.Second, "the view to see v2", func() bool { return view.Get("r", "id").Active != nil })
	_, _, err = c.Acquire(ctx, []string{"r/id/v2/part-1.parquet"})
	// What the executors fall back on as missing_file (local.fileError).
	if !errors.As(err, &fe) || fe.Kind != rollup.FileMissing || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing download: %v", err)
	}
	if s, _ := cat.Get(ctx, "r", "id"); s.Active != nil || s.LastBroken().Kind != rollup.FileMissing {
		t.Errorf("after the missing download: %+v", s)
	}
}
