package executor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// FileQuery is a rollup query's DuckDB SQL with its Parquet file list held
// apart, so that a process that keeps the files somewhere else (a worker's
// cache) puts its own paths in by construction instead of editing SQL text.
type FileQuery struct {
	// Before and After are the SQL on either side of the file list of
	// read_parquet([...]): the files go between them as quoted literals.
	Before, After string
	// Files are the files as the query names them, in order: storage keys
	// when the router's catalog names files by storage key.
	Files []string
}

// Split separates the query's file list from its SQL. The rewriter writes
// the list once, as read_parquet([...]) of the query's files quoted with
// sqlquote.Literal; Split renders that text itself and requires it to occur
// exactly once, so it never takes a string literal or an identifier in the
// SQL for the file list.
func (q *Query) Split() (FileQuery, error) {
	const opening, closing = "read_parquet([", "])"
	needle := opening + fileList(q.Files) + closing
	i := strings.Index(q.SQL, needle)
	if i < 0 {
		return FileQuery{}, errors.New("rollup SQL does not read the decision's files")
	}
	if strings.Contains(q.SQL[i+1:], needle) {
		return FileQuery{}, errors.New("rollup SQL reads the decision's files more than once")
	}
	return FileQuery{
		Before: q.SQL[:i+len(opening)],
		After:  q.SQL[i+len(needle)-len(closing):],
		Files:  append([]string(nil), q.Files...),
	}, nil
}

// SQL returns the query reading paths in place of Files (one path per file,
// in the same order).
func (q FileQuery) SQL(paths []string) (string, error) {
	if len(paths) != len(q.Files) {
		return "", fmt.Errorf("%d paths for %d files", len(paths), len(q.Files))
	}
	return q.Before + fileList(paths) + q.After, nil
}

// fileList renders files as the rewriter does inside read_parquet([...]).
func fileList(files []string) string {
	var b strings.Builder
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sqlquote.Literal(f))
	}
	return b.String()
}
