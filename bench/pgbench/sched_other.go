//go:build !linux

package main

import "errors"

// schedBatch is Linux's only.
func schedBatch(int) error { return errors.New("SCHED_BATCH is Linux only: leave pgbouncer-batch out") }
