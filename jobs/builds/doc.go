// Package builds moves rollup builds through JetStream:
//
//   - Build jobs go on a work-queue stream (Publish). A job's message id names what it is
//     for (a rollup identity and the schedule slot or refresh-key value that made it
//     due), so proxies that decide the same build is due publish it once.
//   - Workers (Worker) take jobs with a bounded concurrency, keep them alive with
//     in-progress acks while they build, record the outcome in the catalog, and only
//     then ack. Failures are retried with backoff; definitions that cannot build are
//     terminated. A job that a newer build already satisfied is acked without work.
//   - The Scheduler, run by every proxy, publishes builds that are due: at start-up
//     for a definition without a version, on refresh.every, on refresh.cron, when the
//     refresh.sql key changes, after a broken file took the version out of service,
//     and on request. It also scrubs the active versions' files against storage, and
//     collects files that no version references once a grace period has passed.
package builds
