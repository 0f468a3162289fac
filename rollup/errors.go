package rollup

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// permanentError marks an error that retrying the same build cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as one a retry cannot fix (nil stays nil).
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether retrying the build that failed with err cannot help: the
// definition does not fit the warehouse (bad SQL, unknown column, a type that cannot be
// stored) rather than something being unavailable for a while.
func IsPermanent(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch sqlstate.Class(pgErr.Code) {
		case sqlstate.ClassSyntaxErrorOrAccessRuleViolation, // bad SQL, unknown column, no privilege
			sqlstate.ClassDataException, // division by zero, out of range, invalid input
			sqlstate.ClassFeatureNotSupported,
			sqlstate.ClassCardinalityViolation, // a build_range query returning several rows
			sqlstate.ClassSQLRoutineException,
			sqlstate.ClassExternalRoutineException,
			sqlstate.ClassExternalRoutineInvocationException:
			return true
		}
	}
	return false
}
