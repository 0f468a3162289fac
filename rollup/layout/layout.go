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

// exactTypes maps each Postgres type other than numeric that has an exact
// DuckDB equivalent to it, whatever its type modifier. (A char(n) value
// loses its padding, which the proxy restores from the type modifier.)
var exactTypes = map[uint32]string{
	pgtype.BoolOID:        "BOOLEAN",
	pgtype.Int2OID:        "SMALLINT",
	pgtype.Int4OID:        "INTEGER",
	pgtype.Int8OID:        "BIGINT",
	pgtype.Float4OID:      "FLOAT",
	pgtype.Float8OID:      "DOUBLE",
	pgtype.TextOID:        "VARCHAR",
	pgtype.VarcharOID:     "VARCHAR",
	pgtype.BPCharOID:      "VARCHAR",
	pgtype.NameOID:        "VARCHAR",
	pgtype.DateOID:        "DATE",
	pgtype.TimestampOID:   "TIMESTAMP",
	pgtype.TimestamptzOID: "TIMESTAMPTZ",
	pgtype.UUIDOID:        "UUID",
}

// DuckDBType is the DuckDB type that holds every value of Postgres type t
// exactly, so that a value converts to DuckDB and back unchanged; ok is
// false when there is none. A numeric needs a declared scale and at most 38
// digits.
func DuckDBType(t Type) (duckType string, ok bool) {
	if t.OID == pgtype.NumericOID {
		p, s, ok := numericPrecisionScale(t.Typmod)
		if !ok || p > maxDecimalDigits {
			return "", false
		}
		return decimal(p, s), true
	}
	duckType, ok = exactTypes[t.OID]
	return duckType, ok
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
