package proxy

import (
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// encoder holds what a session's text output depends on.
type encoder struct {
	settings pgfmt.Settings
}

// encoder returns the encoding settings of the session as it is now: the
// parameters the warehouse reports, and extra_float_digits, which it does
// not (settings.go).
func (s *session) encoder(set sessionSettings) (*encoder, error) {
	params := map[string]string{}
	if p := s.params.Load(); p != nil {
		for k, v := range *p {
			params[k] = v
		}
	}
	if set.floatDigits != "" {
		params["extra_float_digits"] = set.floatDigits
	}
	settings, err := pgfmt.SettingsFromParams(params)
	if err != nil {
		return nil, err
	}
	return &encoder{settings: settings}, nil
}

// appendValue appends v in the wire format of type oid. On error dst is
// returned as it was: the caller may go on with what it holds.
func (e *encoder) appendValue(dst []byte, oid uint32, format int16, v any) ([]byte, error) {
	if format == 1 {
		return pgfmt.AppendBinary(dst, oid, v)
	}
	return pgfmt.AppendText(dst, oid, v, &e.settings)
}
