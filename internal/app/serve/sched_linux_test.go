//go:build linux

package serve

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgrollup/pgrollup/config"
)

// TestSetSchedPolicy checks that batch reaches every thread of the process,
// those started afterwards too, and that normal leaves them alone.
func TestSetSchedPolicy(t *testing.T) {
	t.Cleanup(func() { setThreadsPolicy(t, unix.SCHED_NORMAL) })
	setThreadsPolicy(t, unix.SCHED_NORMAL)
	if err := setSchedPolicy(config.SchedNormal); err != nil {
		t.Fatal(err)
	}
	if n := threadsWithPolicy(t, unix.SCHED_BATCH); n != 0 {
		t.Fatalf("normal: %d threads are SCHED_BATCH", n)
	}
	if err := setSchedPolicy(config.SchedBatch); err != nil {
		t.Fatal(err)
	}
	if n := threadsWithPolicy(t, unix.SCHED_NORMAL); n != 0 {
		t.Fatalf("batch: %d threads are still SCHED_OTHER", n)
	}
	// More goroutines locked to threads, and blocked, than the process has
	// threads force the runtime to start new ones: they inherit the policy.
	before := threadCount(t)
	var started, release sync.WaitGroup
	release.Add(1)
	for i := 0; i < before+2; i++ {
		started.Add(1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			started.Done()
			release.Wait()
		}()
	}
	started.Wait()
	if after := threadCount(t); after <= before {
		t.Fatalf("no new thread started (%d before, %d after)", before, after)
	}
	if n := threadsWithPolicy(t, unix.SCHED_NORMAL); n != 0 {
		t.Errorf("batch: %d threads started afterwards are SCHED_OTHER", n)
	}
	release.Done()
}

func threadIDs(t *testing.T) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, e := range tasks {
		if id, err := strconv.Atoi(e.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

func threadCount(t *testing.T) int { return len(threadIDs(t)) }

func threadsWithPolicy(t *testing.T, policy uint32) int {
	t.Helper()
	n := 0
	for _, id := range threadIDs(t) {
		attr, err := unix.SchedGetAttr(id, 0)
		if err != nil {
			continue // ended meanwhile
		}
		if attr.Policy == policy {
			n++
		}
	}
	return n
}

func setThreadsPolicy(t *testing.T, policy uint32) {
	t.Helper()
	for _, id := range threadIDs(t) {
		attr, err := unix.SchedGetAttr(id, 0)
		if err != nil {
			continue
		}
		attr.Policy, attr.Flags = policy, 0
		if err := unix.SchedSetAttr(id, attr, 0); err != nil && err != unix.ESRCH {
			t.Fatalf("sched_setattr %d: %v", id, err)
		}
	}
}

// checkThreadsBatch fails t unless every thread of the process is
// SCHED_BATCH.
func checkThreadsBatch(t *testing.T) {
	t.Helper()
	if n := threadsWithPolicy(t, unix.SCHED_NORMAL); n != 0 {
		t.Errorf("%d threads are SCHED_OTHER, want every one SCHED_BATCH", n)
	}
}
