// Package jobs moves rollup builds through NATS and keeps the shared catalog.
//
// Everything travels through JetStream, either on the server embedded in the pgrollup
// binary (StartServer, JetStream files under data_dir) or on an external NATS server:
//
//   - Build jobs go on a work-queue stream (Publish). A job's message id names what it is
//     for (a rollup identity and the schedule slot or refresh-key value that made it
//     due), so proxies that decide the same build is due publish it once.
//   - Workers (Worker) take jobs with a bounded concurrency, keep them alive with
//     in-progress acks while they build, record the outcome in the catalog, and only
//     then ack. Failures are retried with backoff; definitions that cannot build are
//     terminated. A job that a newer build already satisfied is acked without work.
//   - The catalog (Catalog) is a JetStream key-value bucket with one JSON record
//     (rollup.State) per rollup definition, updated with compare-and-set; a View keeps
//     a live copy for proxies.
//   - The Scheduler, run by every proxy, publishes builds that are due: at start-up
//     for a definition without a version, on refresh.every, on refresh.cron, when the
//     refresh.sql key changes, and on request (API). It also collects files that no
//     version references once a grace period has passed.
//   - API serves GET /api/rollups, GET /api/rollups/{name} and
//     POST /api/rollups/{name}/refresh.
//   - Rollup queries go from proxies to workers over core NATS request/reply
//     (QueryClient, ServeQueries; the protocol is described in query.go), with
//     rows streamed back in chunks under flow control. Workers read Parquet
//     files through a local Cache of the storage; LocalExecutor and
//     NewProxyExecutor serve the single binary without workers.
package jobs
