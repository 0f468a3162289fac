package proxy

import (
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// Severities of the errors the proxy raises itself (their SQLSTATE codes are
// in package sqlstate). Errors from the warehouse are relayed as they come
// and never pass through here.
const (
	severityFatal = "FATAL"
	severityError = "ERROR"
)

// pgError is an error the proxy reports to a client as an ErrorResponse.
type pgError struct {
	Severity string
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func newError(severity, code, msg string) *pgError {
	return &pgError{Severity: severity, Code: code, Message: msg}
}

func (e *pgError) Error() string { return e.Severity + ": " + e.Message + " (SQLSTATE " + e.Code + ")" }

// encode appends the ErrorResponse for e to dst.
func (e *pgError) encode(dst []byte) []byte {
	msg := pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
	out, err := msg.Encode(dst)
	if err != nil {
		// Encode only fails on a message over 1 GB, which ours never are.
		panic(err)
	}
	return out
}

// asPgError returns err as a pgError, wrapping anything else as an internal
// FATAL error so that a client always learns why its connection ends.
func asPgError(err error) *pgError {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe
	}
	return newError(severityFatal, sqlstate.InternalError, err.Error())
}

// isStatementError reports whether an ErrorResponse body reports an error
// that ends only the statement, not the session (FATAL, PANIC).
func isStatementError(body []byte) bool {
	severity := ""
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		value, rest, ok := cutCString(body[1:])
		if !ok {
			break
		}
		switch field {
		case 'V':
			// Never localized; present since Postgres 9.6.
			return value == severityError
		case 'S':
			severity = value
		}
		body = rest
	}
	return severity == severityError
}

// errorCode returns the SQLSTATE of an ErrorResponse or NoticeResponse body.
func errorCode(body []byte) string { return errorField(body, 'C') }

// errorField returns the field of an ErrorResponse or NoticeResponse body
// that has the type code, "" when it has none.
func errorField(body []byte, code byte) string {
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		value, rest, ok := cutCString(body[1:])
		if !ok {
			return ""
		}
		if field == code {
			return value
		}
		body = rest
	}
	return ""
}
