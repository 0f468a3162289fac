package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/pgrollup/pgrollup/jobs/builds"
	"github.com/pgrollup/pgrollup/rollup"
)

// Lookup reads the catalog state of a definition.
type Lookup func(name, identity string) *rollup.State

// Rollups serves the rollup part of the admin HTTP API.
type Rollups struct {
	// Scheduler knows the configured rollups and queues their refreshes.
	Scheduler *builds.Scheduler
	// Lookup reads their states from the catalog.
	Lookup Lookup

	mu sync.RWMutex // guards Scheduler once the API serves
}

// SetScheduler replaces the scheduler, whose targets the API reports, when
// the configuration is reloaded.
func (a *Rollups) SetScheduler(s *builds.Scheduler) {
	a.mu.Lock()
	a.Scheduler = s
	a.mu.Unlock()
}

func (a *Rollups) scheduler() *builds.Scheduler {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.Scheduler
}

// Statuses returns the status of every configured rollup, in configuration order.
func (a *Rollups) Statuses() []Status {
	targets := a.scheduler().Targets()
	out := make([]Status, 0, len(targets))
	for _, t := range targets {
		out = append(out, statusOf(t.Def, a.Lookup(t.Def.Name, t.Def.Identity())))
	}
	return out
}

// Handler returns the handler of GET /api/rollups, GET /api/rollups/{name} and
// POST /api/rollups/{name}/refresh (202 with the queued job).
func (a *Rollups) Handler() http.Handler {
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
		writeJSON(w, http.StatusOK, Detail{Status: statusOf(t.Def, st), State: st})
	})
	mux.HandleFunc("POST /api/rollups/{name}/refresh", func(w http.ResponseWriter, r *http.Request) {
		job, err := a.scheduler().Refresh(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, builds.ErrUnknownRollup):
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
