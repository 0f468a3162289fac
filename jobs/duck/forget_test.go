package duck

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestResidentForget: the tables of a version taken out of service are
// dropped (at once when idle, after the last reader otherwise) and never
// loaded again, so that its queries read the files, and fail on a broken one.
func TestResidentForget(t *testing.T) {
	d, err := Open(64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	writeParquet(t, d, a, 50)
	writeParquet(t, d, b, 60)
	queryAll(t, d, rollupQuery(a))
	queryAll(t, d, rollupQuery(b))
	waitResident(t, d, a, b)
	tables := func() int {
		var n int
		if err := d.db.QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'pgrollup_resident_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tables(); n != 2 {
		t.Fatalf("%d resident tables, want 2", n)
	}

	// b is being read while its version goes: its table stays until then.
	rows, err := d.Query(context.Background(), rollupQuery(b))
	if err != nil {
		t.Fatal(err)
	}
	d.Forget([]string{a, b})
	if n := tables(); n != 1 {
		t.Errorf("%d resident tables after Forget with one in use, want 1", n)
	}
	for rows.Next() {
	}
	rows.Close()
	if n := tables(); n != 0 {
		t.Errorf("%d resident tables after the last reader, want 0", n)
	}

	// The files are read from disk from now on: a broken one shows.
	if err := os.WriteFile(a, []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rows, err := d.Query(context.Background(), rollupQuery(a)); err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		if err == nil {
			t.Error("a forgotten file was answered from memory, not read")
		}
	}
	d.resident.mu.Lock()
	loaded := d.resident.tables[a] != nil
	d.resident.mu.Unlock()
	if loaded {
		t.Error("a forgotten file was queued to be loaded again")
	}
}
