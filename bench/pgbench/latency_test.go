package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTxLogParse(t *testing.T) {
	var l txLog
	err := l.parse(strings.NewReader(`0 1 160 0 1796605209 901
1 1 158 0 1796605209 999000
2 1 failed 0 1796605210 100
3 1 skipped 0 1796605210 200 55
4 7 300 0 1796605210 5000 12 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.latencies, []int64{160, 158, 300}; !slices.Equal(got, want) {
		t.Fatalf("latencies = %v, want %v", got, want)
	}
	if got, want := l.ends, []int64{1796605209000901, 1796605209999000, 1796605210005000}; !slices.Equal(got, want) {
		t.Fatalf("ends = %v, want %v", got, want)
	}
	if l.failed != 2 {
		t.Fatalf("failed = %d, want 2", l.failed)
	}
	first, last := l.span()
	if first != 1796605209000901 || last != 1796605210005000 {
		t.Fatalf("span = %d..%d", first, last)
	}
	if n := l.completedIn(1796605209000901, 1796605210005000); n != 2 {
		t.Fatalf("completedIn (first, last] = %d, want 2", n)
	}

	for _, bad := range []string{"0 1 160 0 1796605209\n", "0 1 1x0 0 1796605209 901\n"} {
		var l txLog
		if err := l.parse(strings.NewReader(bad)); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}

func TestReadTxLogs(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "tx")
	for name, text := range map[string]string{
		"tx.4242":   "0 1 100 0 10 0\n1 1 200 0 10 5\n",
		"tx.4242.1": "2 1 300 0 11 0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := readTxLogs(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.latencies) != 3 {
		t.Fatalf("%d transactions read, want 3", len(l.latencies))
	}
	if got := l.percentiles(50, 100); got[0] != 200 || got[1] != 300 {
		t.Fatalf("percentiles = %v, want [200 300]", got)
	}
	if _, err := readTxLogs(filepath.Join(dir, "none")); err == nil {
		t.Fatal("readTxLogs without logs: no error")
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []int64
		p      float64
		want   float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p99.9 of 1..100", hundred, 99.9, 100},
		{"p100 of 1..100", hundred, 100, 100},
		{"a tiny p is the smallest", hundred, 0.001, 1},
		{"one value", []int64{7}, 99, 7},
		{"p50 of two", []int64{3, 9}, 50, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("percentile = %v, want %v", got, tc.want)
			}
		})
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Fatalf("percentile of nothing = %v, want NaN", got)
	}
}
