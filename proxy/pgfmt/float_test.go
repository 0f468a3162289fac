package pgfmt

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func float8Values() []float64 {
	return []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, -1.5, 100, 1e6, 1234567,
		1e14, 123456789012345, 1e15, 1234567890123456, 1e16, 1e17, 9007199254740992, 9007199254740993,
		1e20, 1e21, 1e22, 1e23, 1e300, -1e300, 1.5e-7, 1e-4, 1.5e-4, 1e-5, 0.0001234, 0.00001234,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
		2.225073858507201e-308, 4.9406564584124654e-324 * 3, 123.456, 5e-324, 1.7976931348623157e308,
		math.Pi, math.E, 299792458, 6.02214076e23, 1.602176634e-19, 0.5, 0.25, 0.125, 1e100,
		math.Inf(1), math.Inf(-1), math.Float64frombits(0x7FF8000000000000), // the server's NaN
	}
}

func float4Values() []float32 {
	return []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, -1.5, 100, 99999,
		123456, 999999, 1e6, 1234567, 16777216, 16777217, 1e10, 1e-4, 1.5e-4, 1e-5, 1.5e-7,
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1.17549435e-38, 123.456,
		3.4028235e38, 1e38, 6.02214076e23, float32(math.Pi),
		float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7FC00000),
	}
}

// float8Case sends the exact bits as a binary parameter, so the server sees
// the very value the encoder gets.
func float8Case(f float64) pgCase {
	return pgCase{
		name: strconv.FormatFloat(f, 'g', -1, 64) + fmt.Sprintf(" (%016x)", math.Float64bits(f)),
		expr: "$?::float8", v: f,
		param: binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), paramOID: pgtype.Float8OID, paramFmt: 1,
	}
}

func float4Case(f float32) pgCase {
	return pgCase{
		name: strconv.FormatFloat(float64(f), 'g', -1, 32) + fmt.Sprintf(" (%08x)", math.Float32bits(f)),
		expr: "$?::float4", v: f,
		param: binary.BigEndian.AppendUint32(nil, math.Float32bits(f)), paramOID: pgtype.Float4OID, paramFmt: 1,
	}
}

func TestFloatAgainstServer(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	r := rand.New(rand.NewSource(3))

	var f8, f4 []pgCase
	for _, f := range float8Values() {
		f8 = append(f8, float8Case(f))
	}
	for _, f := range float4Values() {
		f4 = append(f4, float4Case(f))
	}
	// Literals too: the value reaches the server as text that Go wrote, and
	// the server's parser must land on the same double.
	lits := []pgCase{
		{name: "'0.1'", expr: "'0.1'::float8", v: 0.1},
		{name: "'1e+20'", expr: "'1e20'::float8", v: 1e20},
		{name: "'-0'", expr: "'-0'::float8", v: math.Copysign(0, -1)},
		{name: "'NaN'", expr: "'NaN'::float8", v: math.NaN()},
		{name: "1/3", expr: "1::float8/3", v: 1.0 / 3},
	}
	f8 = append(f8, lits...)
	// Random bit patterns cover every exponent; random "nice" decimals cover
	// the shortest-digit ties.
	var r8, r4 []pgCase
	for i := 0; i < 4000; i++ {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) {
			continue
		}
		r8 = append(r8, float8Case(f))
		g := math.Float32frombits(r.Uint32())
		if g != g {
			continue
		}
		r4 = append(r4, float4Case(g))
	}
	for i := 0; i < 2000; i++ {
		f, _ := strconv.ParseFloat(fmt.Sprintf("%de%d", r.Intn(1000000), r.Intn(60)-30), 64)
		r8 = append(r8, float8Case(f))
		r4 = append(r4, float4Case(float32(f)))
	}

	// Large integers and short decimals at high exponents are where a short
	// decimal lands exactly halfway between two floats (the server never
	// prints those).
	for i := 0; i < 2000; i++ {
		r8 = append(r8, float8Case(float64(r.Int63n(1<<62))*math.Ldexp(1, r.Intn(40))))
		r4 = append(r4, float4Case(float32(r.Int63n(1e10))))
		f, _ := strconv.ParseFloat(fmt.Sprintf("%de%d", r.Intn(100000), 15+r.Intn(10)), 64)
		r8 = append(r8, float8Case(f))
	}
	for _, efd := range allExtraFloat {
		st := s.set("ISO, MDY", "postgres", "UTC", efd)
		label := fmt.Sprintf("extra_float_digits=%d", efd)
		ty.add("float8 text, edge cases, "+label, s.diff(label, pgtype.Float8OID, f8, 0, st))
		ty.add("float4 text, edge cases, "+label, s.diff(label, pgtype.Float4OID, f4, 0, st))
		ty.add("float8 text, random, "+label, s.diff(label, pgtype.Float8OID, r8, 0, st))
		ty.add("float4 text, random, "+label, s.diff(label, pgtype.Float4OID, r4, 0, st))
	}
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty.add("float8 binary, edge cases", s.diff("binary", pgtype.Float8OID, f8, 1, st))
	ty.add("float4 binary, edge cases", s.diff("binary", pgtype.Float4OID, f4, 1, st))
	ty.log()
}

func TestFloatTextExamples(t *testing.T) {
	tests := []struct {
		v    any
		efd  int
		want string
	}{
		{1e20, 1, "1e+20"},
		{1.5e-7, 1, "1.5e-07"},
		{math.Copysign(0, -1), 1, "-0"},
		{math.Inf(1), 1, "Infinity"},
		{math.Inf(-1), 0, "-Infinity"},
		{math.NaN(), 1, "NaN"},
		{0.1, 3, "0.1"},
		{0.1, 0, "0.1"},
		{1.0 / 3, 0, "0.333333333333333"},
		{1.0 / 3, 1, "0.3333333333333333"},
		{1e15, 1, "1e+15"},
		{123456789012345.0, 1, "123456789012345"},
		{float32(0.1), 1, "0.1"},
		{float32(1e6), 1, "1e+06"},
		{float32(1.0 / 3), 0, "0.333333"},
		// Exactly halfway between two doubles: the server never prints those.
		{1e23, 1, "9.999999999999999e+22"},
		{1e23, 0, "1e+23"},
		{float32(62426032), 3, "6.2426032e+07"},
	}
	for _, tc := range tests {
		oid := uint32(pgtype.Float8OID)
		if _, ok := tc.v.(float32); ok {
			oid = pgtype.Float4OID
		}
		st := DefaultSettings()
		st.ExtraFloatDigits = tc.efd
		got, err := AppendText(nil, oid, tc.v, &st)
		if err != nil || string(got) != tc.want {
			t.Errorf("%v (efd %d): %q, %v; want %q", tc.v, tc.efd, got, err, tc.want)
		}
	}
	// Every NaN goes out as the one the server's input function stores.
	if b, _ := AppendBinary(nil, pgtype.Float8OID, math.NaN()); fmt.Sprintf("%x", b) != "7ff8000000000000" {
		t.Errorf("float8 NaN: %x", b)
	}
	if b, _ := AppendBinary(nil, pgtype.Float4OID, float32(math.Copysign(math.NaN(), -1))); fmt.Sprintf("%x", b) != "7fc00000" {
		t.Errorf("float4 NaN: %x", b)
	}
	// A float64 is not silently narrowed to float4, nor a float32 widened.
	if _, err := AppendText(nil, pgtype.Float4OID, 0.5, nil); err == nil {
		t.Error("float64 as float4: want an error")
	}
	if _, err := AppendBinary(nil, pgtype.Float8OID, float32(0.5)); err == nil {
		t.Error("float32 as float8: want an error")
	}
}
