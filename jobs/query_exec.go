package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// LocalExecutor answers rollup routes in this process with files from a
// Cache: the single binary's executor. Decisions name their files by storage
// key (routing.StorageKeys), or, for NewInPlaceExecutor, by local path
// (routing.LocalFiles).
type LocalExecutor struct {
	cache *Cache
	duck  *duck.DB
	slots chan struct{}
	// keyOf maps a file as decisions name it to its storage key; nil: they
	// are storage keys.
	keyOf func(file string) (string, error)
}

// NewLocalExecutor returns an executor running at most concurrency queries
// at once (0: no limit) on the shared DuckDB.
func NewLocalExecutor(cache *Cache, duck *duck.DB, concurrency int) *LocalExecutor {
	e := &LocalExecutor{cache: cache, duck: duck}
	if concurrency > 0 {
		e.slots = make(chan struct{}, concurrency)
	}
	return e
}

// NewInPlaceExecutor returns an executor over a file:// storage rooted at dir
// whose files are read in place: decisions name them by local path
// (routing.LocalFiles(dir)), and cache, over that storage, checks each one
// before a query reads it. Queries are not limited in number.
func NewInPlaceExecutor(cache *Cache, duck *duck.DB, dir string) *LocalExecutor {
	e := NewLocalExecutor(cache, duck, 0)
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
func (e *LocalExecutor) Query(ctx context.Context, d *executor.Query) (executor.Rows, error) {
	fq, err := d.Split()
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
	rows, err := runQuery(ctx, e.cache, e.duck, fq, len(d.Columns))
	if err != nil {
		free()
		return nil, err
	}
	rows.release = append(rows.release, free)
	return rows, nil
}

// runQuery resolves the files (storage keys) through the cache and starts the
// query. Errors carry their fallback reason.
func runQuery(ctx context.Context, cache *Cache, duck *duck.DB, fq executor.FileQuery, ncols int) (*heldRows, error) {
	paths, release, err := cache.Acquire(ctx, fq.Files)
	if err != nil {
		return nil, fileError(ctx, err)
	}
	sql, err := fq.SQL(paths)
	if err != nil {
		release()
		return nil, executor.Fallback(executor.FallbackProtocol, err)
	}
	fault := fileFault(ctx, cache, fq.Files, paths)
	rows, err := duck.Query(ctx, &executor.Query{SQL: sql, Files: paths, Columns: make([]executor.Column, ncols)})
	if err != nil {
		release()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if fe := fault(err); fe != nil {
			return nil, executor.Fallback(executor.FallbackBrokenFile, fe)
		}
		return nil, executor.Fallback(executor.FallbackQuery, err)
	}
	return &heldRows{Rows: rows, release: []func(){release}, fault: fault}, nil
}

// fileFault returns what looks into a DuckDB failure: when its message names
// one of the files the query reads, the cache checks that file (Cache.Suspect)
// and the result is the file's error if it is broken, else nil.
func fileFault(ctx context.Context, cache *Cache, keys, paths []string) func(error) error {
	return func(err error) error {
		msg := err.Error()
		for i, p := range paths {
			if strings.Contains(msg, p) {
				if fe := cache.Suspect(context.WithoutCancel(ctx), keys[i], p, err); fe != nil {
					return fe
				}
			}
		}
		return nil
	}
}

// fileError classifies a failure to make files local.
func fileError(ctx context.Context, err error) error {
	var fe *rollup.FileError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case executor.FallbackReason(err, "") != "":
		return err
	case errors.Is(err, fs.ErrNotExist):
		return executor.Fallback(executor.FallbackMissingFile, fmt.Errorf("rollup file missing: %w", err))
	case errors.As(err, &fe):
		return executor.Fallback(executor.FallbackBrokenFile, err)
	}
	return executor.Fallback(executor.FallbackStorage, err)
}

// heldRows are DuckDB rows that hold resources (cached files, a concurrency
// slot) until closed.
type heldRows struct {
	executor.Rows
	release []func()
	once    sync.Once
	// fault looks into a failure while the rows are read (fileFault).
	fault   func(error) error
	checked bool
	err     error
}

// Err implements executor.Rows: a failure that a broken file explains carries the
// broken_file fallback reason.
func (r *heldRows) Err() error {
	err := r.Rows.Err()
	if err == nil || r.fault == nil {
		return err
	}
	if !r.checked {
		r.checked = true
		r.err = err
		if fe := r.fault(err); fe != nil {
			r.err = executor.Fallback(executor.FallbackBrokenFile, fe)
		}
	}
	return r.err
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
