package proxy

import (
	"errors"

	"github.com/pgrollup/pgrollup/internal/ascii"
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// Type OIDs the proxy's encoding treats specially.
const (
	oidBool   = 16
	oidInt8   = 20
	oidText   = 25
	oidFloat4 = 700
	oidFloat8 = 701
)

// encoder holds what a session's text output depends on.
type encoder struct {
	settings pgfmt.Settings
	// floatText says whether extra_float_digits is known: Postgres never
	// reports it, so the proxy knows it only from the startup packet, and
	// only until a statement mentions it.
	floatText bool
}

var errFloatDigitsUnknown = errors.New("extra_float_digits is not known for this session, so floats cannot be printed as Postgres would")

// encoder returns the encoding settings of the session as it is now.
func (s *session) encoder() (*encoder, error) {
	params := map[string]string{}
	if p := s.params.Load(); p != nil {
		for k, v := range *p {
			params[k] = v
		}
	}
	if s.floatDigits != "" {
		params["extra_float_digits"] = s.floatDigits
	}
	settings, err := pgfmt.SettingsFromParams(params)
	if err != nil {
		return nil, err
	}
	return &encoder{settings: settings, floatText: s.floatDigits != "" && !s.floatDigitsChanged}, nil
}

// noteStatement watches relayed statements for a change of
// extra_float_digits, which no ParameterStatus would reveal.
func (s *session) noteStatement(sql string) {
	if !s.floatDigitsChanged && ascii.ContainsFold(sql, "extra_float_digits") {
		s.floatDigitsChanged = true
	}
}

// appendValue appends v in the wire format of type oid.
func (e *encoder) appendValue(dst []byte, oid uint32, format int16, v any) ([]byte, error) {
	if format == 1 {
		return pgfmt.AppendBinary(dst, oid, v)
	}
	if (oid == oidFloat4 || oid == oidFloat8) && !e.floatText {
		return nil, errFloatDigitsUnknown
	}
	return pgfmt.AppendText(dst, oid, v, &e.settings)
}
