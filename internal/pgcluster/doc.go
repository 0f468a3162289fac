// Package pgcluster starts a throw-away PostgreSQL cluster for tests, benchmarks
// and the demo.
//
// Start runs initdb and pg_ctl from the installed server binaries (the highest
// version under /usr/lib/postgresql/*/bin, else `pg_config --bindir`) into a fresh
// temporary directory, on a free loopback port, with its unix socket inside that
// directory so it never collides with a system cluster. The superuser is
// `postgres` with a generated password; host connections use SCRAM-SHA-256 and
// local (unix socket) connections are trusted. Durability is switched off
// (fsync, full_page_writes, synchronous_commit) because the data is disposable
// and start-up and test speed matter more.
//
// A watchdog process (a shell reading a pipe only this process writes) stops
// the server and removes the directory if this process dies without calling
// Stop, as a test binary does on a panic or a -timeout; so a crashed run leaves
// no Postgres behind.
//
// Halt stops a running cluster as an administrator would and keeps its
// directory; Resume starts it again on the same port with the same data. The
// outage tests and benchmarks use them to take the warehouse away.
//
// When the process runs as root, initdb and pg_ctl run as the `postgres` OS user
// (Postgres refuses to run as root), and the directory is owned by that user.
//
// When the environment variable PGROLLUP_TEST_DSN holds a postgres:// URL, Start
// starts nothing and returns a Cluster that points at that server; Stop then
// leaves it alone. Options.HBA and Options.Config cannot be applied to such a
// server and are ignored.
//
// Tests share one cluster per package through Shared, which starts it when the
// first test asks for it (Get), so that a package's tests that need no server
// run without one, and stops it when TestMain calls Close or Exit after m.Run.
// When no server is installed (Start's error wraps ErrNotInstalled), Get skips
// the test, except under `make test` and in CI, where PGROLLUP_REQUIRE_POSTGRES=1
// or CI=true make it fail (see Required). Any other failure to start fails the
// test everywhere. Unavailable applies the same rule to a test that calls Start
// itself.
package pgcluster
