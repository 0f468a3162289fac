package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// txLog is what pgbench's per-transaction logs (-l) say about one run.
type txLog struct {
	latencies []int64 // µs, one per completed transaction
	ends      []int64 // when each completed, µs since the epoch
	failed    int64   // lines with "failed" or "skipped" instead of a latency
}

// readTxLogs reads every log pgbench wrote for one run: with -j N it writes
// PREFIX.PID for its first thread and PREFIX.PID.I for the others.
func readTxLogs(prefix string) (txLog, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil {
		return txLog{}, err
	}
	if len(files) == 0 {
		return txLog{}, fmt.Errorf("no pgbench transaction log %s.*", prefix)
	}
	var l txLog
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return txLog{}, err
		}
		err = l.parse(f)
		f.Close()
		if err != nil {
			return txLog{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	return l, nil
}

// parse adds the lines of one log: client_id transaction_no time script_no
// time_epoch time_us [schedule_lag] [retries], where time is the latency in
// µs (or "failed" or "skipped") and time_epoch, time_us when it completed.
func (l *txLog) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			return fmt.Errorf("line %d: %d fields, want at least 6", n, len(f))
		}
		if f[2] == "failed" || f[2] == "skipped" {
			l.failed++
			continue
		}
		lat, err1 := strconv.ParseInt(f[2], 10, 64)
		sec, err2 := strconv.ParseInt(f[4], 10, 64)
		us, err3 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("line %d: cannot read %q", n, sc.Text())
		}
		l.latencies = append(l.latencies, lat)
		l.ends = append(l.ends, sec*1e6+us)
	}
	return sc.Err()
}

// span returns when the first and the last transaction completed.
func (l *txLog) span() (first, last int64) {
	if len(l.ends) == 0 {
		return 0, 0
	}
	return slices.Min(l.ends), slices.Max(l.ends)
}

// completedIn counts the transactions that completed in (from, to], µs since the epoch.
func (l *txLog) completedIn(from, to int64) int64 {
	var n int64
	for _, e := range l.ends {
		if e > from && e <= to {
			n++
		}
	}
	return n
}

// percentiles returns the latencies at each of ps (0 < p ≤ 100) in µs, by
// the nearest-rank method, or NaN without transactions.
func (l *txLog) percentiles(ps ...float64) []float64 {
	sorted := slices.Clone(l.latencies)
	slices.Sort(sorted)
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = percentile(sorted, p)
	}
	return out
}

// percentile is the nearest-rank percentile p of sorted values: the smallest
// value with at least p% of the values at or below it.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1])
}
