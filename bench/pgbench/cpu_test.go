package main

import (
	"os"
	"testing"
	"time"
)

// TestProcParsers covers the readers of /proc/PID/stat, /proc/PID/task/TID/schedstat and /proc/stat.
func TestProcParsers(t *testing.T) {
	// Fields 3.. of a real /proc/PID/stat line; utime (14) is 1234, stime (15) 567.
	rest := " S 1 100 100 0 -1 4194560 1500 0 0 0 1234 567 0 0 20 0 12 0 4242 123456789 2000 18446744073709551615"
	stat, schedstat, machine := parseStatTicks, parseSchedstat, parseMachineBusy
	for _, tc := range []struct {
		name    string
		parse   func(string) (int64, error)
		in      string
		want    int64
		wantErr bool
	}{
		{"stat: plain name", stat, "4242 (pgbouncer)" + rest, 1801, false},
		{"stat: name with spaces and parentheses", stat, "4242 (my (odd) proc)" + rest, 1801, false},
		{"stat: no name", stat, "4242 pgbouncer S 1", 0, true},
		{"stat: too short", stat, "4242 (pgbouncer) S 1 100", 0, true},
		{"stat: not a number", stat, "4242 (x) S 1 100 100 0 -1 4194560 1500 0 0 0 abc 567 0", 0, true},
		{"schedstat", schedstat, "3273684 361033 2\n", 3273684, false},
		{"schedstat: empty", schedstat, "", 0, true},
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"machine: ten counters", machine, "cpu  100 2 30 5000 40 5 6 7 50 0", 150, false},
		{"machine: eight counters", machine, "cpu 1 1 1 100 100 1 1 1", 6, false},
		{"machine: a single CPU's line", machine, "cpu0 100 2 30 5000 40 5 6 7 0 0", 0, true},
		{"machine: too short", machine, "cpu 1 2 3", 0, true},
		{"machine: not a number", machine, "cpu 1 x 1 100 100 1 1 1", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("= %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCPUBetween(t *testing.T) {
	a := procCPU{ticks: 100, tasks: map[int]int64{1: 1_000_000_000, 2: 500_000_000}}
	for _, tc := range []struct {
		name string
		b    procCPU
		want time.Duration
	}{
		{"same threads: exact times", procCPU{ticks: 130, tasks: map[int]int64{1: 1_200_000_123, 2: 600_000_000}}, 300_000_123},
		{"a new thread counts in full", procCPU{ticks: 140, tasks: map[int]int64{1: 1_200_000_000, 2: 600_000_000, 3: 90_000_000}}, 390 * time.Millisecond},
		{"an ended thread: ticks", procCPU{ticks: 145, tasks: map[int]int64{1: 1_200_000_000}}, 450 * time.Millisecond},
		{"a reused thread id: ticks", procCPU{ticks: 101, tasks: map[int]int64{1: 1_000_000_000, 2: 1_000}}, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuBetween(a, tc.b); got != tc.want {
				t.Fatalf("cpuBetween = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadProcCPU reads this test's own process while it burns CPU: the
// threads' exact times and the clock ticks must agree.
func TestReadProcCPU(t *testing.T) {
	before, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(before.tasks) == 0 {
		t.Fatal("no threads read")
	}
	var after procCPU
	x := 0
	for after.ticks-before.ticks < 30 {
		for i := 0; i < 1_000_000; i++ {
			x += i ^ x
		}
		if after, err = readProcCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	exact := cpuBetween(before, after)
	ticks := time.Duration(after.ticks-before.ticks) * tick
	if diff := (exact - ticks).Abs(); diff > 50*time.Millisecond {
		t.Fatalf("threads' CPU %v and ticks %v disagree by %v (x=%d)", exact, ticks, diff, x)
	}
	busy, err := readMachineBusy()
	if err != nil || busy <= 0 {
		t.Fatalf("readMachineBusy = %d, %v", busy, err)
	}
}

func TestSteadyWindow(t *testing.T) {
	base := time.Unix(1_000, 0)
	var samples []sample
	for i := 0; i <= 50; i++ { // every 100 ms for 5 s
		samples = append(samples, sample{at: base.Add(time.Duration(i) * samplePeriod), machineBusy: int64(i)})
	}
	us := func(d time.Duration) int64 { return base.Add(d).UnixMicro() }
	for _, tc := range []struct {
		name        string
		samples     []sample
		first, last int64
		skip        time.Duration
		from, to    int64 // machineBusy of the chosen samples
		ok          bool
	}{
		{"steady part", samples, us(300 * time.Millisecond), us(4900 * time.Millisecond), 500 * time.Millisecond, 8, 44, true},
		{"no skip", samples, us(0), us(5 * time.Second), 0, 0, 50, true},
		{"too short a run: all of it", samples, us(2 * time.Second), us(2100 * time.Millisecond), 500 * time.Millisecond, 0, 50, true},
		{"one sample", samples[:1], us(0), us(time.Second), 0, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ok := steadyWindow(tc.samples, tc.first, tc.last, tc.skip)
			if ok != tc.ok {
				t.Fatalf("steadyWindow ok = %v, want %v", ok, tc.ok)
			}
			if ok && (w.from.machineBusy != tc.from || w.to.machineBusy != tc.to) {
				t.Fatalf("steadyWindow = samples %d..%d, want %d..%d", w.from.machineBusy, w.to.machineBusy, tc.from, tc.to)
			}
		})
	}
}
