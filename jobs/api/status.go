package api

import (
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// Status is one rollup as GET /api/rollups reports it (the README's Admin API).
type Status struct {
	Name       string        `json:"name"`
	Status     rollup.Status `json:"status"`
	Version    string        `json:"version"`    // "" when no version is active
	Rows       int64         `json:"rows"`       // of the active version
	Bytes      int64         `json:"bytes"`      // of the active version's files
	BuiltAt    *time.Time    `json:"built_at"`   // of the active version
	LastError  *string       `json:"last_error"` // a failed build's or a broken file's; nil once a build succeeds
	Identity   string        `json:"identity"`   // the hash of the definition
	Table      string        `json:"table"`
	Partitions int           `json:"partitions"`         // of the active version
	Truncated  bool          `json:"truncated"`          // the version stopped at max_rows
	Warning    string        `json:"warning,omitempty"`  // the version's, such as its truncation
	Progress   string        `json:"progress,omitempty"` // of the build in progress
	QueuedAt   *time.Time    `json:"queued_at,omitempty"`
	Retired    bool          `json:"retired,omitempty"` // no longer configured
	// Window is what the active version's clock-relative filters were folded to
	// (rollup.WindowText); "" without such filters.
	Window string `json:"window,omitempty"`
}

// statusOf summarises a state; st may be nil (nothing recorded yet).
func statusOf(def *rollup.Definition, st *rollup.State) Status {
	s := Status{Name: def.Name, Identity: def.Identity(), Table: def.Table, Status: rollup.StatusPending}
	if st == nil {
		return s
	}
	s.Status = st.Status
	if st.Building != nil {
		s.Status, s.Progress = rollup.StatusBuilding, st.Building.Progress
	}
	if v := st.Active; v != nil {
		built := v.BuiltAt
		s.Version, s.Rows, s.Bytes, s.BuiltAt = v.ID, v.Rows, v.Bytes, &built
		s.Partitions, s.Truncated, s.Warning = len(v.Partitions), v.Truncated, v.Warning
		s.Window = rollup.WindowText(v.Windows)
	}
	if st.LastError != "" {
		e := st.LastError
		s.LastError = &e
	}
	if !st.QueuedAt.IsZero() {
		q := st.QueuedAt
		s.QueuedAt = &q
	}
	s.Retired = !st.Retired.IsZero()
	return s
}

// Detail is GET /api/rollups/{name}: the summary plus the whole catalog record.
type Detail struct {
	Status
	State *rollup.State `json:"state"` // nil before anything was recorded
}
