package rewrite

import (
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// coreCache keeps what a partial core wrote for the warehouse and the
// rollup, by what it depends on: a lambda rollup's cutoff changes only with
// a new version, and a range splits at the same bucket edges at every
// execution (a relative range's edges move once a bucket), so each part is
// deparsed and parsed once rather than at every Route and Finish. A core is
// shared by every session that sends its text, hence the locks.
type coreCache struct {
	// fresh: a lambda answer's warehouse part, by table, column and cutoff.
	fresh memo[string]
	// wholes: a split's rollup part, by its shape and whole buckets.
	wholes memo[edgeWhole]
	// edges: a split's warehouse part with marks for its bounds
	// (edgeMarkLo, ...), by its shape.
	edges memo[string]
}

// edgeWhole is a split's partial core over its whole buckets.
type edgeWhole struct {
	sql  string
	tree *pg_query.ParseResult
}

// memo is a small map from keys to values, or the errors computing them gave.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]memoEntry[V]
}

type memoEntry[V any] struct {
	v   V
	err error
}

// memoEntries bounds the keys a memo keeps; beyond it the memo starts
// again (new versions and moving ranges keep adding keys).
const memoEntries = 16

// get returns the value of key, computing it with compute the first time.
func (c *memo[V]) get(key string, compute func() (V, error)) (V, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return e.v, e.err
	}
	v, err := compute()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= memoEntries {
		c.m = map[string]memoEntry[V]{}
	}
	c.m[key] = memoEntry[V]{v, err}
	c.mu.Unlock()
	return v, err
}
