package pgfmt

import (
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

func TestScalarsAgainstServer(t *testing.T) {
	s := newSession(t)
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty := newTally(t)
	groups := []struct {
		oid   uint32
		cases []pgCase
	}{
		{pgtype.BoolOID, []pgCase{
			{name: "true", expr: "true", v: true},
			{name: "false", expr: "false", v: false},
		}},
		{pgtype.Int2OID, []pgCase{
			{name: "0", expr: "0::int2", v: int64(0)},
			{name: "-1", expr: "(-1)::int2", v: int64(-1)},
			{name: "min", expr: "(-32768)::int2", v: int64(math.MinInt16)},
			{name: "max", expr: "32767::int2", v: int16(math.MaxInt16)},
		}},
		{pgtype.Int4OID, []pgCase{
			{name: "0", expr: "0::int4", v: int32(0)},
			{name: "42", expr: "42::int4", v: 42},
			{name: "min", expr: "(-2147483648)::int4", v: int64(math.MinInt32)},
			{name: "max", expr: "2147483647::int4", v: int64(math.MaxInt32)},
		}},
		{pgtype.Int8OID, []pgCase{
			{name: "0", expr: "0::int8", v: int64(0)},
			{name: "-123456789012", expr: "(-123456789012)::int8", v: int64(-123456789012)},
			{name: "min", expr: "(-9223372036854775808)::int8", v: int64(math.MinInt64)},
			{name: "max", expr: "9223372036854775807::int8", v: int64(math.MaxInt64)},
		}},
		{pgtype.TextOID, stringCases("text")},
		{pgtype.VarcharOID, stringCases("varchar")},
		{pgtype.NameOID, []pgCase{
			{name: "abc", expr: "'abc'::name", v: "abc"},
			{name: "63 bytes", expr: "'" + strings.Repeat("n", 63) + "'::name", v: strings.Repeat("n", 63)},
			{name: "unicode", expr: "'öl'::name", v: []byte("öl")},
		}},
		{pgtype.BPCharOID, []pgCase{
			{name: "char(5) 'ab'", expr: "'ab'::char(5)", v: PadBpchar("ab", 5+4)},
			{name: "char(3) 'äöü'", expr: "'äöü'::char(3)", v: PadBpchar("äöü", 3+4)},
			{name: "char(4) 'é'", expr: "'é'::char(4)", v: PadBpchar("é", 4+4)},
			{name: "bpchar 'x '", expr: "'x '::bpchar", v: PadBpchar("x ", -1)},
			{name: "char(1) 'abc' truncated by the cast", expr: "'abc'::char(1)", v: "a"},
		}},
	}
	for _, g := range groups {
		ty.add(typeName(g.oid)+" text", s.diff("text", g.oid, g.cases, 0, st))
		ty.add(typeName(g.oid)+" binary", s.diff("binary", g.oid, g.cases, 1, st))
	}
	ty.log()
}

func stringCases(typ string) []pgCase {
	vals := []string{"", "hello", "héllo wörld ✓ 日本語", "with 'quote'", `back\slash`, "line\nbreak\ttab",
		"  spaces  ", "🙂 emoji", strings.Repeat("x", 10000)}
	var cases []pgCase
	for i, v := range vals {
		var gv any = v
		if i%2 == 1 {
			gv = []byte(v)
		}
		cases = append(cases, pgCase{name: short(v), expr: sqlquote.Literal(v) + "::" + typ, v: gv})
	}
	return cases
}

func TestScalarErrors(t *testing.T) {
	tests := []struct {
		oid uint32
		v   any
	}{
		{pgtype.Int2OID, int64(32768)},
		{pgtype.Int2OID, -32769},
		{pgtype.Int4OID, int64(math.MaxInt32) + 1},
		{pgtype.Int4OID, int64(math.MinInt32) - 1},
		{pgtype.Int8OID, uint64(1)},
		{pgtype.Int8OID, 1.0},
		{pgtype.BoolOID, 1},
		{pgtype.BoolOID, "t"},
		{pgtype.TextOID, "nul\x00byte"},
		{pgtype.TextOID, []byte("nul\x00byte")},
		{pgtype.VarcharOID, "\xff\xfe invalid utf-8"},
		{pgtype.BPCharOID, []byte("\xc3")},
		{pgtype.NameOID, strings.Repeat("n", 64)},
		{pgtype.NameOID, []byte(strings.Repeat("n", 64))},
		{pgtype.TextOID, 42},
		{pgtype.Float8OID, 1},
		{pgtype.Float4OID, float64(1)},
		{pgtype.OIDOID, uint32(1)}, // oid: not supported
		{pgtype.IntervalOID, "1 day"},
	}
	for _, tc := range tests {
		if b, err := AppendText([]byte("x"), tc.oid, tc.v, nil); err == nil || string(b) != "x" {
			t.Errorf("text of %s %#v: %q, %v; want an error and dst unchanged", typeName(tc.oid), tc.v, b, err)
		}
		if b, err := AppendBinary([]byte("x"), tc.oid, tc.v); err == nil || string(b) != "x" {
			t.Errorf("binary of %s %#v: %q, %v; want an error and dst unchanged", typeName(tc.oid), tc.v, b, err)
		}
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	dst := []byte("prefix:")
	got, err := AppendText(dst, pgtype.Int8OID, int64(-7), nil)
	if err != nil || string(got) != "prefix:-7" {
		t.Errorf("AppendText: %q, %v", got, err)
	}
	got, err = AppendBinary([]byte{9}, pgtype.Int4OID, 1)
	if err != nil || string(got) != "\x09\x00\x00\x00\x01" {
		t.Errorf("AppendBinary: %q, %v", got, err)
	}
}

func TestPadBpchar(t *testing.T) {
	tests := []struct {
		in     string
		typmod int32
		want   string
	}{
		{"ab", 9, "ab   "},
		{"äb", 7, "äb "},
		{"abc", 7, "abc"},
		{"abcd", 7, "abcd"},
		{"a", -1, "a"},
		{"", 5, " "},
		{"a", 4, "a"},
	}
	for _, tc := range tests {
		if got := PadBpchar(tc.in, tc.typmod); got != tc.want {
			t.Errorf("PadBpchar(%q, %d) = %q, want %q", tc.in, tc.typmod, got, tc.want)
		}
	}
}

func TestSupports(t *testing.T) {
	for _, oid := range []uint32{pgtype.BoolOID, pgtype.NameOID, pgtype.Int8OID, pgtype.Int2OID, pgtype.Int4OID, pgtype.TextOID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.BPCharOID, pgtype.VarcharOID, pgtype.DateOID, pgtype.TimestampOID,
		pgtype.TimestamptzOID, pgtype.IntervalOID, pgtype.NumericOID} {
		if !supports(oid) {
			t.Errorf("Supports(%d) = false", oid)
		}
	}
	for _, oid := range []uint32{0, pgtype.ByteaOID, pgtype.OIDOID, pgtype.JSONOID, pgtype.TimeOID, pgtype.TimetzOID, pgtype.UUIDOID, pgtype.JSONBOID} {
		if supports(oid) {
			t.Errorf("Supports(%d) = true", oid)
		}
	}
}
