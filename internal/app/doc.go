// Package app assembles the job system of a pgrollup process, so that the
// two binaries start it one way and tests start it without a binary:
//
//   - what both start: the Prometheus registry with the build and broken
//     file metrics, the integrity checker, an in-process build worker, the
//     DuckDB over a cache of the rollup files, and the admin listener;
//   - Builds, a proxy's build machinery: the NATS node, the catalog view,
//     the scheduler (replaced on reload) and its admin API;
//   - RunWorker, the pgrollup-worker process: build jobs and rollup queries
//     from the proxies' NATS, with its own admin listener.
//
// The proxy's own composition, which needs the router and the wire
// protocol, is internal/app/serve; this package links neither, and
// pgrollup-worker links only this one.
package app
