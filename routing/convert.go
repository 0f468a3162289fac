package routing

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/cockroachdb/apd/v3"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/proxy/pgfmt"
	"github.com/pgrollup/pgrollup/rewrite"
)

// convert turns a value DuckDB returned into the Go value the proxy encodes
// for Postgres type oid: int64 for integers, float32 or float64, *apd.Decimal
// for numeric, string, bool and time.Time. A value that does not fit the
// type is an error, never a silent change: the statement then falls back.
func convert(v any, typ rewrite.Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	oid := typ.OID
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		n, err := toInt64(v)
		if err != nil {
			return nil, err
		}
		if (oid == pgtype.Int2OID && (n < math.MinInt16 || n > math.MaxInt16)) || (oid == pgtype.Int4OID && (n < math.MinInt32 || n > math.MaxInt32)) {
			return nil, fmt.Errorf("%d out of range for type %d", n, oid)
		}
		return n, nil
	case pgtype.NumericOID:
		return toDecimal(v)
	case pgtype.Float8OID:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
	case pgtype.Float4OID:
		switch x := v.(type) {
		case float32:
			return x, nil
		case float64:
			if float64(float32(x)) == x || math.IsNaN(x) {
				return float32(x), nil
			}
		}
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		var str string
		switch x := v.(type) {
		case string:
			str = x
		case []byte:
			str = string(x)
		default:
			return nil, fmt.Errorf("cannot convert %T to type %d", v, oid)
		}
		if oid == pgtype.BPCharOID {
			// Parquet keeps char(n) values without their padding.
			str = pgfmt.PadBpchar(str, typ.Typmod)
		}
		return str, nil
	case pgtype.BoolOID:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		if t, ok := v.(time.Time); ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("cannot convert %T to type %d", v, oid)
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
	case duckdb.Decimal:
		if x.Scale == 0 && x.Value.IsInt64() {
			return x.Value.Int64(), nil
		}
	}
	return 0, fmt.Errorf("cannot convert %v (%T) to an integer", v, v)
}

func toDecimal(v any) (*apd.Decimal, error) {
	d := new(apd.Decimal)
	switch x := v.(type) {
	case duckdb.Decimal:
		d.Coeff.SetMathBigInt(x.Value)
		if x.Value.Sign() < 0 {
			d.Coeff.Neg(&d.Coeff)
			d.Negative = true
		}
		d.Exponent = -int32(x.Scale)
		return d, nil
	case *big.Int:
		d.Coeff.SetMathBigInt(x)
		if x.Sign() < 0 {
			d.Coeff.Neg(&d.Coeff)
			d.Negative = true
		}
		return d, nil
	case string:
		// numeric without a declared scale is stored as Postgres's own text.
		if _, _, err := d.SetString(x); err != nil {
			return nil, fmt.Errorf("numeric %q: %w", x, err)
		}
		return d, nil
	default:
		n, err := toInt64(v)
		if err != nil {
			return nil, fmt.Errorf("cannot convert %v (%T) to numeric", v, v)
		}
		d.SetInt64(n)
		return d, nil
	}
}
