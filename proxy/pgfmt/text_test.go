package pgfmt

import (
	"math"
	"strings"
	"testing"
)

func TestScalarsAgainstServer(t *testing.T) {
	s := newSession(t)
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty := newTally(t)
	groups := []struct {
		oid   uint32
		cases []pgCase
	}{
		{oidBool, []pgCase{
			{name: "true", expr: "true", v: true},
			{name: "false", expr: "false", v: false},
		}},
		{oidInt2, []pgCase{
			{name: "0", expr: "0::int2", v: int64(0)},
			{name: "-1", expr: "(-1)::int2", v: int64(-1)},
			{name: "min", expr: "(-32768)::int2", v: int64(math.MinInt16)},
			{name: "max", expr: "32767::int2", v: int16(math.MaxInt16)},
		}},
		{oidInt4, []pgCase{
			{name: "0", expr: "0::int4", v: int32(0)},
			{name: "42", expr: "42::int4", v: 42},
			{name: "min", expr: "(-2147483648)::int4", v: int64(math.MinInt32)},
			{name: "max", expr: "2147483647::int4", v: int64(math.MaxInt32)},
		}},
		{oidInt8, []pgCase{
			{name: "0", expr: "0::int8", v: int64(0)},
			{name: "-123456789012", expr: "(-123456789012)::int8", v: int64(-123456789012)},
			{name: "min", expr: "(-9223372036854775808)::int8", v: int64(math.MinInt64)},
			{name: "max", expr: "9223372036854775807::int8", v: int64(math.MaxInt64)},
		}},
		{oidText, stringCases("text")},
		{oidVarchar, stringCases("varchar")},
		{oidName, []pgCase{
			{name: "abc", expr: "'abc'::name", v: "abc"},
			{name: "63 bytes", expr: "'" + strings.Repeat("n", 63) + "'::name", v: strings.Repeat("n", 63)},
			{name: "unicode", expr: "'öl'::name", v: []byte("öl")},
		}},
		{oidBpchar, []pgCase{
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
		cases = append(cases, pgCase{name: short(v), expr: quoteLit(v) + "::" + typ, v: gv})
	}
	return cases
}

func TestScalarErrors(t *testing.T) {
	tests := []struct {
		oid uint32
		v   any
	}{
		{oidInt2, int64(32768)},
		{oidInt2, -32769},
		{oidInt4, int64(math.MaxInt32) + 1},
		{oidInt4, int64(math.MinInt32) - 1},
		{oidInt8, uint64(1)},
		{oidInt8, 1.0},
		{oidBool, 1},
		{oidBool, "t"},
		{oidText, "nul\x00byte"},
		{oidText, []byte("nul\x00byte")},
		{oidVarchar, "\xff\xfe invalid utf-8"},
		{oidBpchar, []byte("\xc3")},
		{oidName, strings.Repeat("n", 64)},
		{oidName, []byte(strings.Repeat("n", 64))},
		{oidText, 42},
		{oidFloat8, 1},
		{oidFloat4, float64(1)},
		{26, uint32(1)}, // oid: not supported
		{oidInterval, "1 day"},
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
	got, err := AppendText(dst, oidInt8, int64(-7), nil)
	if err != nil || string(got) != "prefix:-7" {
		t.Errorf("AppendText: %q, %v", got, err)
	}
	got, err = AppendBinary([]byte{9}, oidInt4, 1)
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
	for _, oid := range []uint32{16, 19, 20, 21, 23, 25, 700, 701, 1042, 1043, 1082, 1114, 1184, 1186, 1700} {
		if !Supports(oid) {
			t.Errorf("Supports(%d) = false", oid)
		}
	}
	for _, oid := range []uint32{0, 17, 26, 114, 1083, 1266, 2950, 3802} {
		if Supports(oid) {
			t.Errorf("Supports(%d) = true", oid)
		}
	}
}
