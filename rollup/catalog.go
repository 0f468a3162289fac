package rollup

import (
	"fmt"
	"time"
)

// Status is a rollup's state as the catalog, the admin API and SHOW ROLLUPS report it.
// It describes activity; whether a rollup can answer queries depends only on State.Active.
type Status string

// Rollup statuses.
const (
	// StatusPending: no version exists yet; a build is queued or about to be.
	StatusPending Status = "pending"
	// StatusBuilding: a build is running. The active version, if any, keeps serving.
	StatusBuilding Status = "building"
	// StatusActive: the active version is the result of the last build.
	StatusActive Status = "active"
	// StatusFailed: the last build failed (LastError says why), and the active version,
	// if any, keeps serving; or a broken file took the active version out of service
	// (State.Broken), and nothing serves until the rebuild.
	StatusFailed Status = "failed"
	// StatusQuarantined: a hit checked against the warehouse disagreed with it
	// while the source tables had not changed since the build, so the version
	// was taken out of service everywhere (LastError names the first
	// differing row) and the rollup is rebuilt in full.
	StatusQuarantined Status = "quarantined"
	// StatusStale: a refresh is due (a schedule fired, the refresh key changed, or it was
	// requested) and queued; the active version keeps serving until it completes.
	StatusStale Status = "stale"
)

// Column roles.
const (
	RoleDimension = "dimension"
	RoleTime      = "time"
	RoleMeasure   = "measure"
)

// Type is a Postgres type as RowDescription carries it.
type Type struct {
	OID    uint32 `json:"oid"`
	Typmod int32  `json:"typmod"` // -1: none
	Name   string `json:"name"`   // format_type() spelling, e.g. "numeric(12,2)"
}

// Column is one column of a rollup's Parquet files.
type Column struct {
	// Name is the Parquet column, as package layout names it: "d<i>" for dimension i,
	// "t" for the time bucket, "m<i>_<part>" for a part of measure i.
	Name string `json:"name"`
	Role string `json:"role"` // dimension, time or measure
	// Index is the position of the dimension or measure in the definition; 0 for time.
	Index int `json:"index"`
	// Expr is the definition's expression: the column reference, or the whole measure.
	Expr string `json:"expr"`
	// Part is what a measure column holds: sum, count, min, max or count_distinct
	// (layout.PartSum, ...).
	Part string `json:"part,omitempty"`
	// Type is the Postgres type of the stored value, as Postgres describes the build
	// query's column (aggregates carry no typmod; a time bucket has the time column's type).
	Type Type `json:"type"`
	// ArgType is the type of the aggregated expression of a measure part; nil for count(*).
	ArgType *Type `json:"arg_type,omitempty"`
	// DuckDBType is the type the Parquet file stores the value as, e.g. DECIMAL(38,2)
	// (layout.StorageType). VARCHAR for Postgres types without an exact DuckDB
	// equivalent (the text output).
	DuckDBType string `json:"duckdb_type"`
}

// Partition is one Parquet file of a version, covering [Start, End) of the time
// dimension. For a timestamptz dimension the bounds are instants; for timestamp and
// date dimensions they are wall-clock values expressed in UTC. Zero Start and End: the
// partition is not bounded in time (an unpartitioned rollup without build_range).
type Partition struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	File      string    `json:"file"` // storage key
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	BuiltAt   time.Time `json:"built_at"`
	Watermark string    `json:"watermark,omitempty"` // the refresh key's value when the partition was built
	Truncated bool      `json:"truncated,omitempty"` // max_rows cut this partition short
	// Version is the version that built this file; an incremental version carries
	// partitions of earlier versions forward unchanged.
	Version string `json:"version"`
	// SHA256 is the hex SHA-256 of the file as the build stored it; readers verify
	// it before they use the file. Empty for files built before it was recorded.
	SHA256 string `json:"sha256,omitempty"`
	// ETag is the storage's entity tag of the object when it was stored (S3), which
	// changes whenever the object is replaced; empty where storage has none.
	ETag string `json:"etag,omitempty"`
}

// Bounded reports whether the partition covers a limited time range.
func (p Partition) Bounded() bool { return !p.Start.IsZero() || !p.End.IsZero() }

// Version is one complete, immutable build of a rollup: every file it names is in
// storage before the version is recorded.
type Version struct {
	ID       string    `json:"id"`
	Identity string    `json:"identity"`
	Columns  []Column  `json:"columns"`
	TimeType *Type     `json:"time_type,omitempty"` // the time dimension's column type; nil without one
	Started  time.Time `json:"started"`             // when the build's snapshot was taken
	BuiltAt  time.Time `json:"built_at"`            // when the last file was stored
	// Partitions in time order. An unpartitioned version has one; a partitioned version
	// of an empty table has none.
	Partitions []Partition `json:"partitions"`
	// AllTime: the version holds every source row as of its build (no build_range), so
	// it covers queries without a time bound. Otherwise it covers the union of its
	// partitions' ranges.
	AllTime bool `json:"all_time"`
	// Windows: the definition's filters relative to the clock, as this build folded
	// them at Started in build_timezone. Versions recorded before windows were folded
	// have none, and do not answer queries if their definition has such a filter.
	Windows []Window `json:"windows,omitempty"`
	Rows    int64    `json:"rows"`
	Bytes   int64    `json:"bytes"`
	// Truncated: max_rows cut the build short; some rows are missing, so the version
	// must not answer queries.
	Truncated bool   `json:"truncated,omitempty"`
	Warning   string `json:"warning,omitempty"`
	Watermark string `json:"watermark,omitempty"` // the refresh key's value at the build's snapshot
	// Rebuilt lists the Start of each partition this version's build produced; the
	// others came from the previous version (incremental refresh).
	Rebuilt []time.Time `json:"rebuilt,omitempty"`
	// Incremental: the build rebuilt only the partitions inside update_window.
	Incremental bool `json:"incremental,omitempty"`
	// Merged: a lambda rollup's incremental build read only the rows from the
	// previous version's cutoff on and merged them with that version's
	// partition below it (lambda_merge.go).
	Merged bool `json:"merged,omitempty"`
	// Counters are the modification counters of the tables the build read
	// (Counters), taken just before its snapshot: while they have not moved,
	// the warehouse still holds the rows the version was built from, and a
	// hit checked against it must agree (continuous verification). nil when
	// a table had none.
	Counters map[string]int64 `json:"counters,omitempty"`
	// LambdaCutoff is a lambda rollup's cutoff (rollup/lambda.go): the version
	// holds exactly the rows whose time dimension lies below it, as of Started.
	// For a timestamptz dimension it is an instant; for timestamp and date
	// dimensions a wall-clock value expressed in UTC. Nil for other rollups.
	LambdaCutoff *time.Time `json:"lambda_cutoff,omitempty"`
	// LambdaCutoffID is the cutoff of a lambda rollup on an id column
	// (rollup/lambda_ids.go): the version holds exactly the rows whose id
	// lies below it, as of Started. Nil for other rollups.
	LambdaCutoffID *int64 `json:"lambda_cutoff_id,omitempty"`
}

// Files lists the storage keys of the version's partitions.
func (v *Version) Files() []string {
	out := make([]string, 0, len(v.Partitions))
	for _, p := range v.Partitions {
		out = append(out, p.File)
	}
	return out
}

// Partition returns the partition stored under key, or nil.
func (v *Version) Partition(key string) *Partition {
	for i := range v.Partitions {
		if v.Partitions[i].File == key {
			return &v.Partitions[i]
		}
	}
	return nil
}

// Column returns the column with the given Parquet name, or nil.
func (v *Version) Column(name string) *Column {
	for i := range v.Columns {
		if v.Columns[i].Name == name {
			return &v.Columns[i]
		}
	}
	return nil
}

// BuildRecord is one build attempt as the catalog remembers it.
type BuildRecord struct {
	Job         string      `json:"job"`
	Version     string      `json:"version,omitempty"` // the version it produced
	Reason      string      `json:"reason"`            // startup, every, cron, refresh_key, manual, ...
	Incremental bool        `json:"incremental,omitempty"`
	Partitions  []time.Time `json:"partitions,omitempty"` // Start of every partition built
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"`
	Result      string      `json:"result"` // success, error, skipped
	Error       string      `json:"error,omitempty"`
	Final       bool        `json:"final,omitempty"` // failed for good: the job is not retried
	Worker      string      `json:"worker,omitempty"`
}

// Build is a build in progress.
type Build struct {
	Job       string    `json:"job"`
	Worker    string    `json:"worker"`
	Version   string    `json:"version"` // the version being written; its files are not garbage
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
	Progress  string    `json:"progress,omitempty"`
}

// State is everything the catalog knows about one rollup definition. It is stored as
// JSON under the key of the rollup's name and identity, so two definitions of the same
// name (a config change, a rolling deploy) never share a record.
type State struct {
	Name     string      `json:"name"`
	Identity string      `json:"identity"`
	Def      *Definition `json:"definition"`
	Status   Status      `json:"status"`
	// Active is the version that answers queries; nil while none is built.
	Active *Version `json:"active,omitempty"`
	// Building is the build in progress, if any.
	Building *Build `json:"building,omitempty"`
	// Queued is when the most recent build job was queued and why; cleared when a build
	// that started after it finishes.
	QueuedAt     time.Time `json:"queued_at,omitzero"`
	QueuedReason string    `json:"queued_reason,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	// RefreshKey is the refresh key's value the scheduler last saw.
	RefreshKey string `json:"refresh_key,omitempty"`
	// Builds are the most recent build attempts, newest last.
	Builds []BuildRecord `json:"builds,omitempty"`
	// Retired: the definition is no longer in any configuration that published it; its
	// files are collected after the grace period.
	Retired time.Time `json:"retired,omitzero"`
	// Broken lists the versions taken out of service because a file of theirs was
	// found missing, corrupt or unreadable, newest last (at most MaxBrokenRecords).
	Broken    []BrokenVersion `json:"broken,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// BrokenVersion is an active version taken out of service because of one of its
// files (the README's "Broken rollup files"): no process answers from any of its files any more, and the
// scheduler rebuilds the rollup in full.
type BrokenVersion struct {
	Version string    `json:"version"`
	File    string    `json:"file"` // the storage key found broken
	Kind    string    `json:"kind"` // FileMissing, FileChecksum or FileRead
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
	By      string    `json:"by,omitempty"` // the process that found it
	// Files are every file of the version, which caches and in-memory copies drop.
	Files []string `json:"files"`
}

// MaxBrokenRecords bounds State.Broken.
const MaxBrokenRecords = 10

// MarkBroken takes the active version out of service because the file fe names is
// broken, if the active version names that file: the state then has no active
// version, status failed and a LastError naming the file. It reports whether it
// did; a file of no active version (replaced meanwhile) changes nothing.
func (s *State) MarkBroken(fe *FileError, by string, at time.Time) bool {
	if s.Active == nil || s.Active.Partition(fe.Key) == nil {
		return false
	}
	b := BrokenVersion{Version: s.Active.ID, File: fe.Key, Kind: fe.Kind, Error: fe.Error(), At: at.UTC(), By: by, Files: s.Active.Files()}
	s.Active = nil
	s.Status = StatusFailed
	s.LastError = fmt.Sprintf("version %s no longer answers: %s; the rollup is rebuilt", b.Version, b.Error)
	s.LastErrorAt = b.At
	s.Broken = append(s.Broken, b)
	if n := len(s.Broken) - MaxBrokenRecords; n > 0 {
		s.Broken = append([]BrokenVersion(nil), s.Broken[n:]...)
	}
	return true
}

// LastBroken is the newest entry of Broken, or nil.
func (s *State) LastBroken() *BrokenVersion {
	if len(s.Broken) == 0 {
		return nil
	}
	return &s.Broken[len(s.Broken)-1]
}

// BrokenFileOf returns a file of v that was found broken in an earlier version (an
// incremental build carries partitions forward), or "".
func (s *State) BrokenFileOf(v *Version) string {
	for i := range s.Broken {
		if b := &s.Broken[i]; b.carries(v) {
			return b.File
		}
	}
	return ""
}

// MaxBuildRecords bounds State.Builds.
const MaxBuildRecords = 20

// AddBuild appends a build record, keeping the newest MaxBuildRecords.
func (s *State) AddBuild(r BuildRecord) {
	s.Builds = append(s.Builds, r)
	if n := len(s.Builds) - MaxBuildRecords; n > 0 {
		s.Builds = append([]BuildRecord(nil), s.Builds[n:]...)
	}
}
