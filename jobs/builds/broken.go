package builds

import (
	"context"
	"fmt"
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// brokenBackoff delays the rebuild of a version found broken at at when versions
// keep breaking (storage losing files, a worker with the wrong storage settings),
// so that such a loop does not scan the warehouse back to back: none for the first
// two in an hour, then 1, 2, 4 ... minutes, at most 30.
func brokenBackoff(broken []rollup.BrokenVersion, at time.Time) time.Duration {
	n := 0
	for _, b := range broken {
		if !b.At.Before(at.Add(-time.Hour)) && !b.At.After(at) {
			n++
		}
	}
	if n <= 2 {
		return 0
	}
	return min(time.Minute<<min(n-3, 5), 30*time.Minute)
}

// Scrub compares the files of every configured rollup's active version with what
// storage lists: a file it does not list, or lists with another size or ETag than
// the build recorded, is broken (integrity.Checker.Report). Files still cached by the
// workers would otherwise go on answering until those caches lose them, and only
// then show the damage.
func (s *Scheduler) Scrub(ctx context.Context) error {
	var firstErr error
	for _, t := range s.o.Targets {
		st, err := s.o.Catalog.Get(ctx, t.Def.Name, t.Def.Identity())
		if err != nil || st == nil || st.Active == nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		objs, err := s.o.Storage.List(ctx, t.Def.Name+"/"+t.Def.Identity()+"/")
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		listed := make(map[string]rollup.Object, len(objs))
		for _, o := range objs {
			listed[o.Key] = o
		}
		for _, p := range st.Active.Partitions {
			var fe *rollup.FileError
			o, ok := listed[p.File]
			switch {
			case !ok:
				fe = &rollup.FileError{Key: p.File, Kind: rollup.FileMissing, Err: fmt.Errorf("not listed in %s", s.o.Storage)}
			case o.Size != p.Bytes:
				fe = &rollup.FileError{Key: p.File, Kind: rollup.FileChecksum, Err: fmt.Errorf("%d bytes in storage, the build stored %d", o.Size, p.Bytes)}
			case p.ETag != "" && o.ETag != "" && o.ETag != p.ETag:
				fe = &rollup.FileError{Key: p.File, Kind: rollup.FileChecksum, Err: fmt.Errorf("ETag %s in storage, the build stored %s: the object was replaced", o.ETag, p.ETag)}
			}
			if fe == nil {
				continue
			}
			if s.o.Files == nil {
				s.o.Log.Warn("broken rollup file", "rollup", t.Def.Name, "file", p.File, "kind", fe.Kind, "err", fe.Err)
				continue
			}
			s.o.Files.Report(ctx, fe)
			break // the version is out of service now
		}
	}
	return firstErr
}
