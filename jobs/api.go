package jobs

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// Status is one rollup as GET /api/rollups reports it (DESIGN.md §2).
type Status struct {
	Name       string        `json:"name"`
	Status     rollup.Status `json:"status"`
	Version    string        `json:"version"` // "" when no version is active
	Rows       int64         `json:"rows"`
	Bytes      int64         `json:"bytes"`
	BuiltAt    *time.Time    `json:"built_at"`
	LastError  *string       `json:"last_error"`
	Identity   string        `json:"identity"`
	Table      string        `json:"table"`
	Partitions int           `json:"partitions"`
	Truncated  bool          `json:"truncated"`
	Warning    string        `json:"warning,omitempty"`
	Progress   string        `json:"progress,omitempty"` // of the build in progress
	QueuedAt   *time.Time    `json:"queued_at,omitempty"`
	Retired    bool          `json:"retired,omitempty"`
}

// StatusOf summarises a state; st may be nil (nothing recorded yet).
func StatusOf(def *rollup.Definition, st *rollup.State) Status {
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
	State *rollup.State `json:"state"`
}

// Lookup reads the catalog state of a definition.
type Lookup func(name, identity string) *rollup.State

// API serves the rollup part of the admin HTTP API.
type API struct {
	Scheduler *Scheduler
	Lookup    Lookup

	mu sync.RWMutex // guards Scheduler once the API serves
}

// SetScheduler replaces the scheduler, whose targets the API reports, when
// the configuration is reloaded.
func (a *API) SetScheduler(s *Scheduler) {
	a.mu.Lock()
	a.Scheduler = s
	a.mu.Unlock()
}

func (a *API) scheduler() *Scheduler {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.Scheduler
}

// Statuses returns the status of every configured rollup, in configuration order.
func (a *API) Statuses() []Status {
	targets := a.scheduler().o.Targets
	out := make([]Status, 0, len(targets))
	for _, t := range targets {
		out = append(out, StatusOf(t.Def, a.Lookup(t.Def.Name, t.Def.Identity())))
	}
	return out
}

// Handler returns the handler of GET /api/rollups, GET /api/rollups/{name} and
// POST /api/rollups/{name}/refresh (202 with the queued job).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/rollups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Statuses())
	})
	mux.HandleFunc("GET /api/rollups/{name}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := a.scheduler().Target(r.PathValue("name"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown rollup " + r.PathValue("name")})
			return
		}
		st := a.Lookup(t.Def.Name, t.Def.Identity())
		writeJSON(w, http.StatusOK, Detail{Status: StatusOf(t.Def, st), State: st})
	})
	mux.HandleFunc("POST /api/rollups/{name}/refresh", func(w http.ResponseWriter, r *http.Request) {
		job, err := a.scheduler().Refresh(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, ErrUnknownRollup):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusAccepted, map[string]any{"name": job.Def.Name, "job": job.ID, "queued_at": job.Queued})
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
