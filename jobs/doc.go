// Package jobs is the job system of pgrollup: how rollups are built and how
// their queries are answered, by the single binary or by scaled-out
// workers. Everything travels through NATS, either on the server embedded in
// the pgrollup binary or on an external one. It holds no code; each concern
// has a package of its own:
//
//   - jobs/node: the connection to NATS (the embedded server, or dialling
//     nats.url) and the JetStream objects every process needs.
//   - jobs/catalog: the shared record of every rollup definition's state
//     (JetStream KV, compare-and-set) and a live view of it.
//   - jobs/builds: the build queue (JetStream work queue), the scheduler
//     every proxy runs, and the workers that take the jobs.
//   - jobs/api: the rollups as operators see them: the admin API and the
//     gauges of the active versions.
//   - jobs/integrity: broken rollup files, and taking their versions out of
//     service.
//   - jobs/executor: the contract between the router and whatever runs a
//     rollup query, with the reasons a rollup answer falls back.
//   - jobs/duck, jobs/cache, jobs/local: the DuckDB, the Parquet cache and
//     the executor that answer rollup queries in this process.
//   - jobs/remote: rollup queries from proxies to workers over NATS, rows
//     streamed back under flow control.
package jobs
