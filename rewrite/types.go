package rewrite

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/rollup/layout"
)

// oidNumericText is the rewriter's own type of a numeric computed as its
// Postgres text form (AVG of integers and numeric, see avgNumericText): it is
// described as numeric, but no operator, function, comparison or ordering
// accepts it, because DuckDB holds it as text.
const oidNumericText uint32 = 0xFFFFFF01

// Type is a Postgres type with its modifier, as RowDescription carries it.
// OID 0 means the type is not known (offline explain without column types).
type Type struct {
	OID    uint32
	Typmod int32
}

// Known reports whether the type is known.
func (t Type) Known() bool { return t.OID != 0 }

func plain(oid uint32) Type { return Type{OID: oid, Typmod: -1} }

var unknownType = Type{Typmod: -1}

// typeByName maps the names Postgres accepts in casts and in catalogs to OIDs.
var typeNames = map[string]uint32{
	"bool": pgtype.BoolOID, "boolean": pgtype.BoolOID,
	"int2": pgtype.Int2OID, "smallint": pgtype.Int2OID,
	"int4": pgtype.Int4OID, "int": pgtype.Int4OID, "integer": pgtype.Int4OID,
	"int8": pgtype.Int8OID, "bigint": pgtype.Int8OID,
	"float4": pgtype.Float4OID, "real": pgtype.Float4OID,
	"float8": pgtype.Float8OID, "double precision": pgtype.Float8OID, "float": pgtype.Float8OID,
	"numeric": pgtype.NumericOID, "decimal": pgtype.NumericOID,
	"text": pgtype.TextOID, "varchar": pgtype.VarcharOID, "character varying": pgtype.VarcharOID,
	"bpchar": pgtype.BPCharOID, "char": pgtype.BPCharOID, "character": pgtype.BPCharOID,
	"name": pgtype.NameOID,
	"date": pgtype.DateOID, "time": pgtype.TimeOID, "time without time zone": pgtype.TimeOID,
	"timestamp": pgtype.TimestampOID, "timestamp without time zone": pgtype.TimestampOID,
	"timestamptz": pgtype.TimestamptzOID, "timestamp with time zone": pgtype.TimestamptzOID,
	"interval": pgtype.IntervalOID, "uuid": pgtype.UUIDOID,
}

// ParseType reads a Postgres type name such as "numeric(12,2)",
// "timestamp with time zone" or "varchar(20)" into a Type. It returns false
// for types the rewriter does not know.
func ParseType(s string) (Type, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	mods := ""
	if i := strings.IndexByte(s, '('); i >= 0 && strings.HasSuffix(s, ")") {
		mods = s[i+1 : len(s)-1]
		s = strings.TrimSpace(s[:i])
	}
	s = strings.TrimPrefix(s, "pg_catalog.")
	oid, ok := typeNames[s]
	if !ok {
		return unknownType, false
	}
	t := plain(oid)
	if mods != "" {
		var nums []int
		for _, p := range strings.Split(mods, ",") {
			n, ok := atoi(strings.TrimSpace(p))
			if !ok {
				return unknownType, false
			}
			nums = append(nums, n)
		}
		m, ok := typmodFor(oid, nums)
		if !ok {
			return unknownType, false
		}
		t.Typmod = m
	}
	return t, true
}

// typmodFor encodes type modifiers the way Postgres's typmodin functions do.
func typmodFor(oid uint32, nums []int) (int32, bool) {
	switch oid {
	case pgtype.NumericOID:
		p, s := 0, 0
		switch len(nums) {
		case 1:
			p = nums[0]
		case 2:
			p, s = nums[0], nums[1]
		default:
			return 0, false
		}
		if p < 1 || p > 1000 || s < 0 || s > p {
			return 0, false
		}
		return int32((p<<16)|s) + 4, true
	case pgtype.VarcharOID, pgtype.BPCharOID:
		if len(nums) != 1 || nums[0] < 1 {
			return 0, false
		}
		return int32(nums[0]) + 4, true
	case pgtype.IntervalOID:
		// INTERVAL '1' DAY: a field mask (INTERVAL_MASK of datetime.h), and
		// optionally a precision, as INTERVAL_TYPMOD encodes them.
		if len(nums) < 1 || len(nums) > 2 || nums[0] < 1 || nums[0] > 0x7FFF {
			return 0, false
		}
		prec := 0xFFFF
		if len(nums) == 2 {
			if nums[1] < 0 || nums[1] > 6 {
				return 0, false
			}
			prec = nums[1]
		}
		return int32(nums[0]<<16 | prec), true
	case pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.TimeOID:
		if len(nums) != 1 || nums[0] < 0 || nums[0] > 6 {
			return 0, false
		}
		return int32(nums[0]), true
	}
	return 0, false
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// numericScale returns the declared scale of a numeric type, or -1 when the
// type has no declared scale.
func numericScale(t Type) int {
	if t.OID != pgtype.NumericOID || t.Typmod < 4 {
		return -1
	}
	return int((t.Typmod - 4) & 0xffff)
}

func isIntegerOID(oid uint32) bool {
	return oid == pgtype.Int2OID || oid == pgtype.Int4OID || oid == pgtype.Int8OID
}
func isFloatOID(oid uint32) bool { return oid == pgtype.Float4OID || oid == pgtype.Float8OID }
func isNumberOID(oid uint32) bool {
	return isIntegerOID(oid) || isFloatOID(oid) || oid == pgtype.NumericOID
}
func isTextOID(oid uint32) bool {
	return oid == pgtype.TextOID || oid == pgtype.VarcharOID || oid == pgtype.BPCharOID || oid == pgtype.NameOID
}
func isTimeOID(oid uint32) bool {
	return oid == pgtype.DateOID || oid == pgtype.TimestampOID || oid == pgtype.TimestamptzOID
}

// duckType is the DuckDB type a value of Postgres type t is computed as, so
// that DuckDB's result converts losslessly to t: the type a rollup stores
// such a value as (layout.DuckDBType).
func duckType(t Type) (string, bool) { return layout.DuckDBType(layout.Type(t)) }

func itoa(n int) string { return strconv.Itoa(n) }
