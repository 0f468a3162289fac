//go:build linux

package sched

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBatch makes another process SCHED_BATCH: every thread of it, once.
func TestBatch(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if n := withPolicy(t, pid, unix.SCHED_BATCH); n != 0 {
		t.Fatalf("%d threads SCHED_BATCH before", n)
	}
	changed, err := Batch(pid)
	if err != nil || changed == 0 {
		t.Fatalf("Batch: %d changed, %v", changed, err)
	}
	if n := withPolicy(t, pid, unix.SCHED_NORMAL); n != 0 {
		t.Errorf("%d threads still SCHED_OTHER", n)
	}
	if changed, err := Batch(pid); err != nil || changed != 0 {
		t.Errorf("Batch again: %d changed, %v", changed, err)
	}
}

func withPolicy(t *testing.T, pid int, policy uint32) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil && attr.Policy == policy {
			n++
		}
	}
	return n
}
