//go:build !linux

package sched

import "errors"

// Batch: scheduling policies are Linux's.
func Batch(int) (int, error) { return 0, errors.New("SCHED_BATCH is Linux only") }
