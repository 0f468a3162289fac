package builds

import (
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// TestIdleStatusQuarantined: a version quarantined by verification shows as
// quarantined until its rebuild starts, a broken file as failed.
func TestIdleStatusQuarantined(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	newState := func() *rollup.State {
		return &rollup.State{Active: &rollup.Version{ID: "v1", Partitions: []rollup.Partition{{File: "r/i/v1/a.parquet"}}}}
	}
	q := newState()
	q.MarkQuarantined("v1", "row 1", "p", at)
	q.QueuedAt = at.Add(time.Second)
	b := newState()
	b.MarkBroken(&rollup.FileError{Key: "r/i/v1/a.parquet", Kind: rollup.FileMissing}, "p", at)
	b.QueuedAt = at.Add(time.Second)
	building := newState()
	building.MarkQuarantined("v1", "row 1", "p", at)
	building.Building = &rollup.Build{Job: "j"}
	for _, tt := range []struct {
		name string
		st   *rollup.State
		want rollup.Status
	}{
		{"quarantined, rebuild queued", q, rollup.StatusQuarantined},
		{"broken file, rebuild queued", b, rollup.StatusFailed},
		{"quarantined, rebuilding", building, rollup.StatusBuilding},
	} {
		if got := idleStatus(tt.st); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
