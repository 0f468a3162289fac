package executor

import "errors"

// Reasons a rollup query failed, as pgrollup_rollup_fallbacks_total{reason}
// counts them.
const (
	FallbackNoWorker      = "no_worker"      // no worker subscribed to queries
	FallbackWorkersBusy   = "workers_busy"   // every worker asked was at its concurrency limit
	FallbackWorkerTimeout = "worker_timeout" // no answer within routing.worker_timeout
	FallbackWorkerLost    = "worker_lost"    // the worker fell silent mid-query
	FallbackNATSDown      = "nats_down"      // no connection to NATS
	FallbackWorkerRelease = "worker_release" // the only workers that answered run another release
	FallbackMissingFile   = "missing_file"   // a Parquet file is not in storage
	FallbackBrokenFile    = "broken_file"    // a Parquet file differs from what its build recorded, or cannot be read
	FallbackStorage       = "storage_error"  // storage failed otherwise
	FallbackQuery         = "query_error"    // DuckDB failed
	FallbackProtocol      = "protocol_error" // a malformed request or answer
)

// fallbackError is a failure on the rollup path with the reason it counts
// under in pgrollup_rollup_fallbacks_total{reason}. The proxy package does
// not import this one, so it reads the reason through the method:
//
//	var r interface{ FallbackReason() string }
//	if errors.As(err, &r) { reason = r.FallbackReason() }
type fallbackError struct {
	reason string
	err    error
}

// Error is the failure's own message: the reason is for the metric.
func (e *fallbackError) Error() string { return e.err.Error() }

// Unwrap is the failure, which callers may inspect (a *rollup.FileError).
func (e *fallbackError) Unwrap() error { return e.err }

// FallbackReason is the metric label of the failure.
func (e *fallbackError) FallbackReason() string { return e.reason }

// Fallback wraps err with a reason; nil stays nil.
func Fallback(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &fallbackError{reason: reason, err: err}
}

// FallbackReason returns the reason err carries, or def when it carries none.
func FallbackReason(err error, def string) string {
	var r interface{ FallbackReason() string }
	if errors.As(err, &r) {
		return r.FallbackReason()
	}
	return def
}
