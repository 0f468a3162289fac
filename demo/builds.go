package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
)

// rollupStatus is the part of GET /api/rollups the demo shows.
type rollupStatus struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Version   string     `json:"version"`
	Rows      int64      `json:"rows"`
	Bytes     int64      `json:"bytes"`
	BuiltAt   *time.Time `json:"built_at"`
	LastError *string    `json:"last_error"`
	Progress  string     `json:"progress"`
}

// listRollups reads GET /api/rollups from pgrollup's admin API.
func listRollups(ctx context.Context, admin string) ([]rollupStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/api/rollups", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/rollups: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var list []rollupStatus
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET /api/rollups: %w", err)
	}
	return list, nil
}

// waitForBuilds follows the rollups' first builds, which pgrollup starts on
// its own because no version exists yet, by polling the admin API the way
// `pgrollup status` does, and prints each change of a rollup's state.
func waitForBuilds(ctx context.Context, p *proc.Process, admin string, limit time.Duration) ([]rollupStatus, error) {
	t0 := time.Now()
	last := map[string]string{}
	for {
		list, err := listRollups(ctx, admin)
		if err != nil {
			return nil, err
		}
		active := 0
		for _, r := range list {
			line := r.Status
			switch r.Status {
			case "building":
				line = "building"
				if r.Progress != "" {
					line += ": " + r.Progress
				}
			case "active":
				active++
				line = fmt.Sprintf("active: %s rows, %s of Parquet", thousands(r.Rows), byteSize(r.Bytes))
			case "failed":
				return nil, fmt.Errorf("rollup %s failed to build: %s", r.Name, deref(r.LastError))
			}
			if last[r.Name] != line {
				last[r.Name] = line
				fmt.Printf("    %6s  %-32s %s\n", benchkit.Since(t0), r.Name, line)
			}
		}
		if active == len(list) {
			benchkit.Done("%d rollups built (%s)", len(list), benchkit.Since(t0))
			return list, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.Exited:
			return nil, fmt.Errorf("pgrollup exited while building (%s)", exitText(p.WaitErr))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Since(t0) > limit {
			return nil, fmt.Errorf("the rollups were not built within %s", limit)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// thousands prints n with thousands separators: 5,000,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// byteSize prints n bytes in the largest fitting binary unit.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
