package cache

import (
	"context"
	"sort"
	"sync"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// prefetchers is how many files Prefetch downloads at once.
const prefetchers = 2

// Prefetch downloads the files not cached yet, prefetchers at a time, and
// returns when they are in (or failed: a prefetch is only a hint).
func (c *Cache) Prefetch(ctx context.Context, keys []string) {
	if c.local != nil {
		return
	}
	sem := make(chan struct{}, prefetchers)
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
