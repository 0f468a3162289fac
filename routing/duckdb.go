package routing

import (
	"context"
	"database/sql"
	"fmt"

	// The DuckDB driver registers itself with database/sql as "duckdb".
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// DuckDB runs rollup queries in this process, over Parquet files on local
// disk: the single-binary default.
type DuckDB struct {
	db *sql.DB
}

// OpenDuckDB opens an in-memory DuckDB limited to memoryLimit bytes (0: DuckDB's default).
func OpenDuckDB(memoryLimit int64) (*DuckDB, error) {
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
	return &DuckDB{db: db}, nil
}

// Close releases the database.
func (d *DuckDB) Close() error { return d.db.Close() }

// Query implements Executor.
func (d *DuckDB) Query(ctx context.Context, dec *rewrite.Decision) (proxy.Rows, error) {
	rows, err := d.db.QueryContext(ctx, dec.SQL)
	if err != nil {
		return nil, err
	}
	n := len(dec.Columns)
	r := &sqlRows{rows: rows, vals: make([]any, n), ptrs: make([]any, n)}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r, nil
}

// sqlRows adapts database/sql rows to proxy.Rows.
type sqlRows struct {
	rows *sql.Rows
	vals []any
	ptrs []any
	err  error
}

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

func (r *sqlRows) Values() []any { return r.vals }

func (r *sqlRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

func (r *sqlRows) Close() error { return r.rows.Close() }
