package routing

import (
	"path/filepath"
	"time"

	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/rollup"
)

// ApplyBuilds fills a catalog's rollups from the build catalog's states:
// the active version of each rollup's current definition, with its files as
// local paths. A rollup keeps serving its active version while a newer one
// builds, goes stale or fails, so any state with an active version is
// active here. localPath maps a storage key to a file this process can read;
// a version with a file it cannot map does not serve.
//
// states is keyed by rollup name and holds the state of the definition the
// configuration has now; a state of an older definition must not be passed.
func ApplyBuilds(cat *rewrite.Catalog, states map[string]*rollup.State, localPath func(key string) (string, bool)) {
	for _, r := range cat.Rollups {
		st := states[r.Def.Name]
		if st == nil {
			continue
		}
		r.Status = rewrite.Status(st.Status)
		v := st.Active
		if v == nil {
			continue
		}
		parts := make([]rewrite.Partition, 0, len(v.Partitions))
		servable := true
		for _, p := range v.Partitions {
			path, ok := localPath(p.File)
			if !ok {
				servable = false
				break
			}
			parts = append(parts, rewrite.Partition{
				Start: p.Start, End: p.End, Files: []string{path},
				Rows: p.Rows, Bytes: p.Bytes, Truncated: p.Truncated || v.Truncated,
			})
		}
		if !servable {
			continue
		}
		r.Status = rewrite.StatusActive
		r.Version = v.ID
		r.Partitions = parts
		r.AllTime = v.AllTime
		r.Windows = nil
		for _, w := range v.Windows {
			r.Windows = append(r.Windows, rewrite.Window{Conjunct: w.Conjunct, Op: w.Op, Value: w.Value, TypeOID: w.Type.OID, SQL: w.SQL})
		}
		r.Rows, r.Bytes = v.Rows, v.Bytes
		r.BuiltAt = v.BuiltAt
		r.LambdaCutoff = time.Time{}
		if v.LambdaCutoff != nil {
			r.LambdaCutoff = *v.LambdaCutoff
		}
		r.LambdaCutoffID = v.LambdaCutoffID
	}
}

// StorageKeys is the localPath of ApplyBuilds for an executor that resolves
// storage keys itself (workers over NATS, or a local Parquet cache): every
// version is servable and decisions name their files by storage key.
func StorageKeys(key string) (string, bool) { return key, true }

// LocalFiles maps storage keys of a file:// storage rooted at dir to paths.
func LocalFiles(dir string) func(key string) (string, bool) {
	return func(key string) (string, bool) {
		return filepath.Join(dir, filepath.FromSlash(key)), true
	}
}
