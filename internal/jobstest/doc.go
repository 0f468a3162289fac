// Package jobstest holds what the tests of the jobs packages and of the
// composition root share: the Postgres cluster a package's tests run
// against, NATS servers (embedded or Debian's nats-server in its own
// process), MinIO, Parquet files and rollup queries over them, and waiting
// and logging helpers. Only tests import it.
package jobstest
