package app

import (
	"log/slog"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/rollup"
)

// CachedFiles are a DuckDB and a cache of the rollup files it reads: how a
// worker answers queries, and how a proxy without workers does. Over a
// file:// storage the cache reads the files in place; otherwise it keeps
// copies in worker.cache_dir, up to worker.cache_max_bytes.
type CachedFiles struct {
	// DB runs the queries, over files the Cache made local.
	DB    *duck.DB
	Cache *cache.Cache
}

// OpenCachedFiles opens a DuckDB limited to worker.duckdb_memory_limit, which
// logs to dbLog (nil: nowhere), and a cache over storage whose files files
// checks. The files of a version taken out of service leave both.
func OpenCachedFiles(cfg *config.Config, storage rollup.Storage, files *integrity.Checker, dbLog, log *slog.Logger) (*CachedFiles, error) {
	db, err := duck.Open(cfg.Worker.DuckDBMemoryLimit.Int64(), dbLog)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cache.Options{Dir: cfg.Worker.CacheDir, MaxBytes: cfg.Worker.CacheMaxBytes.Int64(), Storage: storage,
		Integrity: files, Log: log})
	if err != nil {
		db.Close()
		return nil, err
	}
	files.OnBroken(func(keys []string) {
		paths := make([]string, len(keys))
		for i, k := range keys {
			paths[i] = c.Path(k)
		}
		db.Forget(paths)
		c.Forget(keys)
	})
	return &CachedFiles{DB: db, Cache: c}, nil
}

// Close stops the cache's downloads and closes the DuckDB; rows still open
// must be closed first.
func (f *CachedFiles) Close() {
	f.Cache.Close()
	f.DB.Close()
}
