// Package routing connects the proxy to the rewrite engine: it implements
// proxy.Router by deciding each statement against the current catalog
// snapshot, answers rollup hits by running the rewritten SQL on an executor
// (jobs/executor's contract: in-process DuckDB, or workers over NATS) and
// converting its values to Postgres's, answers the admin statements EXPLAIN
// (ROLLUP) and SHOW ROLLUPS, and enforces rollup-only mode. It also keeps a
// small cache of rollup answers and follows each session's context (names,
// privileges, row-level security).
package routing
