//go:build linux

package sched

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Batch makes every thread of process pid (0: this one) SCHED_BATCH,
// keeping each thread's nice value, and reports how many it changed. A
// thread started meanwhile by one not yet changed is found by calling it
// again; threads started later inherit the policy of the thread that
// starts them.
func Batch(pid int) (int, error) {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("SCHED_BATCH: %w", err)
	}
	changed := 0
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err == unix.ESRCH {
			continue // ended meanwhile
		}
		if err != nil {
			return changed, fmt.Errorf("SCHED_BATCH: sched_getattr of thread %d: %w", tid, err)
		}
		if attr.Policy == unix.SCHED_BATCH {
			continue
		}
		attr.Policy, attr.Flags = unix.SCHED_BATCH, 0
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && err != unix.ESRCH {
			return changed, fmt.Errorf("SCHED_BATCH: sched_setattr of thread %d: %w", tid, err)
		}
		changed++
	}
	return changed, nil
}
