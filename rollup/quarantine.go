package rollup

import (
	"fmt"
	"time"
)

// KindMismatch is the Kind of a BrokenVersion taken out of service because a
// hit checked against the warehouse disagreed with it (continuous
// verification); its files are intact, but none of them may answer again.
const KindMismatch = "VerifyMismatch"

// MarkQuarantined takes the active version out of service because a hit
// answered from it disagreed with the warehouse while its source tables had
// not changed since the build: the state then has no active version, status
// quarantined, and a LastError naming the version and detail (the first
// differing row). It reports whether it did; a version no longer active
// (replaced or taken out meanwhile) changes nothing.
//
// The version is recorded in Broken with every file, so that the scheduler
// rebuilds the rollup in full, every process drops what it holds of it, and
// no incremental build carries any of its partitions forward.
func (s *State) MarkQuarantined(version, detail, by string, at time.Time) bool {
	if s.Active == nil || s.Active.ID != version {
		return false
	}
	files := s.Active.Files()
	first := ""
	if len(files) > 0 {
		first = files[0]
	}
	b := BrokenVersion{Version: version, File: first, Kind: KindMismatch, Error: detail, At: at.UTC(), By: by, Files: files}
	s.Active = nil
	s.Status = StatusQuarantined
	s.LastError = fmt.Sprintf("version %s quarantined: a hit disagreed with the warehouse: %s; the rollup is rebuilt", version, detail)
	s.LastErrorAt = b.At
	s.Broken = append(s.Broken, b)
	if n := len(s.Broken) - MaxBrokenRecords; n > 0 {
		s.Broken = append([]BrokenVersion(nil), s.Broken[n:]...)
	}
	return true
}

// carries reports whether v holds a file b took out of service: the broken
// file itself, or for a quarantined version any of its files.
func (b *BrokenVersion) carries(v *Version) bool {
	if v.Partition(b.File) != nil {
		return true
	}
	if b.Kind != KindMismatch {
		return false
	}
	for _, f := range b.Files {
		if v.Partition(f) != nil {
			return true
		}
	}
	return false
}
