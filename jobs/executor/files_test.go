package executor_test

import (
	"testing"

	"github.com/pgrollup/pgrollup/internal/jobstest"
)

// TestSplitFilesNeverTakesLiterals: the file list is found only where the
// rewriter put it, however the rest of the SQL quotes things.
func TestSplitFilesNeverTakesLiterals(t *testing.T) {
	files := []string{"a/b'c/part-1.parquet", "a/d/part-2.parquet"}
	d := jobstest.Query(`SELECT 'read_parquet([''a/b''''c/part-1.parquet'', ''a/d/part-2.parquet''])' AS "read_parquet(['x'])", d0 FROM %s WHERE d0 <> 'x'`, files, "a", "b")
	fq, err := d.Split()
	if err != nil {
		t.Fatal(err)
	}
	sql, err := fq.SQL([]string{"/c/1.parquet", "/c/2.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT 'read_parquet([''a/b''''c/part-1.parquet'', ''a/d/part-2.parquet''])' AS "read_parquet(['x'])", d0 FROM read_parquet(['/c/1.parquet', '/c/2.parquet']) AS "r" WHERE d0 <> 'x'`
	if sql != want {
		t.Fatalf("got  %s\nwant %s", sql, want)
	}
	twice := jobstest.Query(`SELECT * FROM %s UNION ALL SELECT * FROM read_parquet(['a/b''c/part-1.parquet', 'a/d/part-2.parquet'])`, files, "a")
	if _, err := twice.Split(); err == nil {
		t.Error("a file list read twice was split")
	}
	other := jobstest.Query(`SELECT * FROM %s`, files, "a")
	other.Files = []string{"elsewhere.parquet"}
	if _, err := other.Split(); err == nil {
		t.Error("SQL not reading the decision's files was split")
	}
}
