package pgfmt

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Type OIDs from pg_type.
const (
	oidBool        = 16
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidNumeric     = 1700

	maxNameLen = 63 // NAMEDATALEN - 1
)

// Supports reports whether AppendText and AppendBinary encode the type oid.
func Supports(oid uint32) bool {
	switch oid {
	case oidBool, oidName, oidInt8, oidInt2, oidInt4, oidText, oidFloat4, oidFloat8,
		oidBpchar, oidVarchar, oidDate, oidTimestamp, oidTimestamptz, oidInterval, oidNumeric:
		return true
	}
	return false
}

// AppendText appends v, a value of type oid, in the server's text output format
// under the session settings s (see the package documentation for the Go
// value of each type). NULL is the caller's business: v is never nil. A nil s
// means DefaultSettings. On error dst is returned with its original length.
func AppendText(dst []byte, oid uint32, v any, s *Settings) ([]byte, error) {
	if s == nil {
		d := DefaultSettings()
		s = &d
	}
	n := len(dst)
	out, err := appendText(dst, oid, v, s)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func appendText(dst []byte, oid uint32, v any, s *Settings) ([]byte, error) {
	switch oid {
	case oidBool:
		b, ok := v.(bool)
		if !ok {
			return dst, typeError("bool", v)
		}
		if b {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	case oidInt2, oidInt4, oidInt8:
		n, err := intValue(oid, v)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, n, 10), nil
	case oidFloat4:
		f, ok := v.(float32)
		if !ok {
			return dst, typeError("float4", v)
		}
		return appendFloatText(dst, float64(f), 32, s.ExtraFloatDigits), nil
	case oidFloat8:
		f, ok := v.(float64)
		if !ok {
			return dst, typeError("float8", v)
		}
		return appendFloatText(dst, f, 64, s.ExtraFloatDigits), nil
	case oidNumeric:
		return appendNumericText(dst, v)
	case oidText, oidVarchar, oidBpchar, oidName:
		return appendString(dst, oid, v)
	case oidDate:
		return appendDateText(dst, v, s)
	case oidTimestamp:
		return appendTimestampText(dst, v, s)
	case oidTimestamptz:
		return appendTimestamptzText(dst, v, s)
	case oidInterval:
		return appendIntervalText(dst, v, s)
	}
	return dst, fmt.Errorf("pgfmt: unsupported type OID %d", oid)
}

// intValue accepts the Go integer kinds and checks the range of the type,
// because a value the server could not hold must not reach a client.
func intValue(oid uint32, v any) (int64, error) {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int16:
		n = int64(x)
	default:
		return 0, typeError(typeName(oid), v)
	}
	switch oid {
	case oidInt2:
		if n < math.MinInt16 || n > math.MaxInt16 {
			return 0, fmt.Errorf("pgfmt: smallint out of range: %d", n)
		}
	case oidInt4:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return 0, fmt.Errorf("pgfmt: integer out of range: %d", n)
		}
	}
	return n, nil
}

// appendString appends a string value, refusing what no server value of the
// type can be: invalid UTF-8, NUL bytes, or a name longer than NAMEDATALEN-1.
func appendString(dst []byte, oid uint32, v any) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
			return dst, fmt.Errorf("pgfmt: %s value is not valid UTF-8 without NUL bytes", typeName(oid))
		}
		if oid == oidName && len(x) > maxNameLen {
			return dst, fmt.Errorf("pgfmt: name value longer than %d bytes", maxNameLen)
		}
		return append(dst, x...), nil
	case []byte:
		b = x
	default:
		return dst, typeError(typeName(oid), v)
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return dst, fmt.Errorf("pgfmt: %s value is not valid UTF-8 without NUL bytes", typeName(oid))
	}
	if oid == oidName && len(b) > maxNameLen {
		return dst, fmt.Errorf("pgfmt: name value longer than %d bytes", maxNameLen)
	}
	return append(dst, b...), nil
}

// PadBpchar pads s with spaces to the length of a character(n) column whose
// type modifier is typmod (n + 4), as the server stores such values; longer
// values and typmod -1 (no length) are returned unchanged. Lengths count
// characters, not bytes. Use it when a rollup answers with a bpchar column
// value that lost its padding on the way (DuckDB does not pad).
func PadBpchar(s string, typmod int32) string {
	if typmod < 4 {
		return s
	}
	n := int(typmod - 4)
	have := utf8.RuneCountInString(s)
	if have >= n {
		return s
	}
	return s + strings.Repeat(" ", n-have)
}

func typeName(oid uint32) string {
	switch oid {
	case oidBool:
		return "bool"
	case oidName:
		return "name"
	case oidInt8:
		return "int8"
	case oidInt2:
		return "int2"
	case oidInt4:
		return "int4"
	case oidText:
		return "text"
	case oidFloat4:
		return "float4"
	case oidFloat8:
		return "float8"
	case oidBpchar:
		return "bpchar"
	case oidVarchar:
		return "varchar"
	case oidDate:
		return "date"
	case oidTimestamp:
		return "timestamp"
	case oidTimestamptz:
		return "timestamptz"
	case oidInterval:
		return "interval"
	case oidNumeric:
		return "numeric"
	}
	return "OID " + strconv.FormatUint(uint64(oid), 10)
}

func typeError(typ string, v any) error {
	return fmt.Errorf("pgfmt: cannot encode Go %T as %s", v, typ)
}
