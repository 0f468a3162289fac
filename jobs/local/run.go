package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// Run resolves the files of fq (storage keys) through c and starts the query
// on db: a worker's answer to a proxy's request. Errors carry their fallback
// reason; the rows hold the files until closed.
func Run(ctx context.Context, c *cache.Cache, db *duck.DB, fq executor.FileQuery, ncols int) (executor.Rows, error) {
	rows, err := run(ctx, c, db, fq, ncols)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// run is Run with the rows' type, to which Executor.Query adds its slot.
func run(ctx context.Context, c *cache.Cache, db *duck.DB, fq executor.FileQuery, ncols int) (*heldRows, error) {
	paths, release, err := c.Acquire(ctx, fq.Files)
	if err != nil {
		return nil, fileError(ctx, err)
	}
	sql, err := fq.SQL(paths)
	if err != nil {
		release()
		return nil, executor.Fallback(executor.FallbackProtocol, err)
	}
	fault := fileFault(ctx, c, fq.Files, paths)
	rows, err := db.Query(ctx, &executor.Query{SQL: sql, Files: paths, Columns: make([]executor.Column, ncols)})
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
func fileFault(ctx context.Context, c *cache.Cache, keys, paths []string) func(error) error {
	return func(err error) error {
		msg := err.Error()
		for i, p := range paths {
			if strings.Contains(msg, p) {
				if fe := c.Suspect(context.WithoutCancel(ctx), keys[i], p, err); fe != nil {
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
