package benchkit

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MS is d in milliseconds, for figures.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Median is the median of xs (durations or ratios): the middle value, or
// the mean of the two middle values for an even count; 0 for none.
func Median[T ~int64 | ~float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianKnown is the median of the figures of xs that are known, NaN
// standing for one that is not (a failed run); NaN when none is known.
func MedianKnown(xs []float64) float64 {
	var known []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			known = append(known, x)
		}
	}
	if len(known) == 0 {
		return math.NaN()
	}
	return Median(known)
}

// PassMiss is a goal's verdict: PASS when ok, else MISS.
func PassMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// SecondsArg is d in whole seconds, rounded up: pgbench's -T.
func SecondsArg(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// ParseInts reads a comma-separated flag value of positive numbers, such
// as client counts.
func ParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
