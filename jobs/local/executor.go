package local

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// Executor answers rollup queries in this process with files from a cache:
// the single binary's executor. Queries name their files by storage key
// (routing.StorageKeys), or, for NewInPlace, by local path
// (routing.LocalFiles).
type Executor struct {
	cache *cache.Cache
	db    *duck.DB
	slots chan struct{}
	// keyOf maps a file as queries name it to its storage key; nil: they
	// are storage keys.
	keyOf func(file string) (string, error)
}

// New returns an executor running at most concurrency queries at once (0:
// no limit) on the shared DuckDB.
func New(c *cache.Cache, db *duck.DB, concurrency int) *Executor {
	e := &Executor{cache: c, db: db}
	if concurrency > 0 {
		e.slots = make(chan struct{}, concurrency)
	}
	return e
}

// NewInPlace returns an executor over a file:// storage rooted at dir whose
// files are read in place: queries name them by local path
// (routing.LocalFiles(dir)), and c, over that storage, checks each one
// before a query reads it. Queries are not limited in number.
func NewInPlace(c *cache.Cache, db *duck.DB, dir string) *Executor {
	e := New(c, db, 0)
	e.keyOf = func(file string) (string, error) {
		rel, err := filepath.Rel(dir, file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("rollup file %s is not in storage %s", file, dir)
		}
		return filepath.ToSlash(rel), nil
	}
	return e
}

// Query implements executor.Executor. It waits for a free slot as long as ctx
// lets it; the rows hold the slot and the files until closed.
func (e *Executor) Query(ctx context.Context, q *executor.Query) (executor.Rows, error) {
	fq, err := q.Split()
	if err != nil {
		return nil, executor.Fallback(executor.FallbackProtocol, err)
	}
	if e.keyOf != nil {
		for i, f := range fq.Files {
			if fq.Files[i], err = e.keyOf(f); err != nil {
				return nil, executor.Fallback(executor.FallbackProtocol, err)
			}
		}
	}
	free := func() {}
	if e.slots != nil {
		select {
		case e.slots <- struct{}{}:
			free = func() { <-e.slots }
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rows, err := run(ctx, e.cache, e.db, fq, len(q.Columns))
	if err != nil {
		free()
		return nil, err
	}
	rows.release = append(rows.release, free)
	return rows, nil
}
