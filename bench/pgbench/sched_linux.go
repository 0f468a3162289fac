//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// schedBatch makes every thread of process pid SCHED_BATCH, as pgrollup's
// sched_policy: batch does to its own.
func schedBatch(pid int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("SCHED_BATCH for %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			return fmt.Errorf("sched_getattr %d: %w", tid, err)
		}
		attr.Policy, attr.Flags = unix.SCHED_BATCH, 0
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
			return fmt.Errorf("sched_setattr %d: %w", tid, err)
		}
	}
	return nil
}
