package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/routing"
)

// LocalExecutor answers rollup routes in this process with files from a
// Cache: the single binary's executor when storage is not on local disk.
// Decisions must name their files by storage key (routing.StorageKeys).
type LocalExecutor struct {
	cache *Cache
	duck  *routing.DuckDB
	slots chan struct{}
}

// NewLocalExecutor returns an executor running at most concurrency queries
// at once (0: no limit) on the shared DuckDB.
func NewLocalExecutor(cache *Cache, duck *routing.DuckDB, concurrency int) *LocalExecutor {
	e := &LocalExecutor{cache: cache, duck: duck}
	if concurrency > 0 {
		e.slots = make(chan struct{}, concurrency)
	}
	return e
}

// Query implements routing.Executor. It waits for a free slot as long as ctx
// lets it; the rows hold the slot and the files until closed.
func (e *LocalExecutor) Query(ctx context.Context, d *rewrite.Decision) (proxy.Rows, error) {
	fq, err := routing.SplitFiles(d)
	if err != nil {
		return nil, routing.Fallback(routing.FallbackProtocol, err)
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
	rows, err := runQuery(ctx, e.cache, e.duck, fq, len(d.Columns))
	if err != nil {
		free()
		return nil, err
	}
	rows.release = append(rows.release, free)
	return rows, nil
}

// runQuery resolves the files through the cache and starts the query.
// Errors carry their fallback reason.
func runQuery(ctx context.Context, cache *Cache, duck *routing.DuckDB, fq routing.FileQuery, ncols int) (*heldRows, error) {
	paths, release, err := cache.Acquire(ctx, fq.Files)
	if err != nil {
		return nil, fileError(ctx, err)
	}
	sql, err := fq.SQL(paths)
	if err != nil {
		release()
		return nil, routing.Fallback(routing.FallbackProtocol, err)
	}
	rows, err := duck.Query(ctx, &rewrite.Decision{SQL: sql, Files: paths, Columns: make([]rewrite.ResultColumn, ncols)})
	if err != nil {
		release()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, routing.Fallback(routing.FallbackQuery, err)
	}
	return &heldRows{Rows: rows, release: []func(){release}}, nil
}

// fileError classifies a failure to make files local.
func fileError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, fs.ErrNotExist):
		return routing.Fallback(routing.FallbackMissingFile, fmt.Errorf("rollup file missing: %w", err))
	}
	return routing.Fallback(routing.FallbackStorage, err)
}

// heldRows are DuckDB rows that hold resources (cached files, a concurrency
// slot) until closed.
type heldRows struct {
	proxy.Rows
	release []func()
	once    sync.Once
}

func (r *heldRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() {
		for _, f := range r.release {
			f()
		}
	})
	return err
}
