package layout

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// Time is the column of the time bucket.
const Time = "t"

// Dimension is the column of dimension i (0-based, in definition order).
func Dimension(i int) string { return "d" + strconv.Itoa(i) }

// Measure is the column of the given part (PartSum, ...) of measure i
// (0-based, in definition order).
func Measure(i int, part string) string { return "m" + strconv.Itoa(i) + "_" + part }

// Measure parts: what one stored measure column holds. Each but
// PartCountDistinct is the aggregate of the same name over the source rows.
const (
	PartSum           = "sum"
	PartCount         = "count"
	PartMin           = "min"
	PartMax           = "max"
	PartCountDistinct = "count_distinct" // count(DISTINCT x)
)

// Parts lists the parts a measure is stored as, given its aggregate function
// (sum, count, min, max or avg) and whether it aggregates DISTINCT values
// (only count(DISTINCT x), stored as PartCountDistinct). It returns nil for a
// measure that cannot be stored, because it would not re-aggregate from the
// parts.
func Parts(aggregate string, distinct bool) []string {
	switch {
	case distinct && aggregate == "count":
		return []string{PartCountDistinct}
	case distinct:
		return nil
	}
	switch aggregate {
	case PartSum, PartCount, PartMin, PartMax:
		return []string{aggregate}
	case "avg":
		// Re-aggregated as the sum of the sums over the sum of the counts.
		return []string{PartSum, PartCount}
	}
	return nil
}

// Type is a Postgres type as RowDescription carries it: its OID and type
// modifier (-1: none).
type Type struct {
	OID    uint32
	Typmod int32
}

// maxDecimalDigits is the largest precision of DuckDB's DECIMAL.
const maxDecimalDigits = 38

// numericPrecisionScale decodes a numeric typmod; ok is false without one.
func numericPrecisionScale(typmod int32) (precision, scale int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	m := typmod - 4
	return int(m>>16) & 0xffff, int(m & 0xffff), true
}

// decimal spells DECIMAL(precision,scale).
func decimal(precision, scale int) string {
	return "DECIMAL(" + strconv.Itoa(precision) + "," + strconv.Itoa(scale) + ")"
}

// DuckDBType is the DuckDB type that holds every value of Postgres type t
// exactly, so that a value converts to DuckDB and back unchanged; ok is
// false when there is none.
func DuckDBType(t Type) (duckType string, ok bool) {
	switch t.OID {
	case pgtype.BoolOID:
		return "BOOLEAN", true
	case pgtype.Int2OID:
		return "SMALLINT", true
	case pgtype.Int4OID:
		return "INTEGER", true
	case pgtype.Int8OID:
		return "BIGINT", true
	case pgtype.Float4OID:
		return "FLOAT", true
	case pgtype.Float8OID:
		return "DOUBLE", true
	case pgtype.NumericOID:
		if p, s, ok := numericPrecisionScale(t.Typmod); ok && p <= maxDecimalDigits {
			return decimal(p, s), true
		}
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return "VARCHAR", true
	case pgtype.DateOID:
		return "DATE", true
	case pgtype.TimestampOID:
		return "TIMESTAMP", true
	case pgtype.TimestamptzOID:
		return "TIMESTAMPTZ", true
	case pgtype.UUIDOID:
		return "UUID", true
	}
	return "", false
}

// StorageType is the DuckDB type a column whose values have Postgres type t
// is stored as. For a part of a measure, part names it and arg is the type of
// the aggregated expression; arg has OID 0 for count(*) and for columns that
// are not measures.
//
// A type with an exact DuckDB equivalent is stored as it. Postgres gives the
// sum of int8 or numeric, and the min and max of numeric, as numeric without
// a scale; the argument fixes that scale, so such a part is a DECIMAL too when
// the argument is an integer or a numeric(p,s) of at most 38 digits. Anything
// else is VARCHAR holding Postgres's text output.
func StorageType(t Type, part string, arg Type) string {
	if d, ok := DuckDBType(t); ok {
		return d
	}
	if t.OID != pgtype.NumericOID {
		return "VARCHAR"
	}
	switch arg.OID {
	case pgtype.Int8OID, pgtype.Int4OID, pgtype.Int2OID:
		return decimal(maxDecimalDigits, 0)
	case pgtype.NumericOID:
		p, s, ok := numericPrecisionScale(arg.Typmod)
		if !ok || p > maxDecimalDigits {
			return "VARCHAR"
		}
		if part == PartSum {
			// A sum keeps the scale but may need more digits.
			return decimal(maxDecimalDigits, s)
		}
		return decimal(p, s)
	}
	return "VARCHAR"
}
