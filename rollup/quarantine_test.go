package rollup

import (
	"strings"
	"testing"
	"time"
)

// TestMarkQuarantined: only the active version is quarantined; it stops
// answering, the error names it and the detail, and no later version may
// carry any of its files forward.
func TestMarkQuarantined(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v1 := &Version{ID: "v1", Partitions: []Partition{{File: "r/i/v1/a.parquet"}, {File: "r/i/v1/b.parquet"}}}
	st := &State{Status: StatusActive, Active: v1}
	if st.MarkQuarantined("v0", "row 1", "p", at) {
		t.Fatal("quarantined a version that is not active")
	}
	if !st.MarkQuarantined("v1", "row 2: rollup (x='1'), warehouse (x='2')", "p", at) {
		t.Fatal("did not quarantine the active version")
	}
	if st.Active != nil || st.Status != StatusQuarantined || !strings.Contains(st.LastError, "v1") || !strings.Contains(st.LastError, "row 2") {
		t.Errorf("after quarantine: %+v", st)
	}
	b := st.LastBroken()
	if b == nil || b.Kind != KindMismatch || b.Version != "v1" || len(b.Files) != 2 {
		t.Fatalf("broken record %+v", b)
	}
	if st.MarkQuarantined("v1", "again", "p", at) {
		t.Error("quarantined twice")
	}
	carried := &Version{ID: "v2", Partitions: []Partition{{File: "r/i/v2/a.parquet"}, {File: "r/i/v1/b.parquet"}}}
	if got := st.BrokenFileOf(carried); got == "" {
		t.Error("a version carrying a quarantined partition forward is not refused")
	}
	fresh := &Version{ID: "v3", Partitions: []Partition{{File: "r/i/v3/a.parquet"}}}
	if got := st.BrokenFileOf(fresh); got != "" {
		t.Errorf("a fresh version refused for %s", got)
	}
	if !SameCounters(map[string]int64{"a": 1}, map[string]int64{"a": 1}) || SameCounters(map[string]int64{"a": 1}, map[string]int64{"a": 2}) || SameCounters(nil, nil) {
		t.Error("SameCounters")
	}
}
