// Package jobs moves rollup builds through NATS: the build queue, the
// scheduler every proxy runs and the workers that take the jobs, the admin
// API of the rollups, and the choice of a proxy's rollup executor.
//
// The rest of the job system has packages of its own: the NATS connection
// (jobs/node), the catalog (jobs/catalog), broken files (jobs/integrity), the
// Parquet cache (jobs/cache), the DuckDB (jobs/duck), the executors in this
// process (jobs/local) and over NATS (jobs/remote), and the executor contract
// they share with the router (jobs/executor).
package jobs
