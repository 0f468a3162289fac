package routing

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rewrite"
)

// FileQuery is a rollup route's DuckDB SQL with its Parquet file list held
// apart, so that a process that keeps the files somewhere else (a worker's
// cache) puts its own paths in by construction instead of editing SQL text.
type FileQuery struct {
	// Before and After are the SQL on either side of the file list of
	// read_parquet([...]): the files go between them as quoted literals.
	Before, After string
	// Files are the files as the decision names them, in order: storage
	// keys when the catalog was applied with StorageKeys.
	Files []string
}

// SplitFiles separates a decision's file list from its SQL. The rewriter
// writes the list once, as read_parquet([...]) of the decision's files
// quoted with sqlquote.Literal; SplitFiles renders that text itself and requires
// it to occur exactly once, so it never takes a string literal or an
// identifier in the SQL for the file list.
func SplitFiles(d *rewrite.Decision) (FileQuery, error) {
	const opening, closing = "read_parquet([", "])"
	needle := opening + fileList(d.Files) + closing
	i := strings.Index(d.SQL, needle)
	if i < 0 {
		return FileQuery{}, errors.New("rollup SQL does not read the decision's files")
	}
	if strings.Contains(d.SQL[i+1:], needle) {
		return FileQuery{}, errors.New("rollup SQL reads the decision's files more than once")
	}
	return FileQuery{
		Before: d.SQL[:i+len(opening)],
		After:  d.SQL[i+len(needle)-len(closing):],
		Files:  append([]string(nil), d.Files...),
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

// StorageKeys is the localPath of ApplyBuilds for an executor that resolves
// storage keys itself (workers over NATS, or a local Parquet cache): every
// version is servable and decisions name their files by storage key.
func StorageKeys(key string) (string, bool) { return key, true }

// Reasons a rollup route failed, as pgrollup_rollup_fallbacks_total{reason}
// counts them.
const (
	FallbackNoWorker      = "no_worker"      // no worker subscribed to queries
	FallbackWorkersBusy   = "workers_busy"   // every worker asked was at its concurrency limit
	FallbackWorkerTimeout = "worker_timeout" // no answer within routing.worker_timeout
	FallbackWorkerLost    = "worker_lost"    // the worker fell silent mid-query
	FallbackNATSDown      = "nats_down"      // no connection to NATS
	FallbackMissingFile   = "missing_file"   // a Parquet file is not in storage
	FallbackBrokenFile    = "broken_file"    // a Parquet file differs from what its build recorded, or cannot be read
	FallbackStorage       = "storage_error"  // storage failed otherwise
	FallbackQuery         = "query_error"    // DuckDB failed
	FallbackProtocol      = "protocol_error" // a malformed request or answer
)

// FallbackError is a failure on the rollup path with the reason it counts
// under in pgrollup_rollup_fallbacks_total{reason}. The proxy package cannot
// import this one, so it reads the reason through the method:
//
//	var r interface{ FallbackReason() string }
//	if errors.As(err, &r) { reason = r.FallbackReason() }
type FallbackError struct {
	Reason string
	Err    error
}

func (e *FallbackError) Error() string { return e.Err.Error() }

func (e *FallbackError) Unwrap() error { return e.Err }

// FallbackReason is the metric label of the failure.
func (e *FallbackError) FallbackReason() string { return e.Reason }

// Fallback wraps err with a reason; nil stays nil.
func Fallback(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &FallbackError{Reason: reason, Err: err}
}

// FallbackReason returns the reason err carries, or def when it carries none.
func FallbackReason(err error, def string) string {
	var r interface{ FallbackReason() string }
	if errors.As(err, &r) {
		return r.FallbackReason()
	}
	return def
}
