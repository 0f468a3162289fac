package serve

import (
	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sched"
)

// setSchedPolicy gives every thread of the process the scheduling policy
// named (config.SchedBatch; config.SchedNormal changes nothing). Threads
// started later inherit it; one started during a pass, from a thread not
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
		changed, err := sched.Batch(0)
		if err != nil || changed == 0 {
			return err
		}
	}
	return nil
}
