package cache

import (
	"errors"
	"io/fs"
	"os"
)

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
