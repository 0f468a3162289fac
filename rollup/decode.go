package rollup

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"
)

// decoder turns one value of Postgres's wire format into what the DuckDB appender takes.
type decoder struct {
	format int16 // wire format requested for the column: 0 text, 1 binary
	decode func([]byte) (driver.Value, error)
}

// pgEpoch is Postgres's zero for dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var errInfinity = errors.New("infinite dates and timestamps cannot be stored in a rollup")

// newDecoder returns the decoder for a column with the given storage type.
func newDecoder(c Column) (decoder, error) {
	bin := func(n int, f func([]byte) driver.Value) decoder {
		return decoder{format: 1, decode: func(b []byte) (driver.Value, error) {
			if len(b) != n {
				return nil, fmt.Errorf("column %s: %d bytes, want %d", c.Name, len(b), n)
			}
			return f(b), nil
		}}
	}
	switch c.DuckDBType {
	case "BOOLEAN":
		return bin(1, func(b []byte) driver.Value { return b[0] != 0 }), nil
	case "SMALLINT":
		return bin(2, func(b []byte) driver.Value { return int16(binary.BigEndian.Uint16(b)) }), nil
	case "INTEGER":
		return bin(4, func(b []byte) driver.Value { return int32(binary.BigEndian.Uint32(b)) }), nil
	case "BIGINT":
		return bin(8, func(b []byte) driver.Value { return int64(binary.BigEndian.Uint64(b)) }), nil
	case "FLOAT":
		return bin(4, func(b []byte) driver.Value { return math.Float32frombits(binary.BigEndian.Uint32(b)) }), nil
	case "DOUBLE":
		return bin(8, func(b []byte) driver.Value { return math.Float64frombits(binary.BigEndian.Uint64(b)) }), nil
	case "UUID":
		return bin(16, func(b []byte) driver.Value { var u duckdb.UUID; copy(u[:], b); return u }), nil
	case "DATE":
		return decoder{format: 1, decode: func(b []byte) (driver.Value, error) {
			if len(b) != 4 {
				return nil, fmt.Errorf("column %s: bad date", c.Name)
			}
			d := int32(binary.BigEndian.Uint32(b))
			if d == math.MaxInt32 || d == math.MinInt32 {
				return nil, permanent(errInfinity)
			}
			return pgEpoch.AddDate(0, 0, int(d)), nil
		}}, nil
	case "TIMESTAMP", "TIMESTAMPTZ":
		return decoder{format: 1, decode: func(b []byte) (driver.Value, error) {
			if len(b) != 8 {
				return nil, fmt.Errorf("column %s: bad timestamp", c.Name)
			}
			us := int64(binary.BigEndian.Uint64(b))
			if us == math.MaxInt64 || us == math.MinInt64 {
				return nil, permanent(errInfinity)
			}
			return pgEpoch.Add(time.Duration(us%86400000000)*time.Microsecond).AddDate(0, 0, int(us/86400000000)), nil
		}}, nil
	case "VARCHAR":
		// Text types travel as their text in binary and text format alike; other types
		// fall back to their text output.
		return decoder{format: 0, decode: func(b []byte) (driver.Value, error) { return string(b), nil }}, nil
	}
	if strings.HasPrefix(c.DuckDBType, "DECIMAL(") {
		var width, scale int
		if _, err := fmt.Sscanf(c.DuckDBType, "DECIMAL(%d,%d)", &width, &scale); err != nil {
			return decoder{}, fmt.Errorf("column %s: %w", c.Name, err)
		}
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(width)), nil)
		codec := pgtype.NumericCodec{}
		plan := codec.PlanScan(pgtype.NewMap(), pgtype.NumericOID, 1, &pgtype.Numeric{})
		return decoder{format: 1, decode: func(b []byte) (driver.Value, error) {
			var n pgtype.Numeric
			if err := plan.Scan(b, &n); err != nil {
				return nil, fmt.Errorf("column %s: %w", c.Name, err)
			}
			v, err := scaleNumeric(n, scale)
			if err != nil {
				return nil, permanent(fmt.Errorf("column %s: %w", c.Name, err))
			}
			if new(big.Int).Abs(v).Cmp(limit) >= 0 {
				return nil, permanent(fmt.Errorf("column %s: value does not fit %s", c.Name, c.DuckDBType))
			}
			return duckdb.Decimal{Width: uint8(width), Scale: uint8(scale), Value: v}, nil
		}}, nil
	}
	return decoder{}, fmt.Errorf("column %s: no decoder for %s", c.Name, c.DuckDBType)
}

// scaleNumeric returns n as an integer count of 10^-scale units; an error if n has
// more fractional digits than scale (which would lose precision) or is not finite.
func scaleNumeric(n pgtype.Numeric, scale int) (*big.Int, error) {
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return nil, errors.New("NaN and infinite numerics cannot be stored in a DECIMAL")
	}
	v := new(big.Int).Set(n.Int)
	shift := int(n.Exp) + scale
	ten := big.NewInt(10)
	switch {
	case shift > 0:
		v.Mul(v, new(big.Int).Exp(ten, big.NewInt(int64(shift)), nil))
	case shift < 0:
		d := new(big.Int).Exp(ten, big.NewInt(int64(-shift)), nil)
		q, r := new(big.Int).QuoRem(v, d, new(big.Int))
		if r.Sign() != 0 {
			return nil, fmt.Errorf("value %se%d has more than %d fractional digits", n.Int, n.Exp, scale)
		}
		v = q
	}
	return v, nil
}
