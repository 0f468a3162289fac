package routing

import (
	"context"
	"math/big"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
)

// ResultCache keeps the answers of rollup queries and serves them again when
// the same DuckDB SQL comes back. It is exact: the SQL names the Parquet files
// of one rollup version, a version's files never change once it is active,
// and the rewriter folds everything that depends on the session or the clock
// (time zone, now(), bound parameters) into the SQL text. Dashboards repeat
// the same statements all day, and a kept answer costs microseconds where
// DuckDB costs milliseconds.
//
// Only small answers are kept (resultCacheMaxRows and a share of the budget),
// and only complete ones: an answer that failed or that the client did not
// read to the end is never kept.
type ResultCache struct {
	next    executor.Executor
	budget  int64
	hits    prometheus.Counter
	lookups prometheus.Counter

	mu    sync.Mutex
	lru   *lru.LRU[string, *cachedResult]
	bytes int64
	// gone are the files Forget was given: an answer read from one of them
	// that completes later is not kept either.
	gone map[string]bool
}

type cachedResult struct {
	rows  [][]any
	bytes int64
	files []string // the decision's files: Forget drops the answers read from them
}

// resultCacheMaxRows is the most rows an answer may have to be kept: a
// dashboard's aggregates are small, and a large answer would evict many.
const resultCacheMaxRows = 10000

// NewResultCache wraps next with a cache of at most budget bytes of answers
// (as estimated from their values); a budget of 0 or less returns next
// itself. reg, when not nil, gets pgrollup_result_cache_lookups_total and
// pgrollup_result_cache_hits_total.
func NewResultCache(next executor.Executor, budget int64, reg prometheus.Registerer) (executor.Executor, error) {
	if budget <= 0 {
		return next, nil
	}
	l, err := lru.NewLRU[string, *cachedResult](1<<30, nil)
	if err != nil {
		return nil, err
	}
	c := &ResultCache{
		next: next, budget: budget, lru: l, gone: map[string]bool{},
		lookups: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrollup_result_cache_lookups_total", Help: "Rollup queries looked up in the proxy's result cache."}),
		hits:    prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrollup_result_cache_hits_total", Help: "Rollup queries answered from the proxy's result cache."}),
	}
	if reg != nil {
		for _, m := range []prometheus.Collector{c.lookups, c.hits} {
			if err := reg.Register(m); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// Query implements executor.Executor.
func (c *ResultCache) Query(ctx context.Context, q *executor.Query) (executor.Rows, error) {
	key := q.SQL
	c.lookups.Inc()
	c.mu.Lock()
	hit, ok := c.lru.Get(key)
	c.mu.Unlock()
	if ok {
		c.hits.Inc()
		return proxy.SliceRows(hit.rows), nil
	}
	rows, err := c.next.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return &recordingRows{Rows: rows, cache: c, key: key, files: q.Files}, nil
}

// Forget drops the kept answers that were read from any of files (as the
// decisions name them), whose version was taken out of service.
func (c *ResultCache) Forget(files []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range files {
		c.gone[f] = true
	}
	for _, key := range c.lru.Keys() {
		if r, ok := c.lru.Peek(key); ok && c.readsGoneLocked(r.files) {
			c.lru.Remove(key)
			c.bytes -= r.bytes
		}
	}
}

// readsGoneLocked reports whether any of files was forgotten.
func (c *ResultCache) readsGoneLocked(files []string) bool {
	for _, f := range files {
		if c.gone[f] {
			return true
		}
	}
	return false
}

// add keeps a complete answer, evicting the least recently used ones.
func (c *ResultCache) add(key string, r *cachedResult) {
	if r.bytes > c.budget/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readsGoneLocked(r.files) {
		return
	}
	if old, ok := c.lru.Peek(key); ok {
		c.bytes -= old.bytes
	}
	c.lru.Add(key, r)
	c.bytes += r.bytes
	for c.bytes > c.budget {
		_, old, ok := c.lru.RemoveOldest()
		if !ok {
			break
		}
		c.bytes -= old.bytes
	}
}

// recordingRows passes an answer's rows on and copies them, for the cache,
// while it stays small.
type recordingRows struct {
	executor.Rows
	cache *ResultCache
	key   string
	files []string
	rows  [][]any
	bytes int64
	full  bool // too large to keep: stop copying
	done  bool // Next returned false
}

func (r *recordingRows) Next() bool {
	if !r.Rows.Next() {
		r.done = true
		return false
	}
	if !r.full {
		vals := r.Rows.Values()
		row := make([]any, len(vals))
		copy(row, vals)
		r.rows = append(r.rows, row)
		r.bytes += rowBytes(row)
		if len(r.rows) > resultCacheMaxRows || r.bytes > r.cache.budget/8 {
			r.full, r.rows = true, nil
		}
	}
	return true
}

func (r *recordingRows) Close() error {
	err := r.Rows.Close()
	if r.done && !r.full && err == nil && r.Rows.Err() == nil {
		r.cache.add(r.key, &cachedResult{rows: r.rows, bytes: r.bytes + int64(len(r.key)), files: r.files})
	}
	r.rows = nil
	return err
}

// rowBytes estimates the memory a row's values hold.
func rowBytes(row []any) int64 {
	n := int64(24 + 16*len(row))
	for _, v := range row {
		switch v := v.(type) {
		case string:
			n += int64(len(v))
		case []byte:
			n += int64(len(v))
		case *big.Int:
			n += int64(len(v.Bits())) * 8
		case time.Time:
			n += 24
		}
	}
	return n
}
