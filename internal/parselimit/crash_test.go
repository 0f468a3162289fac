package parselimit

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The parser's crashes cannot be caught: a test that provokes one runs in a
// child process, this test binary started again with childEnv set.
const childEnv = "PARSELIMIT_CHILD"

// childStackKB is the stack the child's threads get, through RLIMIT_STACK,
// which sizes the threads cgo calls run on. Linux's usual is 8192: the
// defaults must hold on an eighth of it.
const childStackKB = 1024

// runChild runs the test named run in a child process with the given stack
// limit (0: the inherited one) and value of childEnv, and returns its output
// and whether it exited normally.
func runChild(t *testing.T, stackKB int, run, arg string) (string, bool) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^" + run + "$", "-test.count=1"}
	cmd := exec.Command(self, args...)
	if stackKB > 0 {
		cmd = exec.Command("bash", append([]string{"-c", `ulimit -s ` + strconv.Itoa(stackKB) + ` && exec "$0" "$@"`, self}, args...)...)
	}
	cmd.Env = append(os.Environ(), childEnv+"="+arg)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// deepestWithin returns the largest n for which gen(n) is within l, up to
// hi, by bisection (the measure grows with n).
func deepestWithin(l Limits, gen func(int) string, hi int) int {
	lo := 0
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.Check(gen(mid)) == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// TestDefaultsLeaveTheParserAMargin parses, normalizes and fingerprints,
// for every construct that deepens a parse tree, the deepest statement the
// default limits let through, on threads with an eighth of the usual stack.
func TestDefaultsLeaveTheParserAMargin(t *testing.T) {
	out, ok := runChild(t, childStackKB, "TestParseAtLimitsChild", "limits")
	if !ok || !strings.Contains(out, "parsed at the limits") {
		t.Fatalf("the parser crashed on a statement within the default limits, with %d KB stacks:\n%s", childStackKB, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestParseAtLimitsChild is TestDefaultsLeaveTheParserAMargin's child.
func TestParseAtLimitsChild(t *testing.T) {
	if os.Getenv(childEnv) != "limits" {
		t.Skip("runs as a child process of TestDefaultsLeaveTheParserAMargin")
	}
	var l Limits
	for _, c := range deepening {
		n := deepestWithin(l, c.gen, 20000)
		sql := c.gen(n)
		done := make(chan error)
		go func() { // a goroutine of its own, as a session's statement runs
			_, err := pg_query.Parse(sql)
			if err == nil {
				_, err = pg_query.Normalize(sql)
			}
			if err == nil {
				_, err = pg_query.Fingerprint(sql)
			}
			done <- err
		}()
		if err := <-done; err != nil {
			t.Errorf("%s, %d deep: %v", c.name, n, err)
		}
	}
	fmt.Println("parsed at the limits")
}

// TestParserCrashPoints finds, for the constructs that crash libpg_query,
// the smallest repetition that does, with the usual 8 MB stack and with
// childStackKB: the figures the defaults were chosen from. It starts a
// process per probe, so it runs only with PGROLLUP_LONG=1.
func TestParserCrashPoints(t *testing.T) {
	if os.Getenv("PGROLLUP_LONG") == "" {
		t.Skip("PGROLLUP_LONG=1 runs it")
	}
	for _, stackKB := range []int{8192, childStackKB} {
		for i, c := range deepening {
			survives := func(n int) bool {
				_, ok := runChild(t, stackKB, "TestCrashProbeChild", fmt.Sprintf("probe:%d:%d", i, n))
				return ok
			}
			// A deep enough statement is refused by the parser itself
			// (bison's stack), so crashes lie in a band: find where it
			// starts by doubling, then bisect.
			lo, hi := 0, 64
			for hi <= 1<<16 && survives(hi) {
				lo, hi = hi, hi*2
			}
			if hi > 1<<16 {
				t.Logf("%d KB stack: %s: no crash up to %d", stackKB, c.name, lo)
				continue
			}
			for hi-lo > max(lo/50, 1) {
				mid := (lo + hi) / 2
				if survives(mid) {
					lo = mid
				} else {
					hi = mid
				}
			}
			t.Logf("%d KB stack: %s: survives %d, crashes at %d (measured depth %d)",
				stackKB, c.name, lo, hi, measureAll(c.gen(hi)).Depth)
		}
	}
}

// TestCrashProbeChild parses one statement of TestParserCrashPoints.
func TestCrashProbeChild(t *testing.T) {
	arg, ok := strings.CutPrefix(os.Getenv(childEnv), "probe:")
	if !ok {
		t.Skip("runs as a child process of TestParserCrashPoints")
	}
	var i, n int
	if _, err := fmt.Sscanf(arg, "%d:%d", &i, &n); err != nil {
		t.Fatal(err)
	}
	sql := deepening[i].gen(n)
	done := make(chan struct{})
	go func() {
		_, _ = pg_query.Parse(sql)
		_, _ = pg_query.Normalize(sql)
		close(done)
	}()
	<-done
}
