package duck

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	// The DuckDB driver registers itself with database/sql as "duckdb".
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// DB runs rollup queries in this process, over Parquet files on local disk:
// the single binary's DuckDB, and each worker's one shared DuckDB. Small files
// are kept in memory as tables (residentTables), with a quarter of the memory
// limit.
type DB struct {
	db       *sql.DB
	resident *residentTables
}

// defaultResidentBudget is the memory for resident tables when DuckDB has no
// memory limit of ours.
const defaultResidentBudget = 256 << 20

// Open opens an in-memory DuckDB limited to memoryLimit bytes (0: DuckDB's
// default); log, when not nil, hears about the tables it keeps in memory.
func Open(memoryLimit int64, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	if memoryLimit > 0 {
		if _, err := db.Exec(fmt.Sprintf("SET memory_limit = '%dB'", memoryLimit)); err != nil {
			db.Close()
			return nil, fmt.Errorf("duckdb memory_limit: %w", err)
		}
	}
	budget := int64(defaultResidentBudget)
	if memoryLimit > 0 {
		budget = memoryLimit / 4
	}
	return &DB{db: db, resident: newResidentTables(db, budget, log)}, nil
}

// Close releases the database.
func (d *DB) Close() error {
	d.resident.close()
	return d.db.Close()
}

// Forget drops what the database keeps in memory of the files at paths, whose
// version was taken out of service, and never loads them again.
func (d *DB) Forget(paths []string) { d.resident.forget(paths) }

// Query implements executor.Executor. q.Files are the local paths its SQL reads.
func (d *DB) Query(ctx context.Context, q *executor.Query) (executor.Rows, error) {
	query, release := d.resident.substitute(q)
	rows, err := d.db.QueryContext(ctx, query)
	if err != nil {
		release()
		return nil, err
	}
	n := len(q.Columns)
	r := &sqlRows{rows: rows, vals: make([]any, n), ptrs: make([]any, n), release: release}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r, nil
}

// sqlRows adapts database/sql rows to executor.Rows.
type sqlRows struct {
	rows    *sql.Rows
	vals    []any
	ptrs    []any
	err     error
	release func() // the resident tables the query reads
}

// Next reads the next row into the values.
func (r *sqlRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	return true
}

// Values are the current row's, reused by Next.
func (r *sqlRows) Values() []any { return r.vals }

// Err is the first failure, of a scan or of the query.
func (r *sqlRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// Close ends the query and lets go of the resident tables it read.
func (r *sqlRows) Close() error {
	err := r.rows.Close()
	r.release()
	return err
}
