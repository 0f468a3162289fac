package cache

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

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

// Suspect handles DuckDB's failure to read the file of key at path: a cached
// copy is dropped, so that the next use downloads and checks it again, and
// integrity.Checker.Suspect decides whether the file itself is broken. It returns the
// *rollup.FileError it reported, if any.
func (c *Cache) Suspect(ctx context.Context, key, path string, cause error) error {
	if c.local == nil {
		c.Forget([]string{key})
	}
	return c.o.Integrity.Suspect(ctx, key, path, c.local != nil, cause)
}
