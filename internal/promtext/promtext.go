// Package promtext reads the Prometheus text exposition format that
// /metrics serves into samples by series, for the tests and benchmarks that
// compare scrapes.
package promtext

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// Parse returns every sample of a /metrics page by its series as exposed
// (name with labels). Comments and lines whose value is not a number are
// skipped.
func Parse(body []byte) (map[string]float64, error) {
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		samples[line[:i]] = v
	}
	return samples, sc.Err()
}
