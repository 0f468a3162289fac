package local

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// TestLocalExecutorS3: the single binary's executor over S3 answers from the
// cache, holds the files and a concurrency slot while rows are open, and
// reports a missing file as a fallback.
func TestLocalExecutorS3(t *testing.T) {
	_, s3 := jobstest.StartMinIO(t)
	ctx := context.Background()
	jobstest.PutParquet(t, s3, `SELECT i % 5 AS d0, i AS m FROM range(1000) r(i)`, "le/v1/p.parquet")
	c, err := cache.New(cache.Options{Dir: t.TempDir(), MaxBytes: 1, Storage: s3}) // evicts whatever is not in use
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db, err := duck.Open(1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ex := New(c, db, 1)
	d := jobstest.Query(`SELECT d0, sum(m) FROM %s GROUP BY d0 ORDER BY d0`, []string{"le/v1/p.parquet"}, "d0", "sum")
	rows, err := ex.Query(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cached("le/v1/p.parquet") {
		t.Error("the file of open rows was evicted")
	}
	// The only slot is taken until the rows are closed.
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = ex.Query(tctx, d)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second query with the slot taken: %v", err)
	}
	got, err := jobstest.Collect(rows)
	if err != nil || len(got) != 5 || fmt.Sprint(got[0]) != "[0 99500]" {
		t.Fatalf("%v, %v", got, err)
	}
	if c.Cached("le/v1/p.parquet") {
		t.Error("released file beyond cache_max_bytes was kept")
	}
	if _, err := ex.Query(ctx, jobstest.Query(`SELECT 1 FROM %s`, []string{"le/v1/none.parquet"}, "x")); executor.FallbackReason(err, "") != executor.FallbackMissingFile {
		t.Errorf("missing file: %v", err)
	}
}
