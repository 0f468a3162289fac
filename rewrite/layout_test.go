package rewrite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	// The DuckDB driver registers itself with database/sql as "duckdb".
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// layoutColumn is one Parquet column of a rollup as the builder writes it
// (package layout).
type layoutColumn struct{ name, duck string }

// partResultType is the Postgres type of the build query's column for a
// stored part: the aggregate's result type (no typmod).
func partResultType(fn string, arg Type) Type {
	switch fn {
	case "count", "count_distinct":
		return plain(pgtype.Int8OID)
	case "sum":
		switch arg.OID {
		case pgtype.Int2OID, pgtype.Int4OID:
			return plain(pgtype.Int8OID)
		case pgtype.Int8OID, pgtype.NumericOID:
			return plain(pgtype.NumericOID)
		}
		return plain(arg.OID)
	}
	return plain(arg.OID) // min, max
}

// rollupLayout lists a compiled rollup's Parquet columns: d<i>, t, m<i>_<part>.
func rollupLayout(t testing.TB, cr *compiledRollup) []layoutColumn {
	t.Helper()
	if cr.err != nil {
		t.Fatalf("rollup %s: %v", cr.st.Def.Name, cr.err)
	}
	var cols []layoutColumn
	for _, d := range cr.dims {
		cols = append(cols, layoutColumn{d.phys, layout.StorageType(layout.Type(d.col.column.Type), "", layout.Type{})})
	}
	if cr.timeCol != nil {
		cols = append(cols, layoutColumn{layout.Time, layout.StorageType(layout.Type(cr.timeType), "", layout.Type{})})
	}
	var parts []layoutColumn
	for _, p := range cr.parts {
		parts = append(parts, layoutColumn{p.phys, layout.StorageType(layout.Type(partResultType(p.fn, p.argType)), p.fn, layout.Type(p.argType))})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].name < parts[j].name })
	return append(cols, parts...)
}

// writeEmptyRollups writes one empty Parquet file per rollup of cat, in the
// rollup layout, and points every rollup at it (one unbounded partition).
func writeEmptyRollups(t testing.TB, db *sql.DB, cat *Catalog, dir string) {
	t.Helper()
	for _, cr := range cat.rollups() {
		if cr.err != nil {
			continue // never matches; nothing to read
		}
		f := filepath.Join(dir, cr.st.Def.Name+".parquet")
		duckDB{db}.copyLayout(t, cr, f)
		cr.st.Partitions = []Partition{{Files: []string{f}}}
		cr.st.AllTime = true
	}
}

// duckAccepts runs a rollup route's SQL in DuckDB and checks that DuckDB
// accepts it and returns the columns the decision describes, with the
// DuckDB types it promises.
func duckAccepts(t testing.TB, db *sql.DB, d Decision) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, d.SQL)
	if err != nil {
		t.Fatalf("DuckDB rejects the rewritten SQL: %v\n%s", err, d.SQL)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	if len(cts) != len(d.Columns) {
		t.Fatalf("DuckDB returns %d columns, the decision describes %d\n%s", len(cts), len(d.Columns), d.SQL)
	}
	for i, ct := range cts {
		want, got := d.Columns[i].DuckType, ct.DatabaseTypeName()
		switch {
		case want == "":
			// Unknown type (offline catalog without column types).
		case want == "DECIMAL":
			if !strings.HasPrefix(got, "DECIMAL") {
				t.Fatalf("column %d: DuckDB returns %s, the decision promises a DECIMAL\n%s", i, got, d.SQL)
			}
		case got != want:
			t.Fatalf("column %d: DuckDB returns %s, the decision promises %s\n%s", i, got, want, d.SQL)
		}
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("DuckDB fails running the rewritten SQL: %v\n%s", err, d.SQL)
	}
}

func openDuck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	// One connection: the in-memory database is per connection.
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// duckDB is a DuckDB connection for tests.
type duckDB struct{ *sql.DB }

// copyLayout writes an empty Parquet file in cr's layout to path.
func (db duckDB) copyLayout(t testing.TB, cr *compiledRollup, path string) {
	t.Helper()
	var sel []string
	for _, c := range rollupLayout(t, cr) {
		sel = append(sel, "CAST(NULL AS "+c.duck+") AS "+sqlquote.Ident(c.name))
	}
	q := "COPY (SELECT " + strings.Join(sel, ", ") + " LIMIT 0) TO " + sqlquote.Literal(path) + " (FORMAT parquet)"
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
