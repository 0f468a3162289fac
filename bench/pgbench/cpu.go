package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the clock-tick fields in /proc/PID/stat and
// /proc/stat. Linux fixes USER_HZ at 100 for what it shows user space,
// whatever the kernel's own HZ; Go cannot call sysconf(_SC_CLK_TCK) without cgo.
const userHZ = 100

const tick = time.Second / userHZ

// procCPU is the CPU a process has used so far, read from /proc.
type procCPU struct {
	// ticks is utime+stime of all its threads, those still running and those
	// that ended, in clock ticks (/proc/PID/stat fields 14 and 15): complete,
	// but only to 10 ms.
	ticks int64
	// tasks is the time on a CPU of each live thread in nanoseconds
	// (/proc/PID/task/TID/schedstat): exact, but it forgets threads that end.
	tasks map[int]int64
}

// readProcCPU reads what pid has used so far.
func readProcCPU(pid int) (procCPU, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procCPU{}, fmt.Errorf("process CPU: %w", err)
	}
	c := procCPU{tasks: map[int]int64{}}
	if c.ticks, err = parseStatTicks(string(stat)); err != nil {
		return procCPU{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return procCPU{}, fmt.Errorf("process CPU: %w", err)
	}
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "task", e.Name(), "schedstat"))
		if err != nil {
			// The thread ended after the listing; cpuBetween then counts ticks.
			continue
		}
		ns, err := parseSchedstat(string(b))
		if err != nil {
			return procCPU{}, fmt.Errorf("%s/task/%d/schedstat: %w", dir, tid, err)
		}
		c.tasks[tid] = ns
	}
	return c, nil
}

// parseStatTicks returns utime+stime from the text of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted from its last ')'.
func parseStatTicks(stat string) (int64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no command name in parentheses")
	}
	// After the name: field 3 (state) is rest[0], so field N is rest[N-3].
	rest := strings.Fields(stat[end+1:])
	if len(rest) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(rest))
	}
	utime, err := strconv.ParseInt(rest[14-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseInt(rest[15-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return utime + stime, nil
}

// parseSchedstat returns the first field of /proc/PID/schedstat: the
// nanoseconds the task has run on a CPU.
func parseSchedstat(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// cpuBetween is the CPU the process used from a to b. It sums the threads'
// exact times when every thread of a is still alive at b (threads that began
// in between count in full), and falls back to the clock ticks, which also
// keep the time of threads that ended, when one of them ended.
func cpuBetween(a, b procCPU) time.Duration {
	var ns int64
	for tid, before := range a.tasks {
		after, ok := b.tasks[tid]
		if !ok || after < before {
			return time.Duration(b.ticks-a.ticks) * tick
		}
		ns += after - before
	}
	for tid, after := range b.tasks {
		if _, ok := a.tasks[tid]; !ok {
			ns += after
		}
	}
	return time.Duration(ns)
}

// readMachineBusy returns the clock ticks all CPUs of the machine have spent
// busy (anything but idle and waiting for I/O), from the first line of /proc/stat.
func readMachineBusy() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine CPU: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	busy, err := parseMachineBusy(line)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	return busy, nil
}

// parseMachineBusy reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal [guest guest_nice]. Guest time is already in user
// and nice, so busy is the sum of the others but idle and iowait.
func parseMachineBusy(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("not the cpu line with 8 counters: %q", line)
	}
	var busy int64
	for i, name := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
		v, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if name != "idle" && name != "iowait" {
			busy += v
		}
	}
	return busy, nil
}

// sample is the CPU counters at one moment of a run.
type sample struct {
	at          time.Time
	proxy       procCPU // the proxy's process; zero for direct
	machineBusy int64   // ticks (readMachineBusy)
}

// sampler reads the counters every period while pgbench runs, so that the
// CPU per transaction can be taken over the steady part of the run alone
// (window), without the connections at its start and end.
type sampler struct {
	pid  int // the proxy's process, or 0
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []sample
	err     error
}

const samplePeriod = 100 * time.Millisecond

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(samplePeriod)
	defer t.Stop()
	for {
		s.take()
		select {
		case <-s.stop:
			s.take()
			return
		case <-t.C:
		}
	}
}

func (s *sampler) take() {
	var smp sample
	var err error
	if s.pid != 0 {
		smp.proxy, err = readProcCPU(s.pid)
	}
	if err == nil {
		smp.machineBusy, err = readMachineBusy()
	}
	smp.at = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.samples = append(s.samples, smp)
}

// finish stops the sampler and returns its samples in time order.
func (s *sampler) finish() ([]sample, error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.err
}

// window is the steady part of a run, between two samples.
type window struct {
	from, to sample
}

// steadyWindow picks the samples that bound the steady part of a run whose
// transactions ended from first to last (µs since the epoch): the first
// sample at least skip after the first transaction and the last at least
// skip before the last one. With too short a run it takes the whole run.
func steadyWindow(samples []sample, first, last int64, skip time.Duration) (window, bool) {
	if len(samples) < 2 {
		return window{}, false
	}
	from, to := -1, -1
	for i, s := range samples {
		at := s.at.UnixMicro()
		if from < 0 && at >= first+skip.Microseconds() {
			from = i
		}
		if at <= last-skip.Microseconds() {
			to = i
		}
	}
	if from < 0 || to <= from {
		return window{samples[0], samples[len(samples)-1]}, true
	}
	return window{samples[from], samples[to]}, true
}

// perTx is the CPU per transaction in µs.
func perTx(d time.Duration, tx int64) float64 {
	if tx <= 0 {
		return math.NaN()
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(tx)
}
