package executor

import "context"

// Executor runs a rollup query's DuckDB SQL and streams its rows, one Go
// value per result column as DuckDB's driver returns them (the router turns
// them into Postgres values). The rows live as long as ctx or until closed: a
// client may fetch them over several Executes.
type Executor interface {
	Query(ctx context.Context, q *Query) (Rows, error)
}

// Rows are the rows of one answer. The method set is proxy.Rows's, so that the
// router hands an executor's rows to the proxy as they are; it is repeated
// here because the worker, which produces them, does not link the proxy.
type Rows interface {
	Next() bool
	// Values are the current row's values; the slice may be reused by Next.
	Values() []any
	Err() error
	Close() error
}

// Query is a rollup route as executors run it: what the router's decision
// says about the SQL and its files, without the rest of the decision.
type Query struct {
	// Rollup and Version name the rollup version the files belong to, for
	// logs.
	Rollup, Version string
	// SQL reads Files once, as read_parquet([...]) of the files quoted with
	// sqlquote.Literal (see Split).
	SQL string
	// Files are the Parquet files SQL reads, as the catalog names them:
	// storage keys, or local paths (routing.ApplyBuilds).
	Files []string
	// Columns are the result columns, in order.
	Columns []Column
}

// Column is one result column of a Query.
type Column struct {
	// Name is the column's name in the result.
	Name string
	// DuckType is the column's DuckDB type in the SQL's result, as the
	// rewriter wrote it; the query protocol carries it to the worker.
	DuckType string
}
