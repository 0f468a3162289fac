// Package executor is the contract between the router, which decides that a
// rollup answers a statement, and whatever runs the rollup's DuckDB SQL: the
// proxy's own DuckDB, or a worker over NATS. It holds the query as executors
// take it, the rows they stream back, the file list held apart from the SQL
// (so that a process keeping the files elsewhere puts in its own paths), and
// the reasons a rollup answer falls back to the warehouse.
//
// It imports nothing of pgrollup's, so that the worker, which runs these
// queries, links neither the router nor the SQL rewriter nor the wire
// protocol.
package executor
