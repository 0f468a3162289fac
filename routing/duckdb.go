package routing

import (
	"context"
	"database/sql"
	"fmt"

	// The DuckDB driver registers itself with database/sql as "duckdb".
	_ "github.com/duckdb/duckdb-go/v2"

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
func (d *DuckDB) Query(ctx context.Context, dec *rewrite.Decision) ([][]any, error) {
	rows, err := d.db.QueryContext(ctx, dec.SQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := len(dec.Columns)
	var out [][]any
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
