//go:build linux

package serve

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/pgrollup/pgrollup/config"
)

// setSchedPolicy gives every thread of the process the scheduling policy
// named (config.SchedBatch; config.SchedNormal changes nothing), keeping
// each thread's nice value. Threads started later inherit it from the
// thread that starts them; a thread started during a pass, from one not
// yet changed, is found by the next.
//
// Why batch: a proxy's thread is woken by every packet, and a woken
// SCHED_OTHER thread preempts the task running on its CPU, so under load it
// wakes, relays one message and sleeps again, a context switch each. A
// SCHED_BATCH thread does not preempt on wake-up: it runs when the CPU's
// current task yields or its slice ends, and finds several messages
// waiting. On an idle CPU it runs at once, so an unloaded proxy answers as
// fast.
func setSchedPolicy(policy string) error {
	if policy != config.SchedBatch {
		return nil
	}
	for pass := 0; pass < 10; pass++ {
		changed, err := batchThreads()
		if err != nil || changed == 0 {
			return err
		}
	}
	return nil
}

// batchThreads makes every thread SCHED_BATCH and reports how many it
// changed.
func batchThreads() (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("sched_policy: %w", err)
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
			return changed, fmt.Errorf("sched_policy: sched_getattr of thread %d: %w", tid, err)
		}
		if attr.Policy == unix.SCHED_BATCH {
			continue
		}
		attr.Policy = unix.SCHED_BATCH
		attr.Flags = 0
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && err != unix.ESRCH {
			return changed, fmt.Errorf("sched_policy: sched_setattr of thread %d: %w", tid, err)
		}
		changed++
	}
	return changed, nil
}
