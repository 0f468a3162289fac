package jobstest

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The DuckDB driver writes the Parquet files.
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pgrollup/pgrollup/internal/minio"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
)

// WriteParquet writes the rows of a DuckDB query to a Parquet file.
func WriteParquet(t testing.TB, path, query string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("COPY (" + query + ") TO " + sqlquote.Literal(path) + " (FORMAT parquet)"); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// MkdirFor makes the directory of path.
func MkdirFor(path string) error { return os.MkdirAll(filepath.Dir(path), 0o755) }

// Query is a rollup query over files as the rewriter lays it out: the SQL
// reads read_parquet([files]) AS "r"; sql holds %s where that goes.
func Query(sql string, files []string, cols ...string) *executor.Query {
	var lits []string
	for _, f := range files {
		lits = append(lits, sqlquote.Literal(f))
	}
	q := &executor.Query{
		Rollup: "r", Version: "v1", Files: files,
		SQL: strings.Replace(sql, "%s", `read_parquet([`+strings.Join(lits, ", ")+`]) AS "r"`, 1),
	}
	for _, c := range cols {
		q.Columns = append(q.Columns, executor.Column{Name: c})
	}
	return q
}

// Collect reads every row, copying the values, and closes the rows.
func Collect(rows executor.Rows) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return out, rows.Err()
}

// ReasonOf is the fallback reason an error carries, "" for none.
func ReasonOf(err error) string { return executor.FallbackReason(err, "") }

// StartMinIO starts a MinIO server for the test and returns S3 storage in
// its bucket.
func StartMinIO(t testing.TB) (*minio.Server, *rollup.S3Storage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv, err := minio.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("needs MinIO: %v", err)
	}
	t.Cleanup(srv.Stop)
	st, err := rollup.NewS3Storage(context.Background(), rollup.S3Options{Bucket: srv.Bucket, Prefix: "rollups", Endpoint: srv.Endpoint,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// PutParquet writes a Parquet file of the query's rows and stores it under
// each key; it returns the file's bytes.
func PutParquet(t testing.TB, st rollup.Storage, query string, keys ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.parquet")
	WriteParquet(t, p, query)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := st.Put(context.Background(), k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// OtherStorage hides a file storage's type, so that a cache over it
// downloads the files instead of reading them in place.
type OtherStorage struct{ rollup.Storage }
