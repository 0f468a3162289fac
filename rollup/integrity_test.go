package rollup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPartitionCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("PAR1 some rollup PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	size, sum, err := HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := Partition{File: "r/id/v1/part-all.parquet", Bytes: size, SHA256: sum}
	if err := p.Check(size, strings.ToUpper(sum)); err != nil {
		t.Errorf("same file: %v", err)
	}
	var fe *FileError
	if err := p.Check(size-1, sum); !errors.As(err, &fe) || fe.Kind != FileChecksum || !strings.Contains(err.Error(), p.File) {
		t.Errorf("other size: %v", err)
	}
	if err := p.Check(size, strings.Repeat("0", 64)); !errors.As(err, &fe) || fe.Kind != FileChecksum {
		t.Errorf("other SHA-256: %v", err)
	}
	// A partition built before checksums were recorded: the size still counts.
	old := Partition{File: p.File, Bytes: size}
	if old.Check(size, "whatever") != nil || old.Check(size+1, "") == nil {
		t.Error("a partition without a checksum is checked by size only")
	}
	if _, _, err := HashFile(path + ".gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("HashFile of a missing file: %v", err)
	}
	if n, id, ok := KeyRollup("orders_daily/1a2b/v1/part-all.parquet"); !ok || n != "orders_daily" || id != "1a2b" {
		t.Errorf("KeyRollup: %q %q %v", n, id, ok)
	}
	for _, k := range []string{"v1/a.parquet", "a/b/c/d/e", "/x/v/f"} {
		if _, _, ok := KeyRollup(k); ok {
			t.Errorf("KeyRollup(%q) accepted a key outside the builder's layout", k)
		}
	}
}

// TestMarkBroken: a broken file takes the active version that names it out of
// service, once; a file of no active version changes nothing; a later version
// that carries the file forward is recognised.
func TestMarkBroken(t *testing.T) {
	v1 := &Version{ID: "v1", Partitions: []Partition{{File: "r/id/v1/part-1"}, {File: "r/id/v1/part-2"}}}
	st := &State{Name: "r", Identity: "id", Status: StatusActive, Active: v1}
	fe := &FileError{Key: "r/id/v1/part-2", Kind: FileMissing, Err: fs.ErrNotExist}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if st.MarkBroken(&FileError{Key: "r/id/v0/part-1", Kind: FileMissing}, "test", at) {
		t.Fatal("a file of no active version took the version out of service")
	}
	if !st.MarkBroken(fe, "worker-1", at) {
		t.Fatal("the active version's file did not take it out of service")
	}
	if st.Active != nil || st.Status != StatusFailed || !strings.Contains(st.LastError, fe.Key) || !strings.Contains(st.LastError, "v1") || !st.LastErrorAt.Equal(at) {
		t.Fatalf("after MarkBroken: active %v, status %s, last error %q at %s", st.Active, st.Status, st.LastError, st.LastErrorAt)
	}
	b := st.LastBroken()
	if b == nil || b.Version != "v1" || b.File != fe.Key || b.Kind != FileMissing || b.By != "worker-1" || len(b.Files) != 2 {
		t.Fatalf("broken record %+v", b)
	}
	if st.MarkBroken(fe, "worker-2", at) {
		t.Error("the same file marked twice")
	}
	carried := &Version{ID: "v2", Partitions: []Partition{{File: "r/id/v1/part-2"}, {File: "r/id/v2/part-3"}}}
	if f := st.BrokenFileOf(carried); f != fe.Key {
		t.Errorf("BrokenFileOf a version carrying the broken file: %q", f)
	}
	if f := st.BrokenFileOf(&Version{ID: "v3", Partitions: []Partition{{File: "r/id/v3/part-1"}}}); f != "" {
		t.Errorf("BrokenFileOf a fresh version: %q", f)
	}
	for i := range MaxBrokenRecords + 3 {
		st.Active = &Version{ID: "x", Partitions: []Partition{{File: "f"}}}
		st.MarkBroken(&FileError{Key: "f", Kind: FileChecksum}, "t", at.Add(time.Duration(i)*time.Minute))
	}
	if len(st.Broken) != MaxBrokenRecords {
		t.Errorf("%d broken records kept, want %d", len(st.Broken), MaxBrokenRecords)
	}
}
