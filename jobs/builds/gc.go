package builds

import (
	"context"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// CollectGarbage deletes the stored files that no current version references and that
// have been unreferenced, and unwritten, for the grace period; it also drops the catalog
// records of definitions retired longer than that. It returns the deleted keys.
func (s *Scheduler) CollectGarbage(ctx context.Context) ([]string, error) {
	states, err := s.o.Catalog.List(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	keep := map[string]bool{}
	var building []string
	var expired []*rollup.State
	for _, st := range states {
		if !st.Retired.IsZero() && now.Sub(st.Retired) >= s.o.GCGrace {
			expired = append(expired, st)
			continue
		}
		if st.Active != nil {
			for _, f := range st.Active.Files() {
				keep[f] = true
			}
		}
		if st.Building != nil {
			building = append(building, st.Name+"/"+st.Identity+"/"+st.Building.Version+"/")
		}
	}
	objs, err := s.o.Storage.List(ctx, "")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var deleted []string
	for _, o := range objs {
		if keep[o.Key] || hasAnyPrefix(o.Key, building) {
			continue
		}
		seen[o.Key] = true
		since, ok := s.unrefSince[o.Key]
		if !ok {
			s.unrefSince[o.Key] = now
			since = now
		}
		if now.Sub(since) < s.o.GCGrace || now.Sub(o.ModTime) < s.o.GCGrace {
			continue
		}
		if err := s.o.Storage.Delete(ctx, o.Key); err != nil {
			return deleted, err
		}
		deleted = append(deleted, o.Key)
		delete(seen, o.Key)
	}
	for k := range s.unrefSince {
		if !seen[k] {
			delete(s.unrefSince, k)
		}
	}
	for _, st := range expired {
		if err := s.o.Catalog.Delete(ctx, st.Name, st.Identity); err != nil {
			return deleted, err
		}
	}
	if len(deleted) > 0 {
		s.o.Log.Info("deleted unreferenced rollup files", "files", len(deleted))
	}
	return deleted, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
