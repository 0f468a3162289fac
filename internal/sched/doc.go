// Package sched sets the Linux scheduling policy of a process's threads:
// pgrollup serve makes its own SCHED_BATCH (sched_policy), and the
// benchmark does the same to PgBouncer, to compare like with like.
package sched
