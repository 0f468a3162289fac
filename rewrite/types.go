package rewrite

import (
	"strconv"
	"strings"
)

// Postgres type OIDs the rewriter reasons about (pg_type.dat).
const (
	OIDBool        uint32 = 16
	OIDName        uint32 = 19
	OIDInt8        uint32 = 20
	OIDInt2        uint32 = 21
	OIDInt4        uint32 = 23
	OIDText        uint32 = 25
	OIDFloat4      uint32 = 700
	OIDFloat8      uint32 = 701
	OIDUnknown     uint32 = 705
	OIDBpchar      uint32 = 1042
	OIDVarchar     uint32 = 1043
	OIDDate        uint32 = 1082
	OIDTime        uint32 = 1083
	OIDTimestamp   uint32 = 1114
	OIDTimestamptz uint32 = 1184
	OIDInterval    uint32 = 1186
	OIDNumeric     uint32 = 1700
	OIDUUID        uint32 = 2950
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
	"bool": OIDBool, "boolean": OIDBool,
	"int2": OIDInt2, "smallint": OIDInt2,
	"int4": OIDInt4, "int": OIDInt4, "integer": OIDInt4,
	"int8": OIDInt8, "bigint": OIDInt8,
	"float4": OIDFloat4, "real": OIDFloat4,
	"float8": OIDFloat8, "double precision": OIDFloat8, "float": OIDFloat8,
	"numeric": OIDNumeric, "decimal": OIDNumeric,
	"text": OIDText, "varchar": OIDVarchar, "character varying": OIDVarchar,
	"bpchar": OIDBpchar, "char": OIDBpchar, "character": OIDBpchar,
	"name": OIDName,
	"date": OIDDate, "time": OIDTime, "time without time zone": OIDTime,
	"timestamp": OIDTimestamp, "timestamp without time zone": OIDTimestamp,
	"timestamptz": OIDTimestamptz, "timestamp with time zone": OIDTimestamptz,
	"interval": OIDInterval, "uuid": OIDUUID,
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
	case OIDNumeric:
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
	case OIDVarchar, OIDBpchar:
		if len(nums) != 1 || nums[0] < 1 {
			return 0, false
		}
		return int32(nums[0]) + 4, true
	case OIDTimestamp, OIDTimestamptz, OIDTime:
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
	if t.OID != OIDNumeric || t.Typmod < 4 {
		return -1
	}
	return int((t.Typmod - 4) & 0xffff)
}

func isIntegerOID(oid uint32) bool { return oid == OIDInt2 || oid == OIDInt4 || oid == OIDInt8 }
func isFloatOID(oid uint32) bool   { return oid == OIDFloat4 || oid == OIDFloat8 }
func isNumberOID(oid uint32) bool  { return isIntegerOID(oid) || isFloatOID(oid) || oid == OIDNumeric }
func isTextOID(oid uint32) bool {
	return oid == OIDText || oid == OIDVarchar || oid == OIDBpchar || oid == OIDName
}
func isTimeOID(oid uint32) bool {
	return oid == OIDDate || oid == OIDTimestamp || oid == OIDTimestamptz
}

// duckType is the DuckDB type a value of Postgres type t is computed as, so
// that DuckDB's result converts losslessly to t.
func duckType(t Type) (string, bool) {
	switch t.OID {
	case OIDBool:
		return "BOOLEAN", true
	case OIDInt2:
		return "SMALLINT", true
	case OIDInt4:
		return "INTEGER", true
	case OIDInt8:
		return "BIGINT", true
	case OIDFloat4:
		return "FLOAT", true
	case OIDFloat8:
		return "DOUBLE", true
	case OIDNumeric:
		if s := numericScale(t); s >= 0 {
			p := int((t.Typmod - 4) >> 16)
			if p > 38 {
				return "", false
			}
			return "DECIMAL(" + strconv.Itoa(p) + "," + strconv.Itoa(s) + ")", true
		}
		return "", false
	case OIDText, OIDVarchar, OIDBpchar, OIDName:
		return "VARCHAR", true
	case OIDDate:
		return "DATE", true
	case OIDTimestamp:
		return "TIMESTAMP", true
	case OIDTimestamptz:
		return "TIMESTAMPTZ", true
	case OIDUUID:
		return "UUID", true
	}
	return "", false
}

func itoa(n int) string { return strconv.Itoa(n) }
