package pgfmt

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

const maxNameLen = 63 // NAMEDATALEN - 1

// supports reports whether AppendText and AppendBinary encode the type oid.
func supports(oid uint32) bool {
	switch oid {
	case pgtype.BoolOID, pgtype.NameOID, pgtype.Int8OID, pgtype.Int2OID, pgtype.Int4OID, pgtype.TextOID, pgtype.Float4OID, pgtype.Float8OID,
		pgtype.BPCharOID, pgtype.VarcharOID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.IntervalOID, pgtype.NumericOID:
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
	case pgtype.BoolOID:
		b, ok := v.(bool)
		if !ok {
			return dst, typeError("bool", v)
		}
		if b {
			return append(dst, 't'), nil
		}
		return append(dst, 'f'), nil
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		n, err := intValue(oid, v)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, n, 10), nil
	case pgtype.Float4OID:
		f, ok := v.(float32)
		if !ok {
			return dst, typeError("float4", v)
		}
		return appendFloatText(dst, float64(f), 32, s.ExtraFloatDigits), nil
	case pgtype.Float8OID:
		f, ok := v.(float64)
		if !ok {
			return dst, typeError("float8", v)
		}
		return appendFloatText(dst, f, 64, s.ExtraFloatDigits), nil
	case pgtype.NumericOID:
		return appendNumericText(dst, v)
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return appendString(dst, oid, v)
	case pgtype.DateOID:
		return appendDateText(dst, v, s)
	case pgtype.TimestampOID:
		return appendTimestampText(dst, v, s)
	case pgtype.TimestamptzOID:
		return appendTimestamptzText(dst, v, s)
	case pgtype.IntervalOID:
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
	case pgtype.Int2OID:
		if n < math.MinInt16 || n > math.MaxInt16 {
			return 0, fmt.Errorf("pgfmt: smallint out of range: %d", n)
		}
	case pgtype.Int4OID:
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
		if oid == pgtype.NameOID && len(x) > maxNameLen {
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
	if oid == pgtype.NameOID && len(b) > maxNameLen {
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
	case pgtype.BoolOID:
		return "bool"
	case pgtype.NameOID:
		return "name"
	case pgtype.Int8OID:
		return "int8"
	case pgtype.Int2OID:
		return "int2"
	case pgtype.Int4OID:
		return "int4"
	case pgtype.TextOID:
		return "text"
	case pgtype.Float4OID:
		return "float4"
	case pgtype.Float8OID:
		return "float8"
	case pgtype.BPCharOID:
		return "bpchar"
	case pgtype.VarcharOID:
		return "varchar"
	case pgtype.DateOID:
		return "date"
	case pgtype.TimestampOID:
		return "timestamp"
	case pgtype.TimestamptzOID:
		return "timestamptz"
	case pgtype.IntervalOID:
		return "interval"
	case pgtype.NumericOID:
		return "numeric"
	}
	return "OID " + strconv.FormatUint(uint64(oid), 10)
}

func typeError(typ string, v any) error {
	return fmt.Errorf("pgfmt: cannot encode Go %T as %s", v, typ)
}
