// Package routing connects the proxy to the rewrite engine: it implements
// proxy.Router by deciding each statement against the current catalog
// snapshot, answers rollup hits by running the rewritten SQL on an Executor
// (in-process DuckDB, or workers over NATS), answers the admin statements
// EXPLAIN (ROLLUP) and SHOW ROLLUPS, and enforces rollup-only mode.
package routing
