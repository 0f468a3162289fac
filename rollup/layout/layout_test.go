package layout

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Dimension(0), "d0"},
		{Dimension(12), "d12"},
		{Time, "t"},
		{Measure(0, PartSum), "m0_sum"},
		{Measure(3, PartCountDistinct), "m3_count_distinct"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParts(t *testing.T) {
	for _, tc := range []struct {
		aggregate string
		distinct  bool
		want      []string
	}{
		{"sum", false, []string{PartSum}},
		{"count", false, []string{PartCount}},
		{"min", false, []string{PartMin}},
		{"max", false, []string{PartMax}},
		{"avg", false, []string{PartSum, PartCount}},
		{"count", true, []string{PartCountDistinct}},
		{"sum", true, nil},
		{"count_distinct", false, nil},
		{"stddev", false, nil},
		{"", false, nil},
	} {
		if got := Parts(tc.aggregate, tc.distinct); !slices.Equal(got, tc.want) {
			t.Errorf("Parts(%q, %v) = %q, want %q", tc.aggregate, tc.distinct, got, tc.want)
		}
	}
}

// numeric is the Type of numeric(p,s).
func numeric(p, s int) Type { return Type{pgtype.NumericOID, int32(p<<16|s) + 4} }

func plain(oid uint32) Type { return Type{oid, -1} }

func TestStorageType(t *testing.T) {
	none := Type{}
	for _, tc := range []struct {
		name string
		t    Type
		part string
		arg  Type
		want string
	}{
		{"bool", plain(pgtype.BoolOID), "", none, "BOOLEAN"},
		{"int2", plain(pgtype.Int2OID), "", none, "SMALLINT"},
		{"int4", plain(pgtype.Int4OID), "", none, "INTEGER"},
		{"int8", plain(pgtype.Int8OID), "", none, "BIGINT"},
		{"float4", plain(pgtype.Float4OID), "", none, "FLOAT"},
		{"float8", plain(pgtype.Float8OID), "", none, "DOUBLE"},
		{"text", plain(pgtype.TextOID), "", none, "VARCHAR"},
		{"varchar(20)", Type{pgtype.VarcharOID, 24}, "", none, "VARCHAR"},
		{"char(3)", Type{pgtype.BPCharOID, 7}, "", none, "VARCHAR"},
		{"name", plain(pgtype.NameOID), "", none, "VARCHAR"},
		{"date", plain(pgtype.DateOID), "", none, "DATE"},
		{"timestamp", plain(pgtype.TimestampOID), "", none, "TIMESTAMP"},
		{"timestamptz", plain(pgtype.TimestamptzOID), "", none, "TIMESTAMPTZ"},
		{"uuid", plain(pgtype.UUIDOID), "", none, "UUID"},
		{"numeric(12,2)", numeric(12, 2), "", none, "DECIMAL(12,2)"},
		{"numeric(38,0)", numeric(38, 0), "", none, "DECIMAL(38,0)"},
		{"numeric(39,2): too many digits", numeric(39, 2), "", none, "VARCHAR"},
		{"numeric without a scale", plain(pgtype.NumericOID), "", none, "VARCHAR"},
		{"time: no exact equivalent", plain(pgtype.TimeOID), "", none, "VARCHAR"},
		{"interval: no exact equivalent", plain(pgtype.IntervalOID), "", none, "VARCHAR"},
		{"jsonb: no exact equivalent", plain(pgtype.JSONBOID), "", none, "VARCHAR"},
		{"count", plain(pgtype.Int8OID), PartCount, plain(pgtype.Int4OID), "BIGINT"},
		{"sum of int4", plain(pgtype.Int8OID), PartSum, plain(pgtype.Int4OID), "BIGINT"},
		{"sum of int8", plain(pgtype.NumericOID), PartSum, plain(pgtype.Int8OID), "DECIMAL(38,0)"},
		{"sum of numeric(12,2)", plain(pgtype.NumericOID), PartSum, numeric(12, 2), "DECIMAL(38,2)"},
		{"min of numeric(12,2)", plain(pgtype.NumericOID), PartMin, numeric(12, 2), "DECIMAL(12,2)"},
		{"max of numeric(39,2)", plain(pgtype.NumericOID), PartMax, numeric(39, 2), "VARCHAR"},
		{"sum of numeric without a scale", plain(pgtype.NumericOID), PartSum, plain(pgtype.NumericOID), "VARCHAR"},
		{"sum of float8", plain(pgtype.Float8OID), PartSum, plain(pgtype.Float8OID), "DOUBLE"},
		{"min of interval", plain(pgtype.IntervalOID), PartMin, plain(pgtype.IntervalOID), "VARCHAR"},
	} {
		if got := StorageType(tc.t, tc.part, tc.arg); got != tc.want {
			t.Errorf("%s: StorageType = %s, want %s", tc.name, got, tc.want)
		}
	}
}
