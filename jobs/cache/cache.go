package cache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/rollup"
)

// Options configures a Cache.
type Options struct {
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
	// Integrity checks each download, and each use of a file read in place,
	// against what its build recorded, and reports broken files; nil only
	// checks that a download is a whole Parquet file.
	Integrity *integrity.Checker
	Log       *slog.Logger
}

// Cache keeps local copies of rollup files for DuckDB, which reads Parquet
// only from local disk here (no httpfs extension; the README's Dependencies).
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
	o     Options
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
	stats   Stats
}

// Stats counts what the cache did.
type Stats struct {
	Hits      int64 // uses of a file already cached
	Misses    int64 // uses that started a download
	Waits     int64 // uses that joined a download in progress
	Downloads int64 // completed downloads
	Failures  int64 // failed downloads
	Evictions int64 // files deleted to stay within MaxBytes
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

// New opens the cache, adopting the files a previous run left.
func New(o Options) (*Cache, error) {
	if o.Storage == nil {
		return nil, errors.New("cache: no storage")
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

// Path is the local file a key is read from, whether or not it is there now.
func (c *Cache) Path(key string) string {
	if c.local != nil {
		return filepath.Join(c.local.Dir(), filepath.FromSlash(key))
	}
	return filepath.Join(c.dir, cacheName(key))
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
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

// Close stops downloads in progress and waits for them.
func (c *Cache) Close() {
	c.stop()
	c.tasks.Wait()
}
