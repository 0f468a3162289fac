package jobs

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

	"github.com/pgrollup/pgrollup/internal/minio"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// startMinIO starts a MinIO server for the test and returns S3 storage in
// its bucket.
func startMinIO(t testing.TB) (*minio.Server, *rollup.S3Storage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv, err := minio.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("needs MinIO: %v", err)
	}
	t.Cleanup(srv.Stop)
	st, err := rollup.NewS3Storage(context.Background(), rollup.S3Options{Bucket: srv.Bucket, Prefix: "rollups", Endpoint: srv.Endpoint,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// putParquet writes a Parquet file of the query's rows and stores it under
// each key; it returns the file's bytes.
func putParquet(t testing.TB, st rollup.Storage, query string, keys ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.parquet")
	writeParquet(t, p, query)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := st.Put(context.Background(), k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestCacheS3: the worker's cache over real S3 (MinIO).
func TestCacheS3(t *testing.T) {
	_, s3 := startMinIO(t)
	ctx := context.Background()

	t.Run("download on miss", func(t *testing.T) {
		content := putParquet(t, s3, `SELECT i FROM range(1000) r(i)`, "miss/a.parquet")
		c, err := NewCache(CacheOptions{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
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
		content := putParquet(t, s3, `SELECT md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS s FROM range(200000) r(i)`, "flight/a.parquet")
		c, err := NewCache(CacheOptions{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
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
		content := putParquet(t, s3, `SELECT i FROM range(5000) r(i)`, keys...)
		size := int64(len(content))
		dir := t.TempDir()
		c, err := NewCache(CacheOptions{Dir: dir, MaxBytes: 3*size + size/2, Storage: s3})
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
		c2, err := NewCache(CacheOptions{Dir: dir, MaxBytes: 3*size + size/2, Storage: s3})
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
		putParquet(t, s3, `SELECT i FROM range(100) r(i)`, "pre/v1/p1.parquet", "pre/v1/p2.parquet", "pre/v2/p1.parquet", "pre/v2/p2.parquet")
		_, _, cat := embedded(t, t.TempDir())
		c, err := NewCache(CacheOptions{Dir: t.TempDir(), MaxBytes: 1 << 30, Storage: s3})
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
		waitFor(t, 10*time.Second, "the active version prefetched", func() bool {
			return c.Cached("pre/v1/p1.parquet") && c.Cached("pre/v1/p2.parquet")
		})
		activate("v2", "pre/v2/p1.parquet", "pre/v2/p2.parquet")
		waitFor(t, 10*time.Second, "the new version prefetched", func() bool {
			return c.Cached("pre/v2/p1.parquet") && c.Cached("pre/v2/p2.parquet")
		})
		cancel()
		<-done
		if s := c.Stats(); s.Downloads != 4 || s.Hits != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestLocalExecutorS3: the single binary's executor over S3 answers from the
// cache, holds the files and a concurrency slot while rows are open, and
// reports a missing file as a fallback.
func TestLocalExecutorS3(t *testing.T) {
	_, s3 := startMinIO(t)
	ctx := context.Background()
	putParquet(t, s3, `SELECT i % 5 AS d0, i AS m FROM range(1000) r(i)`, "le/v1/p.parquet")
	c, err := NewCache(CacheOptions{Dir: t.TempDir(), MaxBytes: 1, Storage: s3}) // evicts whatever is not in use
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	duck, err := duck.Open(1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	ex := NewLocalExecutor(c, duck, 1)
	d := decisionFor(`SELECT d0, sum(m) FROM %s GROUP BY d0 ORDER BY d0`, []string{"le/v1/p.parquet"}, "d0", "sum")
	rows, err := ex.Query(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cached("le/v1/p.parquet") {
		t.Error("the file of open rows was evicted")
	}
	// The only slot is taken until the rows are closed.
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = ex.Query(tctx, d)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second query with the slot taken: %v", err)
	}
	got, err := collect(rows)
	if err != nil || len(got) != 5 || fmt.Sprint(got[0]) != "[0 99500]" {
		t.Fatalf("%v, %v", got, err)
	}
	if c.Cached("le/v1/p.parquet") {
		t.Error("released file beyond cache_max_bytes was kept")
	}
	if _, err := ex.Query(ctx, decisionFor(`SELECT 1 FROM %s`, []string{"le/v1/none.parquet"}, "x")); executor.FallbackReason(err, "") != executor.FallbackMissingFile {
		t.Errorf("missing file: %v", err)
	}
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
	s := otherStorage{st}
	if err := st.Put(context.Background(), "bad.parquet", bytes.NewReader([]byte("PAR1 cut short")), -1); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(CacheOptions{Dir: t.TempDir(), Storage: s})
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

// otherStorage hides the file storage's type.
type otherStorage struct{ rollup.Storage }
