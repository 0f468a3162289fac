package integrity

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// Options configures a Checker.
type Options struct {
	// Catalog is where a broken file takes its version out of service; nil only
	// counts and logs.
	Catalog *catalog.Catalog
	// View is the live catalog the files' recorded sizes and checksums come from;
	// nil: nothing is known about any file, and nothing is forgotten.
	View *catalog.View
	// Metrics counts pgrollup_rollup_file_errors_total.
	Metrics *Metrics
	// Name identifies this process in the catalog's record of a broken version.
	Name string
	Log  *slog.Logger
}

// Checker checks rollup files against what their build recorded, and acts on a
// broken one as the README's "Broken rollup files" says: a file missing from storage, differing from its
// recorded size, SHA-256 or ETag, or unreadable, takes the active version that names
// it out of service in the catalog (status failed, last_error naming the file), which
// every proxy's router follows at once and which makes the scheduler rebuild the
// rollup. Follow then has every process drop what it holds of that version: cached
// files, tables in memory, kept answers.
//
// Storage being unreachable is not a broken file: only what storage says about the
// object (not there, other bytes) counts, so an outage never throws versions away.
//
// A nil *Checker checks nothing and reports nothing.
type Checker struct {
	o Options

	mu     sync.Mutex
	marked map[string]bool      // keys whose version this process has marked
	stamps map[string]fileStamp // in-place files verified, by key
	hooks  []func(keys []string)
}

// fileStamp is what an in-place file looked like when its checksum matched: it is
// hashed again only when this changes.
type fileStamp struct {
	path string
	size int64
	mod  time.Time
	sum  string
}

// reportTimeout bounds the catalog update of one report, which the statement
// that found the file waits for.
const reportTimeout = 5 * time.Second

// New returns a Checker; Follow makes it drop broken versions.
func New(o Options) *Checker {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Checker{o: o, marked: map[string]bool{}, stamps: map[string]fileStamp{}}
}

// Expect returns what the build recorded of the file stored under key: the
// partition of the active version that names it. Without one (a key outside the
// builder's layout, a version no longer active) there is nothing to check against.
func (g *Checker) Expect(ctx context.Context, key string) (rollup.Partition, bool) {
	if g == nil || g.o.View == nil {
		return rollup.Partition{}, false
	}
	name, identity, ok := rollup.KeyRollup(key)
	if !ok {
		return rollup.Partition{}, false
	}
	st := g.o.View.Get(name, identity)
	if (st == nil || st.Active == nil || st.Active.Partition(key) == nil) && g.o.Catalog != nil {
		// This process's view may lag the proxy that chose the version: ask the
		// catalog itself.
		if fresh, err := g.o.Catalog.Get(ctx, name, identity); err == nil && fresh != nil {
			st = fresh
		}
	}
	if st == nil || st.Active == nil {
		return rollup.Partition{}, false
	}
	p := st.Active.Partition(key)
	if p == nil {
		return rollup.Partition{}, false
	}
	return *p, true
}

// Report acts on a broken file: it counts it, logs it, and takes the active version
// that names it out of service in the catalog (once per file and process). It
// returns when the catalog has been updated, or reportTimeout has passed, so that a
// statement that falls back because of the file finds the rollup failed already.
func (g *Checker) Report(ctx context.Context, fe *rollup.FileError) {
	if g == nil || fe == nil {
		return
	}
	name, identity, ok := rollup.KeyRollup(fe.Key)
	label := name
	if !ok {
		label = "unknown"
	}
	g.o.Metrics.fileError(label, fe.Kind)
	g.mu.Lock()
	done := g.marked[fe.Key]
	g.mu.Unlock()
	if done {
		g.o.Log.Debug("broken rollup file again", "file", fe.Key, "kind", fe.Kind, "err", fe.Err)
		return
	}
	if !ok || g.o.Catalog == nil {
		g.o.Log.Warn("broken rollup file", "file", fe.Key, "kind", fe.Kind, "err", fe.Err)
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	var took *rollup.BrokenVersion
	_, err := g.o.Catalog.Update(uctx, name, identity, func(st *rollup.State) error {
		took = nil
		if !st.MarkBroken(fe, g.o.Name, time.Now()) {
			return catalog.ErrNoChange
		}
		took = st.LastBroken()
		return nil
	})
	if err != nil {
		g.o.Log.Warn("broken rollup file; cannot take its version out of service in the catalog now (the next use tries again)",
			"rollup", name, "file", fe.Key, "kind", fe.Kind, "file_err", fe.Err, "err", err)
		return
	}
	g.mu.Lock()
	g.marked[fe.Key] = true
	g.mu.Unlock()
	if took == nil {
		g.o.Log.Warn("broken rollup file of a version no longer active", "rollup", name, "file", fe.Key, "kind", fe.Kind, "err", fe.Err)
		return
	}
	g.o.Log.Error("broken rollup file: its version no longer answers and the rollup is rebuilt",
		"rollup", name, "version", took.Version, "file", fe.Key, "kind", fe.Kind, "err", fe.Err)
}

// CheckLocal checks a file that is read in place (file:// storage) before a query
// reads it: that it exists, and that its size and SHA-256 are the recorded ones. A
// file is hashed the first time and whenever its size or modification time has
// changed since it last matched. A broken file is reported; the error is then a
// *rollup.FileError.
func (g *Checker) CheckLocal(ctx context.Context, key, path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		fe := &rollup.FileError{Key: key, Kind: rollup.FileMissing, Err: err}
		g.Report(ctx, fe)
		return fe
	}
	if err != nil || g == nil {
		return err
	}
	p, known := g.Expect(ctx, key)
	if !known {
		return nil
	}
	g.mu.Lock()
	old, seen := g.stamps[key]
	g.mu.Unlock()
	if seen && old.path == path && old.size == info.Size() && old.mod.Equal(info.ModTime()) && old.sum == p.SHA256 {
		return nil
	}
	var fe *rollup.FileError
	switch {
	case info.Size() != p.Bytes:
		fe = asFileError(p.Check(info.Size(), ""))
	case p.SHA256 != "":
		size, sum, err := rollup.HashFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fe = &rollup.FileError{Key: key, Kind: rollup.FileMissing, Err: err}
		case errors.Is(err, fs.ErrPermission):
			return err // this process's settings, not the file
		case err != nil:
			fe = &rollup.FileError{Key: key, Kind: rollup.FileRead, Err: err}
		default:
			fe = asFileError(p.Check(size, sum))
		}
	}
	if fe != nil {
		g.Report(ctx, fe)
		return fe
	}
	g.mu.Lock()
	g.stamps[key] = fileStamp{path: path, size: info.Size(), mod: info.ModTime(), sum: p.SHA256}
	g.mu.Unlock()
	return nil
}

// Suspect looks into a file that DuckDB failed to read. A file read in place is
// checked again in full; a cached copy (local false) is only dropped by the caller,
// since it matched its checksum when it was downloaded. A file whose build recorded
// no checksum cannot be told apart from a DuckDB failure otherwise, so DuckDB's
// complaint is reported as the file being unreadable.
func (g *Checker) Suspect(ctx context.Context, key, path string, local bool, cause error) error {
	if g == nil {
		return nil
	}
	p, known := g.Expect(ctx, key)
	if !known {
		return nil
	}
	if local {
		g.mu.Lock()
		delete(g.stamps, key)
		g.mu.Unlock()
		if err := g.CheckLocal(ctx, key, path); err != nil {
			return err
		}
	}
	if p.SHA256 != "" {
		return nil
	}
	fe := &rollup.FileError{Key: key, Kind: rollup.FileRead, Err: cause}
	g.Report(ctx, fe)
	return fe
}

// OnBroken registers fn to be called with every file of each version taken out of
// service (by any process), so that the caller drops what it holds of them. Register
// before Follow starts.
func (g *Checker) OnBroken(fn func(keys []string)) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.hooks = append(g.hooks, fn)
	g.mu.Unlock()
}

// Follow watches the view until ctx ends: the files of every version taken out of
// service, including those recorded before it started, go to the OnBroken hooks.
// It also makes each rollup's pgrollup_rollup_file_errors_total series exist.
func (g *Checker) Follow(ctx context.Context) {
	if g == nil || g.o.View == nil {
		return
	}
	view := g.o.View
	select {
	case <-view.Ready():
	case <-ctx.Done():
		return
	}
	seen := map[string]bool{}
	for {
		changed := view.Changed()
		var keys []string
		for _, st := range view.All() {
			g.o.Metrics.fileErrorSeries(st.Name)
			for _, b := range st.Broken {
				id := catalog.Key(st.Name, st.Identity) + "/" + b.Version
				if !seen[id] {
					seen[id] = true
					keys = append(keys, b.Files...)
				}
			}
		}
		if len(keys) > 0 {
			g.forget(keys)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// asFileError is err as a *rollup.FileError, or nil.
func asFileError(err error) *rollup.FileError {
	var fe *rollup.FileError
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

func (g *Checker) forget(keys []string) {
	g.mu.Lock()
	for _, k := range keys {
		delete(g.stamps, k)
	}
	hooks := append([]func([]string){}, g.hooks...)
	g.mu.Unlock()
	g.o.Log.Info("dropping the files of a version taken out of service", "files", len(keys))
	for _, h := range hooks {
		h(keys)
	}
}
