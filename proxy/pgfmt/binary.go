package pgfmt

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgtype"
)

// AppendBinary appends v, a value of type oid, in the server's binary format
// (the type's send function). Binary output depends on no session setting:
// timestamptz is sent as the instant in UTC. On error dst is returned with its
// original length.
func AppendBinary(dst []byte, oid uint32, v any) ([]byte, error) {
	n := len(dst)
	out, err := appendBinary(dst, oid, v)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func appendBinary(dst []byte, oid uint32, v any) ([]byte, error) {
	switch oid {
	case pgtype.BoolOID:
		b, ok := v.(bool)
		if !ok {
			return dst, typeError("bool", v)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		n, err := intValue(oid, v)
		if err != nil {
			return dst, err
		}
		switch oid {
		case pgtype.Int2OID:
			return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
		case pgtype.Int4OID:
			return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
		}
		return binary.BigEndian.AppendUint64(dst, uint64(n)), nil
	case pgtype.Float4OID:
		f, ok := v.(float32)
		if !ok {
			return dst, typeError("float4", v)
		}
		if f != f {
			// NaN has many encodings; the server's float4in('NaN') stores this one.
			return binary.BigEndian.AppendUint32(dst, 0x7FC00000), nil
		}
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(f)), nil
	case pgtype.Float8OID:
		f, ok := v.(float64)
		if !ok {
			return dst, typeError("float8", v)
		}
		if math.IsNaN(f) {
			// NaN has many encodings; the server's float8in('NaN') stores this
			// one (Go's math.NaN() differs in the last bit).
			return binary.BigEndian.AppendUint64(dst, 0x7FF8000000000000), nil
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case pgtype.NumericOID:
		return appendNumericBinary(dst, v)
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		// textsend and friends send the bytes as they are.
		return appendString(dst, oid, v)
	case pgtype.DateOID:
		return appendDateBinary(dst, v)
	case pgtype.TimestampOID:
		return appendTimestampBinary(dst, v, true)
	case pgtype.TimestamptzOID:
		return appendTimestampBinary(dst, v, false)
	case pgtype.IntervalOID:
		return appendIntervalBinary(dst, v)
	}
	return dst, fmt.Errorf("pgfmt: unsupported type OID %d", oid)
}
