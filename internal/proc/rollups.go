package proc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// WaitRollups polls GET adminURL/api/rollups of a pgrollup until every
// rollup is active, reporting each change of a rollup's status through
// progress; it fails when a build fails, exited is closed (pgrollup ended)
// or limit has passed. How the benchmarks wait for their builds.
func WaitRollups(ctx context.Context, adminURL string, exited <-chan struct{}, limit time.Duration, progress func(format string, args ...any)) error {
	type state struct {
		Name      string  `json:"name"`
		Status    string  `json:"status"`
		Version   string  `json:"version"`
		Rows      int64   `json:"rows"`
		Bytes     int64   `json:"bytes"`
		LastError *string `json:"last_error"`
	}
	t0 := time.Now()
	last := map[string]string{}
	for {
		var states []state
		// Until the admin listener is up (pgrollup starts it after the
		// catalog), the request fails; that is retried.
		body, err := Get(ctx, adminURL+"/api/rollups")
		if err == nil {
			if err = json.Unmarshal(body, &states); err != nil {
				return fmt.Errorf("GET %s/api/rollups: %w", adminURL, err)
			}
		}
		if err != nil && time.Since(t0) > limit {
			return err
		}
		sort.Slice(states, func(i, j int) bool { return states[i].Name < states[j].Name })
		active := 0
		for _, s := range states {
			line := s.Status
			switch s.Status {
			case "active":
				active++
				line = fmt.Sprintf("active, version %s: %d rows, %d bytes", s.Version, s.Rows, s.Bytes)
			case "failed":
				msg := ""
				if s.LastError != nil {
					msg = *s.LastError
				}
				return fmt.Errorf("the build of rollup %s failed: %s", s.Name, msg)
			}
			if line != last[s.Name] {
				progress("%7s  %-20s %s", time.Since(t0).Round(10*time.Millisecond), s.Name, line)
				last[s.Name] = line
			}
		}
		if len(states) > 0 && active == len(states) {
			return nil
		}
		if time.Since(t0) > limit {
			return fmt.Errorf("rollups not all active after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("pgrollup exited while building")
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// LoadAverage is the 1, 5 and 15 minute load average, or "unknown": the
// benchmarks print it with their figures.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
