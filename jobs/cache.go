package jobs

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// Dir is worker.cache_dir. The cache keeps its files in Dir/parquet,
	// because builds put their temporary files in Dir itself.
	Dir string
	// MaxBytes is worker.cache_max_bytes: beyond it the least recently used
	// files not in use are deleted.
	MaxBytes int64
	// Storage is where the rollup files live. A file:// storage is read in
	// place (it is local or shared disk already); anything else is
	// downloaded into the cache.
	Storage rollup.Storage
	// DownloadTimeout bounds one download; 0 means 10 minutes.
	DownloadTimeout time.Duration
	// Prefetchers is how many files Follow downloads at once; 0 means 2.
	Prefetchers int
	// Integrity checks each download, and each use of a file read in place,
	// against what its build recorded, and reports broken files; nil only
	// checks that a download is a whole Parquet file.
	Integrity *Integrity
	Log       *slog.Logger
}

// Cache keeps local copies of rollup files for DuckDB, which reads Parquet
// only from local disk here (no httpfs extension, DESIGN.md §9).
//
// A file is downloaded on its first use, once however many queries want it
// at the same time; a file in use by a query is never deleted; beyond
// MaxBytes the least recently used files go. Storage keys name immutable
// objects (every build writes a new version directory), so a cached file
// never goes stale; files left by a previous run are adopted at start. A
// download is checked against the size and SHA-256 its build recorded, and
// the files of a version taken out of service are dropped (Forget).
//
// The LRU list is hand-written on container/list rather than taken from
// golang-lru because eviction here is by bytes and must skip files in use,
// which count-bounded LRU caches do not offer.
type Cache struct {
	o     CacheOptions
	dir   string
	local *rollup.FileStorage // non-nil: files are read in place

	// life ends downloads when the cache closes; a download is not tied
	// to the query that started it, since the next query wants it too.
	life  context.Context
	stop  context.CancelFunc
	tasks sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*cacheEntry // by file name
	lru     list.List              // ready entries, most recently used first
	bytes   int64
	stats   CacheStats
}

// CacheStats counts what the cache did.
type CacheStats struct {
	Hits      int64 // uses of a file already cached
	Misses    int64 // uses that started a download
	Waits     int64 // uses that joined a download in progress
	Downloads int64 // completed downloads
	Failures  int64 // failed downloads
	Evictions int64
	Files     int64 // files cached now
	Bytes     int64 // their size
}

type cacheEntry struct {
	key   string // storage key; "" for a file adopted at start
	name  string
	path  string
	size  int64
	pins  int           // queries using the file
	ready chan struct{} // closed when the download ended; err says how
	err   error
	elem  *list.Element // in lru once ready
	// doomed: its version was taken out of service while the file was in use
	// or on its way; it goes as soon as it is neither.
	doomed bool
}

// NewCache opens the cache, adopting the files a previous run left.
func NewCache(o CacheOptions) (*Cache, error) {
	if o.Storage == nil {
		return nil, errors.New("cache: no storage")
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = 10 * time.Minute
	}
	if o.Prefetchers <= 0 {
		o.Prefetchers = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{o: o, entries: map[string]*cacheEntry{}}
	c.life, c.stop = context.WithCancel(context.Background())
	if fsys, ok := o.Storage.(*rollup.FileStorage); ok {
		c.local = fsys
		return c, nil
	}
	if o.Dir == "" {
		return nil, errors.New("cache: no directory (worker.cache_dir)")
	}
	c.dir = filepath.Join(o.Dir, "parquet")
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := c.adopt(); err != nil {
		return nil, err
	}
	return c, nil
}

// adopt indexes the files of a previous run, oldest modification last in
// the LRU order, and removes partial downloads.
func (c *Cache) adopt() error {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	type found struct {
		e   *cacheEntry
		mod time.Time
	}
	var files []found
	for _, de := range des {
		p := filepath.Join(c.dir, de.Name())
		if strings.HasPrefix(de.Name(), ".download-") {
			_ = os.Remove(p)
			continue
		}
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() || !isCacheName(de.Name()) {
			continue
		}
		files = append(files, found{&cacheEntry{name: de.Name(), path: p, size: info.Size(), ready: closedChan}, info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range files {
		c.entries[f.e.name] = f.e
		f.e.elem = c.lru.PushBack(f.e)
		c.bytes += f.e.size
	}
	c.evictLocked()
	return nil
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// cacheName is the file name of a key: a hash, so that no key can name a
// path outside the cache or put odd characters into DuckDB's SQL.
func cacheName(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:20]) + ".parquet"
}

func isCacheName(name string) bool {
	hexPart, ok := strings.CutSuffix(name, ".parquet")
	if !ok || len(hexPart) != 40 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// Acquire returns a local path for each key, downloading the files not
// cached yet, and keeps them from eviction until release is called (once,
// when the query that reads them is done). On error nothing stays acquired.
// A missing object yields an error wrapping fs.ErrNotExist.
func (c *Cache) Acquire(ctx context.Context, keys []string) (paths []string, release func(), err error) {
	if c.local != nil {
		paths, err = c.inPlace(ctx, keys)
		return paths, func() {}, err
	}
	held := make([]*cacheEntry, 0, len(keys))
	paths = make([]string, len(keys))
	for i, k := range keys {
		e, err := c.pin(ctx, k)
		if err != nil {
			c.unpin(held...)
			return nil, nil, err
		}
		held = append(held, e)
		paths[i] = e.path
	}
	return paths, sync.OnceFunc(func() { c.unpin(held...) }), nil
}

// inPlace maps keys to the files of a file:// storage.
func (c *Cache) inPlace(ctx context.Context, keys []string) ([]string, error) {
	paths := make([]string, len(keys))
	for i, k := range keys {
		if k == "" || path.Clean("/"+k) != "/"+k {
			return nil, fmt.Errorf("invalid storage key %q", k)
		}
		p := filepath.Join(c.local.Dir(), filepath.FromSlash(k))
		if c.o.Integrity != nil {
			if err := c.o.Integrity.CheckLocal(ctx, k, p); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", c.local, k, err)
			}
		} else if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", c.local, k, err)
		}
		paths[i] = p
	}
	return paths, nil
}

// pin takes a reference to key's entry, starting its download if needed,
// and waits until the file is there.
func (c *Cache) pin(ctx context.Context, key string) (*cacheEntry, error) {
	name := cacheName(key)
	c.mu.Lock()
	e := c.entries[name]
	switch {
	case e != nil && e.doomed:
		c.mu.Unlock()
		return nil, executor.Fallback(executor.FallbackBrokenFile, fmt.Errorf("%s: its version was taken out of service", key))
	case e == nil:
		e = &cacheEntry{key: key, name: name, path: filepath.Join(c.dir, name), ready: make(chan struct{})}
		c.entries[name] = e
		c.stats.Misses++
		c.tasks.Add(1)
		go c.download(e)
	case e.elem != nil:
		c.stats.Hits++
		c.lru.MoveToFront(e.elem)
	default:
		c.stats.Waits++
	}
	e.pins++
	c.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		c.unpin(e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		c.unpin(e)
		return nil, e.err
	}
	return e, nil
}

// unpin drops references; files no longer in use may now be evicted.
func (c *Cache) unpin(es ...*cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		e.pins--
		if e.pins == 0 && e.doomed && e.elem != nil {
			c.removeLocked(e)
		}
	}
	c.evictLocked()
}

// download fetches e's object into the cache.
func (c *Cache) download(e *cacheEntry) {
	defer c.tasks.Done()
	ctx, cancel := context.WithTimeout(c.life, c.o.DownloadTimeout)
	defer cancel()
	started := time.Now()
	size, err := c.fetch(ctx, e.key, e.path)
	var fe *rollup.FileError
	if errors.As(err, &fe) {
		// Before the waiters learn of the failure: a statement that falls back
		// because of the file finds its version out of service already.
		c.o.Integrity.Report(ctx, fe)
	}
	c.mu.Lock()
	if err == nil && e.doomed {
		// Its version was taken out of service during the download.
		_ = os.Remove(e.path)
		err = fmt.Errorf("download %s: its version was taken out of service", e.key)
	}
	if err != nil {
		// Forget the entry so that the next use tries again.
		delete(c.entries, e.name)
		e.err = err
		c.stats.Failures++
	} else {
		e.size = size
		e.elem = c.lru.PushFront(e)
		c.bytes += size
		c.stats.Downloads++
		c.evictLocked()
	}
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		c.o.Log.Warn("cache download failed", "key", e.key, "err", err)
	} else {
		c.o.Log.Debug("cache download", "key", e.key, "bytes", size, "elapsed", time.Since(started).Round(time.Millisecond))
	}
}

// parquetMagic ends every complete Parquet file.
var parquetMagic = []byte("PAR1")

// fetch copies an object to path through a temporary file, so that a file
// at path is always whole, and checks it against what its build recorded.
// An object that storage does not have, or whose bytes are not the recorded
// ones, is a *rollup.FileError; a failure to reach storage is not.
func (c *Cache) fetch(ctx context.Context, key, dst string) (int64, error) {
	want, known := c.o.Integrity.Expect(ctx, key)
	r, err := c.o.Storage.Open(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, &rollup.FileError{Key: key, Kind: rollup.FileMissing, Err: err}
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	f, err := os.CreateTemp(c.dir, ".download-*")
	if err != nil {
		return 0, fmt.Errorf("cache: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // finds nothing after the rename
	h := rollup.Hasher()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil && known {
		err = want.Check(n, hex.EncodeToString(h.Sum(nil)))
	}
	if err == nil && (!known || want.SHA256 == "") {
		// Nothing recorded to compare with: at least the whole file must be there.
		if err = checkParquetTail(f, n); err != nil {
			err = &rollup.FileError{Key: key, Kind: rollup.FileRead, Err: err}
		}
	}
	if err == nil {
		// A crash must not leave a short file under the final name.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return 0, fmt.Errorf("download %s/%s: %w", c.o.Storage, key, err)
	}
	return n, nil
}

// checkParquetTail rejects a download that is not a whole Parquet file (a
// cut connection that the storage client did not report).
func checkParquetTail(f *os.File, size int64) error {
	if size < 8 {
		return fmt.Errorf("%d bytes is not a Parquet file", size)
	}
	tail := make([]byte, 4)
	if _, err := f.ReadAt(tail, size-4); err != nil {
		return err
	}
	if !bytes.Equal(tail, parquetMagic) {
		return errors.New("not a whole Parquet file (no PAR1 at its end)")
	}
	return nil
}

// evictLocked deletes least recently used files not in use until the cache
// fits MaxBytes. Files are removed under the lock so that a new download of
// the same key can never be deleted by a late removal of the old file.
func (c *Cache) evictLocked() {
	if c.o.MaxBytes <= 0 {
		return
	}
	for el := c.lru.Back(); el != nil && c.bytes > c.o.MaxBytes; {
		e := el.Value.(*cacheEntry)
		prev := el.Prev()
		if e.pins == 0 {
			c.removeLocked(e)
			c.stats.Evictions++
		}
		el = prev
	}
}

// removeLocked deletes a ready entry's file and forgets it. Files are removed
// under the lock so that a new download of the same key can never be deleted
// by a late removal of the old file.
func (c *Cache) removeLocked(e *cacheEntry) {
	if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.o.Log.Warn("cache eviction", "path", e.path, "err", err)
	}
	c.lru.Remove(e.elem)
	e.elem = nil
	if c.entries[e.name] == e {
		delete(c.entries, e.name)
	}
	c.bytes -= e.size
}

// Forget drops the files of keys: at once when no query reads them, else when
// the last one is done; a download in progress is thrown away when it ends.
// The next use of a key downloads it again.
func (c *Cache) Forget(keys []string) {
	if c.local != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		e := c.entries[cacheName(k)]
		switch {
		case e == nil:
		case e.elem != nil && e.pins == 0:
			c.removeLocked(e)
		default:
			// It stays in entries until it is gone, so that no new download
			// of the key can write the same path meanwhile; pin refuses it.
			e.doomed = true
		}
	}
}

// Path is the local file a key is read from, whether or not it is there now.
func (c *Cache) Path(key string) string {
	if c.local != nil {
		return filepath.Join(c.local.Dir(), filepath.FromSlash(key))
	}
	return filepath.Join(c.dir, cacheName(key))
}

// Suspect handles DuckDB's failure to read the file of key at path: a cached
// copy is dropped, so that the next use downloads and checks it again, and
// Integrity.Suspect decides whether the file itself is broken. It returns the
// *rollup.FileError it reported, if any.
func (c *Cache) Suspect(ctx context.Context, key, path string, cause error) error {
	if c.local == nil {
		c.Forget([]string{key})
	}
	return c.o.Integrity.Suspect(ctx, key, path, c.local != nil, cause)
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Files, s.Bytes = int64(c.lru.Len()), c.bytes
	return s
}

// Cached reports whether key's file is in the cache now (always true for a
// file:// storage, whose files are read in place).
func (c *Cache) Cached(key string) bool {
	if c.local != nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[cacheName(key)]
	return e != nil && e.elem != nil
}

// Prefetch downloads the files not cached yet, Prefetchers at a time, and
// returns when they are in (or failed: a prefetch is only a hint).
func (c *Cache) Prefetch(ctx context.Context, keys []string) {
	if c.local != nil {
		return
	}
	sem := make(chan struct{}, c.o.Prefetchers)
	var wg sync.WaitGroup
	for _, k := range keys {
		if c.Cached(k) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if e, err := c.pin(ctx, k); err == nil {
				c.unpin(e)
			}
		}()
	}
	wg.Wait()
}

// Follow prefetches the files of every version that becomes active in the
// catalog view, so that the first query of a new version finds them local,
// until ctx ends. The versions active at start count as new, most recently
// built first; a version is skipped when it alone would not fit the cache,
// and a round stops once it has prefetched MaxBytes, so that prefetching
// never evicts what it just fetched.
func (c *Cache) Follow(ctx context.Context, view *catalog.View) {
	if c.local != nil {
		return
	}
	select {
	case <-view.Ready():
	case <-ctx.Done():
		return
	}
	seen := map[string]bool{}
	for {
		changed := view.Changed()
		var fresh []*rollup.Version
		current := map[string]bool{}
		for _, st := range view.All() {
			if st.Active == nil || !st.Retired.IsZero() {
				continue
			}
			id := catalog.Key(st.Name, st.Identity) + "/" + st.Active.ID
			current[id] = true
			if !seen[id] {
				seen[id] = true
				fresh = append(fresh, st.Active)
			}
		}
		for id := range seen {
			if !current[id] {
				delete(seen, id)
			}
		}
		sort.Slice(fresh, func(i, j int) bool { return fresh[i].BuiltAt.After(fresh[j].BuiltAt) })
		var keys []string
		var budget int64
		for _, v := range fresh {
			if c.o.MaxBytes > 0 && budget+v.Bytes > c.o.MaxBytes {
				c.o.Log.Info("not prefetching a version larger than the cache's room", "version", v.ID, "bytes", v.Bytes)
				continue
			}
			budget += v.Bytes
			for _, p := range v.Partitions {
				keys = append(keys, p.File)
			}
		}
		if len(keys) > 0 {
			c.o.Log.Debug("prefetching new versions", "versions", len(fresh), "files", len(keys))
			c.Prefetch(ctx, keys)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// Close stops downloads in progress and waits for them.
func (c *Cache) Close() {
	c.stop()
	c.tasks.Wait()
}
