package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/rollup"
)

// TestCacheS3: the worker's cache over real S3 (MinIO).
func TestCacheS3(t *testing.T) {
	_, s3 := jobstest.StartMinIO(t)
	ctx := context.Background()

	t.Run("download on miss", func(t *testing.T) {
		content := jobstest.PutParquet(t, s3, `SELECT i FROM range(1000) r(i)`, "miss/a.parquet")
		c, err := New(Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		paths, release, err := c.Acquire(ctx, []string{"miss/a.parquet"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(paths[0])
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("cached file differs from the stored one (%v)", err)
		}
		release()
		if _, release, err = c.Acquire(ctx, []string{"miss/a.parquet"}); err != nil {
			t.Fatal(err)
		}
		release()
		if s := c.Stats(); s.Misses != 1 || s.Downloads != 1 || s.Hits != 1 || s.Files != 1 || s.Bytes != int64(len(content)) {
			t.Errorf("stats %+v", s)
		}
		_, _, err = c.Acquire(ctx, []string{"miss/none.parquet"})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing object: err = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("single flight", func(t *testing.T) {
		// Large enough (several MB of incompressible text) that the
		// acquirers overlap the download.
		content := jobstest.PutParquet(t, s3, `SELECT md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS s FROM range(200000) r(i)`, "flight/a.parquet")
		c, err := New(Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const n = 16
		var wg sync.WaitGroup
		paths := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var release func()
				paths[i], release, errs[i] = acquireOne(ctx, c, "flight/a.parquet")
				if errs[i] == nil {
					release()
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || paths[i] != paths[0] {
				t.Fatalf("acquirer %d: %q, %v", i, paths[i], errs[i])
			}
		}
		s := c.Stats()
		t.Logf("%d bytes; stats %+v", len(content), s)
		if s.Downloads != 1 || s.Misses != 1 || s.Waits+s.Hits != n-1 || s.Waits == 0 {
			t.Errorf("%d concurrent uses: stats %+v, want one download the others waited for", n, s)
		}
	})

	t.Run("evicts least recently used", func(t *testing.T) {
		keys := []string{"lru/a.parquet", "lru/b.parquet", "lru/c.parquet", "lru/d.parquet", "lru/e.parquet"}
		content := jobstest.PutParquet(t, s3, `SELECT i FROM range(5000) r(i)`, keys...)
		size := int64(len(content))
		dir := t.TempDir()
		c, err := New(Options{Dir: dir, MaxBytes: 3*size + size/2, Storage: s3})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		use := func(k string) func() {
			t.Helper()
			_, release, err := c.Acquire(ctx, []string{k})
			if err != nil {
				t.Fatal(err)
			}
			return release
		}
		cached := func(want ...string) {
			t.Helper()
			var got []string
			for _, k := range keys {
				if c.Cached(k) {
					got = append(got, k)
				}
				if _, err := os.Stat(filepath.Join(dir, "parquet", cacheName(k))); (err == nil) != c.Cached(k) {
					t.Errorf("%s: cached %v but file: %v", k, c.Cached(k), err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("cached %v, want %v", got, want)
			}
		}
		use("lru/a.parquet")()
		use("lru/b.parquet")()
		use("lru/c.parquet")()
		use("lru/a.parquet")() // a is now more recent than b and c
		use("lru/d.parquet")()
		cached("lru/a.parquet", "lru/c.parquet", "lru/d.parquet")
		// c is the least recently used, but in use: a goes instead.
		holdC := use("lru/c.parquet")
		use("lru/d.parquet")()
		use("lru/e.parquet")()
		cached("lru/c.parquet", "lru/d.parquet", "lru/e.parquet")
		holdC()
		if s := c.Stats(); s.Evictions != 2 || s.Bytes != 3*size {
			t.Errorf("stats %+v", s)
		}
		// Everything in use: the cache goes over its limit rather than
		// delete a file a query reads, and shrinks once it is released.
		var holds []func()
		for _, k := range keys {
			holds = append(holds, use(k))
		}
		if s := c.Stats(); s.Files != 5 {
			t.Errorf("with every file in use: stats %+v", s)
		}
		for _, h := range holds {
			h()
		}
		if s := c.Stats(); s.Bytes > 3*size+size/2 {
			t.Errorf("after release: stats %+v", s)
		}
		// A restart adopts the files left on disk.
		c2, err := New(Options{Dir: dir, MaxBytes: 3*size + size/2, Storage: s3})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		before := c2.Stats()
		for _, k := range keys {
			if c.Cached(k) {
				if _, release, err := c2.Acquire(ctx, []string{k}); err != nil {
					t.Fatal(err)
				} else {
					release()
				}
			}
		}
		if s := c2.Stats(); s.Downloads != 0 || s.Hits != 3 || before.Files != 3 {
			t.Errorf("restarted cache: before %+v, after %+v", before, s)
		}
	})

	t.Run("prefetches new versions", func(t *testing.T) {
		jobstest.PutParquet(t, s3, `SELECT i FROM range(100) r(i)`, "pre/v1/p1.parquet", "pre/v1/p2.parquet", "pre/v2/p1.parquet", "pre/v2/p2.parquet")
		_, cat := jobstest.Embedded(t, t.TempDir())
		c, err := New(Options{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		activate := func(id string, files ...string) {
			t.Helper()
			v := &rollup.Version{ID: id, BuiltAt: time.Now().UTC(), Bytes: 1000}
			for _, f := range files {
				v.Partitions = append(v.Partitions, rollup.Partition{File: f})
			}
			if _, err := cat.Update(ctx, "r", "id1", func(st *rollup.State) error { st.Active = v; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		activate("v1", "pre/v1/p1.parquet", "pre/v1/p2.parquet")
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		view, err := cat.Watch(fctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); c.Follow(fctx, view) }()
		jobstest.WaitFor(t, 10*time.Second, "the active version prefetched", func() bool {
			return c.Cached("pre/v1/p1.parquet") && c.Cached("pre/v1/p2.parquet")
		})
		activate("v2", "pre/v2/p1.parquet", "pre/v2/p2.parquet")
		jobstest.WaitFor(t, 10*time.Second, "the new version prefetched", func() bool {
			return c.Cached("pre/v2/p1.parquet") && c.Cached("pre/v2/p2.parquet")
		})
		cancel()
		<-done
		if s := c.Stats(); s.Downloads != 4 || s.Hits != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func acquireOne(ctx context.Context, c *Cache, key string) (string, func(), error) {
	paths, release, err := c.Acquire(ctx, []string{key})
	if err != nil {
		return "", nil, err
	}
	return paths[0], release, nil
}

// TestCacheRejectsTruncatedFiles: an object that is not a whole Parquet file
// is never cached.
func TestCacheRejectsTruncatedFiles(t *testing.T) {
	st, err := rollup.NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A file:// storage is read in place, so go through a storage that is
	// not one: the same directory behind another type.
	s := jobstest.OtherStorage{Storage: st}
	if err := st.Put(context.Background(), "bad.parquet", bytes.NewReader([]byte("PAR1 cut short")), -1); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Dir: t.TempDir(), Storage: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Acquire(context.Background(), []string{"bad.parquet"}); err == nil {
		t.Fatal("a truncated file was cached")
	}
	if s := c.Stats(); s.Failures != 1 || s.Files != 0 {
		t.Errorf("stats %+v", s)
	}
}
