package proxy

import (
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// encoder holds what a session's text output depends on.
type encoder struct {
	settings pgfmt.Settings
}

// appendValue appends v in the wire format of type oid. On error dst is
// returned as it was: the caller may go on with what it holds.
func (e *encoder) appendValue(dst []byte, oid uint32, format int16, v any) ([]byte, error) {
	if format == 1 {
		return pgfmt.AppendBinary(dst, oid, v)
	}
	return pgfmt.AppendText(dst, oid, v, &e.settings)
}
