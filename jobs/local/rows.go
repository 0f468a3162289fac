package local

import (
	"sync"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// heldRows are DuckDB rows that hold resources (cached files, a concurrency
// slot) until closed.
type heldRows struct {
	executor.Rows
	release []func()
	once    sync.Once
	// fault looks into a failure while the rows are read (fileFault).
	fault   func(error) error
	checked bool
	err     error
}

// Err implements executor.Rows: a failure that a broken file explains carries the
// broken_file fallback reason.
func (r *heldRows) Err() error {
	err := r.Rows.Err()
	if err == nil || r.fault == nil {
		return err
	}
	if !r.checked {
		r.checked = true
		r.err = err
		if fe := r.fault(err); fe != nil {
			r.err = executor.Fallback(executor.FallbackBrokenFile, fe)
		}
	}
	return r.err
}

// Close ends the query and, once, lets go of what the rows held.
func (r *heldRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() {
		for _, f := range r.release {
			f()
		}
	})
	return err
}
