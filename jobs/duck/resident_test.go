package duck

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// writeParquet writes rows rows of a small rollup to a Parquet file with DuckDB itself.
func writeParquet(t *testing.T, d *DB, path string, rows int) {
	t.Helper()
	q := fmt.Sprintf(`COPY (SELECT 'k' || (i %% 7) AS d0, (i * 1.25)::DECIMAL(38,2) AS m0_sum, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_hours(i::int) AS t FROM range(%d) r(i)) TO %s (FORMAT parquet)`, rows, sqlquote.Literal(path))
	if _, err := d.db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// rollupQuery is a query over files as the rewriter writes it.
func rollupQuery(files ...string) *executor.Query {
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = sqlquote.Literal(f)
	}
	return &executor.Query{
		SQL:     `SELECT "r"."d0", sum("r"."m0_sum"), max("r"."t") FROM read_parquet([` + strings.Join(lits, ", ") + `]) AS "r" GROUP BY 1 ORDER BY 1`,
		Files:   files,
		Columns: make([]executor.Column, 3),
	}
}

func queryAll(t *testing.T, d *DB, dec *executor.Query) [][]any {
	t.Helper()
	rows, err := d.Query(context.Background(), dec)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitResident waits until every file has a table in memory.
func waitResident(t *testing.T, d *DB, files ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.resident.mu.Lock()
		ready := 0
		for _, f := range files {
			if tb := d.resident.tables[f]; tb != nil && tb.ready {
				ready++
			}
		}
		d.resident.mu.Unlock()
		if ready == len(files) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files resident after 10s", ready, len(files))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestResidentTables(t *testing.T) {
	d, err := Open(64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "it's b.parquet")
	writeParquet(t, d, a, 500)
	writeParquet(t, d, b, 300)

	dec := rollupQuery(a, b)
	fromFiles := queryAll(t, d, dec) // starts loading both
	waitResident(t, d, a, b)
	sql, release := d.resident.substitute(dec)
	release()
	if sql == dec.SQL || !regexpContains(sql, `FROM \(SELECT \* FROM "pgrollup_resident_\d+" UNION ALL SELECT \* FROM "pgrollup_resident_\d+"\) AS "r"`) {
		t.Fatalf("resident SQL = %s", sql)
	}
	if fromTables := queryAll(t, d, dec); !reflect.DeepEqual(fromFiles, fromTables) {
		t.Fatalf("from the files:\n%v\nfrom the tables:\n%v", fromFiles, fromTables)
	}

	// A query in progress keeps its tables; the budget drops them once idle.
	rows, err := d.Query(context.Background(), dec)
	if err != nil {
		t.Fatal(err)
	}
	d.resident.mu.Lock()
	d.resident.budget = 0
	d.resident.mu.Unlock()
	d.resident.evict()
	if n := residentCount(d); n != 2 {
		t.Fatalf("%d tables left while a query reads both, want 2", n)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if n := residentCount(d); n != 0 {
		t.Fatalf("%d tables left over a budget of 0, want none", n)
	}
	var tables int
	if err := d.db.QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'pgrollup_resident_%'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("%d resident tables left in DuckDB (%v), want 0", tables, err)
	}
	if again := queryAll(t, d, dec); !reflect.DeepEqual(fromFiles, again) {
		t.Fatalf("after eviction: %v, want %v", again, fromFiles)
	}
}

func TestResidentTablesSkipLargeFiles(t *testing.T) {
	d, err := Open(32<<20, nil) // a 2 MiB share for each file at most
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	big := filepath.Join(t.TempDir(), "big.parquet")
	writeParquet(t, d, big, 1000000)
	dec := rollupQuery(big)
	want := queryAll(t, d, dec)
	d.resident.mu.Lock()
	tb := d.resident.tables[big]
	d.resident.mu.Unlock()
	if tb == nil || !tb.skip {
		t.Fatalf("a file beyond the budget was not left on disk: %+v", tb)
	}
	if got := queryAll(t, d, dec); !reflect.DeepEqual(got, want) {
		t.Fatalf("second answer differs")
	}
}

func residentCount(d *DB) int {
	d.resident.mu.Lock()
	defer d.resident.mu.Unlock()
	return len(d.resident.tables)
}

func regexpContains(s, pattern string) bool { return regexp.MustCompile(pattern).MatchString(s) }
