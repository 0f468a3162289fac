package remote

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Values travel between worker and proxy in a compact binary form that keeps
// each value's Go type as DuckDB's driver returned it, because the proxy's
// conversion to Postgres values (routing/convert.go) depends on the exact
// type: a DECIMAL keeps its width and scale, a HUGEINT stays a *big.Int, an
// INTEGER stays an int32, and a time keeps its instant and zone. Every value
// is a tag byte followed by the tag's payload.
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagInt8     // 1 byte
	tagInt16    // zig-zag varint
	tagInt32    // zig-zag varint
	tagInt64    // zig-zag varint
	tagUint8    // 1 byte
	tagUint16   // varint
	tagUint32   // varint
	tagUint64   // varint
	tagFloat32  // IEEE 754 bits, 4 bytes little-endian
	tagFloat64  // IEEE 754 bits, 8 bytes little-endian
	tagString   // varint length, bytes
	tagBytes    // varint length, bytes
	tagTimeUTC  // zig-zag varint Unix seconds, varint nanoseconds
	tagTimeZone // as tagTimeUTC, then the zone's name (varint length, bytes) and zig-zag varint offset in seconds
	tagDecimal  // width byte, scale byte, big integer
	tagBigInt   // big integer: sign byte (0 zero, 1 positive, 2 negative), varint length, big-endian magnitude
	tagInterval // zig-zag varints months, days, microseconds
)

// appendValue appends v's encoding to dst.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNull), nil
	case bool:
		if x {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case int8:
		return append(dst, tagInt8, byte(x)), nil
	case int16:
		return binary.AppendVarint(append(dst, tagInt16), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(dst, tagInt32), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt64), x), nil
	case uint8:
		return append(dst, tagUint8, x), nil
	case uint16:
		return binary.AppendUvarint(append(dst, tagUint16), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(dst, tagUint32), uint64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(dst, tagUint64), x), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(dst, tagFloat32), math.Float32bits(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat64), math.Float64bits(x)), nil
	case string:
		dst = binary.AppendUvarint(append(dst, tagString), uint64(len(x)))
		return append(dst, x...), nil
	case []byte:
		dst = binary.AppendUvarint(append(dst, tagBytes), uint64(len(x)))
		return append(dst, x...), nil
	case time.Time:
		if x.Location() == time.UTC {
			dst = binary.AppendVarint(append(dst, tagTimeUTC), x.Unix())
			return binary.AppendUvarint(dst, uint64(x.Nanosecond())), nil
		}
		name, offset := x.Zone()
		dst = binary.AppendVarint(append(dst, tagTimeZone), x.Unix())
		dst = binary.AppendUvarint(dst, uint64(x.Nanosecond()))
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		return binary.AppendVarint(dst, int64(offset)), nil
	case duckdb.Decimal:
		if x.Value == nil {
			return nil, errors.New("DECIMAL without a value")
		}
		return appendBigInt(append(dst, tagDecimal, x.Width, x.Scale), x.Value), nil
	case *big.Int:
		if x == nil {
			return append(dst, tagNull), nil
		}
		return appendBigInt(append(dst, tagBigInt), x), nil
	case duckdb.Interval:
		dst = binary.AppendVarint(append(dst, tagInterval), int64(x.Months))
		dst = binary.AppendVarint(dst, int64(x.Days))
		return binary.AppendVarint(dst, x.Micros), nil
	}
	return nil, fmt.Errorf("cannot send a value of type %T", v)
}

func appendBigInt(dst []byte, n *big.Int) []byte {
	var sign byte
	switch n.Sign() {
	case 1:
		sign = 1
	case -1:
		sign = 2
	}
	dst = append(dst, sign)
	// Bytes is the absolute value, big-endian.
	mag := n.Bytes()
	dst = binary.AppendUvarint(dst, uint64(len(mag)))
	return append(dst, mag...)
}

// errShort reports a value cut off by the end of its chunk.
var errShort = errors.New("truncated value")

// decoder reads values from one chunk.
type decoder struct {
	b []byte
}

func (d *decoder) byte() (byte, error) {
	if len(d.b) < 1 {
		return 0, errShort
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		return 0, errShort
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errShort
	}
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) bytes(n uint64) ([]byte, error) {
	if uint64(len(d.b)) < n {
		return nil, errShort
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b, nil
}

// value decodes one value. Strings and byte slices are copies: the chunk's
// buffer is not kept once its rows are read.
func (d *decoder) value() (any, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNull:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagInt8:
		c, err := d.byte()
		return int8(c), err
	case tagInt16, tagInt32, tagInt64:
		v, err := d.varint()
		if err != nil {
			return nil, err
		}
		switch {
		case tag == tagInt16 && v == int64(int16(v)):
			return int16(v), nil
		case tag == tagInt32 && v == int64(int32(v)):
			return int32(v), nil
		case tag == tagInt64:
			return v, nil
		}
		return nil, fmt.Errorf("integer %d out of range for tag %d", v, tag)
	case tagUint8:
		c, err := d.byte()
		return c, err
	case tagUint16, tagUint32, tagUint64:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		switch {
		case tag == tagUint16 && v <= math.MaxUint16:
			return uint16(v), nil
		case tag == tagUint32 && v <= math.MaxUint32:
			return uint32(v), nil
		case tag == tagUint64:
			return v, nil
		}
		return nil, fmt.Errorf("integer %d out of range for tag %d", v, tag)
	case tagFloat32:
		b, err := d.bytes(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case tagFloat64:
		b, err := d.bytes(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case tagString, tagBytes:
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		b, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		if tag == tagString {
			return string(b), nil
		}
		return append([]byte{}, b...), nil
	case tagTimeUTC, tagTimeZone:
		sec, err := d.varint()
		if err != nil {
			return nil, err
		}
		nsec, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if nsec >= uint64(time.Second) {
			return nil, fmt.Errorf("nanoseconds %d out of range", nsec)
		}
		t := time.Unix(sec, int64(nsec))
		if tag == tagTimeUTC {
			return t.UTC(), nil
		}
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		name, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		offset, err := d.varint()
		if err != nil {
			return nil, err
		}
		return t.In(time.FixedZone(string(name), int(offset))), nil
	case tagDecimal:
		b, err := d.bytes(2)
		if err != nil {
			return nil, err
		}
		n, err := d.bigInt()
		if err != nil {
			return nil, err
		}
		return duckdb.Decimal{Width: b[0], Scale: b[1], Value: n}, nil
	case tagBigInt:
		return d.bigInt()
	case tagInterval:
		var v [3]int64
		for i := range v {
			if v[i], err = d.varint(); err != nil {
				return nil, err
			}
		}
		if v[0] != int64(int32(v[0])) || v[1] != int64(int32(v[1])) {
			return nil, errors.New("interval out of range")
		}
		return duckdb.Interval{Months: int32(v[0]), Days: int32(v[1]), Micros: v[2]}, nil
	}
	return nil, fmt.Errorf("unknown value tag %d", tag)
}

func (d *decoder) bigInt() (*big.Int, error) {
	sign, err := d.byte()
	if err != nil {
		return nil, err
	}
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	mag, err := d.bytes(n)
	if err != nil {
		return nil, err
	}
	v := new(big.Int).SetBytes(mag)
	switch {
	case sign == 2:
		v.Neg(v)
	case sign > 2 || (sign == 0) != (v.Sign() == 0):
		return nil, fmt.Errorf("malformed big integer (sign %d)", sign)
	}
	return v, nil
}
