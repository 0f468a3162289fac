// Package e2e is pgrollup's end-to-end compatibility suite.
//
// TestMain starts a throw-away Postgres (internal/pgcluster), builds the real
// pgrollup binary from ./cmd/proxy, starts it as a subprocess in front of that
// Postgres and waits for its /readyz. The tests then run the same workload
// directly against Postgres and through pgrollup, with real clients (psql,
// pgbench, pgx, pgjdbc, psycopg2), and require identical results, column
// names, types and errors. Others check what only the proxy does: malformed
// input, metrics, TLS, the cleartext password policy and graceful shutdown.
//
// Run it with:
//
//	go test ./e2e/ -count=1
//
// The proxy subprocess gets SIGKILL if the test binary dies, and pgcluster's
// watchdog stops Postgres, so a panicking run leaves no servers behind. At the
// end, no upstream session of a test role may remain open: that would be a
// session the proxy leaked.
//
// Every client it uses must be installed; a missing one fails the test that
// needs it with the Debian package to install (postgresql-client,
// default-jdk-headless, libpostgresql-jdbc-java, python3-psycopg2).
// Without a PostgreSQL server installed, a plain go test skips the whole suite;
// make test and CI (PGROLLUP_REQUIRE_POSTGRES=1, CI=true) fail it instead. After
// the tests, goroutines left running in the test binary fail the run (goleak).
// PGROLLUP_TEST_DSN points the suite at an existing server instead of a
// throw-away cluster (the trust and MD5 users then need matching pg_hba.conf
// lines on that server).
package e2e
