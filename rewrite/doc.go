// Package rewrite decides, for one parsed SQL statement, whether a rollup can
// answer it (DESIGN.md §3) and, if so, rewrites it into DuckDB SQL over the
// rollup's Parquet files and describes the result columns exactly as Postgres
// would (DESIGN.md §4). Otherwise it says why the statement passes through.
//
// The package does no I/O: everything it needs (rollup definitions, column
// types, built versions, the session's TimeZone, clock and parameters) comes in
// a Catalog and a Session, so every decision can be tested exhaustively and
// made on every statement. The entry point is Engine.Decide.
//
// It also owns the physical layout of a rollup (the Parquet column names and
// what each holds, see Layout), because the SQL it writes depends on it; the
// builder writes rollups with the same Layout.
package rewrite
