// Package rewrite decides, for one parsed SQL statement, whether a rollup can
// answer it (docs/matching.md) and, if so, rewrites it into DuckDB SQL over the
// rollup's Parquet files and describes the result columns exactly as Postgres
// would (docs/matching.md, rule 7). Otherwise it says why the statement passes through.
//
// The package does no I/O: everything it needs (rollup definitions, column
// types, built versions, the session's TimeZone, clock and parameters) comes in
// a Catalog and a Session, so every decision can be tested exhaustively and
// made on every statement. The entry point is Engine.Decide.
//
// A decision has three stages. Analyze checks the statement's shape and
// converts it (once per statement text). Preparing binds it to a catalog
// snapshot and translates it for every candidate rollup (once per text,
// snapshot, session TimeZone, search path and parameter types; catalogs are
// replaced, never mutated, so a snapshot's pointer identifies it). What
// depends on the execution, bound parameter values and now(), is deferred
// into slots of the prepared SQL (see slots.go) and folded on each call,
// with the time range, the data, staleness and session checks. Engine
// caches the first two stages; DecideAnalysis runs all three uncached.
//
// The SQL reads the rollup layout the builder (package rollup) writes, as
// package rollup/layout defines it: dimension i in Parquet column d<i>, the
// time bucket in t, and part p (sum, count, min, max, count_distinct) of
// measure i in m<i>_<p>; AVG is stored as its sum and count parts. Types
// without an exact DuckDB equivalent are stored as their text and are never
// computed with.
package rewrite
