package duck

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// residentTables keeps small rollup files in DuckDB tables in memory.
// read_parquet opens, decodes and plans over a file on every query, which
// costs about a millisecond more than scanning the same rows from a table
// (measured on a 7,500-row rollup: 2.0 ms against 0.8 ms a query), and a
// dashboard asks the same few small rollups all day. A file is immutable
// once written (its path names its version), so a table loaded from it
// answers exactly as the file does.
//
// A file is loaded in the background the first time a query reads it; that
// query and every other until the table is ready read the file. Tables are
// dropped, least recently used first, when they outgrow the budget, but
// never while a query reads them.
type residentTables struct {
	db     *sql.DB
	budget int64 // estimated bytes of memory the tables may hold
	log    *slog.Logger

	mu     sync.Mutex
	tables map[string]*residentTable // by file path
	// banned are files of versions taken out of service: never loaded again.
	banned map[string]bool
	used   int64
	tick   uint64
	seq    int
	queue  chan *residentTable
	closed bool
	wg     sync.WaitGroup
}

type residentTable struct {
	path  string
	name  string
	bytes int64
	ready bool
	skip  bool // too large, or it failed to load: always read the file
	refs  int
	used  uint64
	// gone: forgotten while queries read it or while it loaded; dropped as
	// soon as neither.
	gone bool
}

// residentExpansion estimates a table's memory from its Parquet file's size.
const residentExpansion = 4

func newResidentTables(db *sql.DB, budget int64, log *slog.Logger) *residentTables {
	r := &residentTables{db: db, budget: budget, log: log, tables: map[string]*residentTable{}, banned: map[string]bool{},
		queue: make(chan *residentTable, 64)}
	r.wg.Add(1)
	go r.loader()
	return r
}

// substitute returns the decision's SQL reading resident tables in place of
// its files when every file has one, and the function that releases them
// once the query ends. Otherwise it returns the SQL unchanged and starts
// loading the files.
func (r *residentTables) substitute(q *executor.Query) (string, func()) {
	fq, err := q.Split()
	if err != nil || len(fq.Files) == 0 {
		return q.SQL, func() {}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	held := make([]*residentTable, 0, len(fq.Files))
	for _, f := range fq.Files {
		t := r.tables[f]
		if t == nil || !t.ready {
			r.startLoading(fq.Files)
			return q.SQL, func() {}
		}
		held = append(held, t)
	}
	r.tick++
	names := make([]string, len(held))
	for i, t := range held {
		t.refs++
		t.used = r.tick
		names[i] = t.name
	}
	from := "(SELECT * FROM " + strings.Join(names, " UNION ALL SELECT * FROM ") + ")"
	sql := strings.TrimSuffix(fq.Before, "read_parquet([") + from + strings.TrimPrefix(fq.After, "])")
	var once sync.Once
	return sql, func() {
		once.Do(func() {
			var drop []string
			r.mu.Lock()
			for _, t := range held {
				t.refs--
				if t.refs == 0 && t.gone {
					drop = append(drop, t.name)
					r.used -= t.bytes
				}
			}
			r.mu.Unlock()
			r.drop(drop)
			r.evict()
		})
	}
}

// startLoading queues the files that have no table yet. r.mu is held.
func (r *residentTables) startLoading(files []string) {
	for _, f := range files {
		if r.closed || r.tables[f] != nil || r.banned[f] {
			continue
		}
		info, err := os.Stat(f)
		if err != nil {
			continue // the query reading it reports the error; a later one tries again
		}
		t := &residentTable{path: f}
		r.tables[f] = t
		if info.Size()*residentExpansion > r.budget/4 {
			t.skip = true
			continue
		}
		t.bytes = info.Size() * residentExpansion
		select {
		case r.queue <- t:
		default:
			delete(r.tables, f) // the loader is behind: another query will ask again
		}
	}
}

// loader creates the queued tables one at a time, so that loading never
// takes more than one file's worth of memory and CPU beside the queries.
func (r *residentTables) loader() {
	defer r.wg.Done()
	for t := range r.queue {
		r.mu.Lock()
		r.seq++
		name := fmt.Sprintf(`"pgrollup_resident_%d"`, r.seq)
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := r.db.ExecContext(ctx, "CREATE TABLE "+name+" AS SELECT * FROM read_parquet("+sqlquote.Literal(t.path)+")")
		cancel()
		r.mu.Lock()
		if err != nil {
			t.skip = true
			r.mu.Unlock()
			r.log.Debug("rollup file stays on disk: loading it into memory failed", "file", t.path, "err", err)
			continue
		}
		if t.gone {
			// Its version was taken out of service while it loaded.
			r.mu.Unlock()
			r.drop([]string{name})
			continue
		}
		t.name, t.ready = name, true
		r.used += t.bytes
		r.mu.Unlock()
		r.evict()
	}
}

// evict drops the least recently used idle tables while the tables hold more
// than the budget.
func (r *residentTables) evict() {
	var drop []string
	r.mu.Lock()
	for r.used > r.budget {
		var oldest *residentTable
		for _, t := range r.tables {
			if t.ready && t.refs == 0 && (oldest == nil || t.used < oldest.used) {
				oldest = t
			}
		}
		if oldest == nil {
			break
		}
		delete(r.tables, oldest.path)
		r.used -= oldest.bytes
		drop = append(drop, oldest.name)
	}
	r.mu.Unlock()
	r.drop(drop)
}

// drop drops tables by name.
func (r *residentTables) drop(names []string) {
	for _, name := range names {
		if _, err := r.db.Exec("DROP TABLE IF EXISTS " + name); err != nil {
			r.log.Warn("cannot drop a rollup table from memory", "table", name, "err", err)
		}
	}
}

// forget drops the tables of files whose version was taken out of service, at
// once or when the last query reading one ends, and never loads them again:
// queries then read the files, and fail on a broken one.
func (r *residentTables) forget(files []string) {
	var drop []string
	r.mu.Lock()
	for _, f := range files {
		r.banned[f] = true
		t := r.tables[f]
		if t == nil {
			continue
		}
		delete(r.tables, f)
		switch {
		case t.ready && t.refs == 0:
			drop = append(drop, t.name)
			r.used -= t.bytes
		case t.ready:
			t.gone = true // the last release drops it
		case !t.skip:
			t.gone = true // queued or loading: the loader drops it
		}
	}
	r.mu.Unlock()
	r.drop(drop)
}

// close stops the loader; the tables go with the database.
func (r *residentTables) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	r.wg.Wait()
}
