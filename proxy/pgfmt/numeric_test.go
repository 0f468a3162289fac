package pgfmt

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

func mustDec(t testing.TB, s string) *apd.Decimal {
	t.Helper()
	d, _, err := apd.NewFromString(s)
	if err != nil {
		t.Fatalf("apd %q: %v", short(s), err)
	}
	return d
}

// numericLiterals are edge cases of scale, group alignment and size.
func numericLiterals() []string {
	lits := []string{
		"0", "0.0", "0.00", "-0.00", "0.000000", "1", "-1", "1.50", "-1.50", "1.00", "100.000",
		"9999", "10000", "10001", "99999999", "100000000", "12340000", "0.0001", "0.00001",
		"0.00001234", "1234.5678", "0.5", "50000.00005", "12345.6789", "0.1", "3.14159",
		"1e-20", "1e20", "1.23e5", "-1.23e-5", "1e100", "1E-100",
		"123456789012345678901234567890.123", "-123456789012345678901234567890.123",
		"1.000000000000000000000000000001", "9223372036854775807", "-9223372036854775808",
		"18446744073709551616", "0.000000000000000000000000000000000000000001",
		"1000000.0000", "99999999999999999999.99999999999999999999",
		"NaN", "Infinity", "-Infinity",
		"1" + strings.Repeat("0", 1000), "0." + strings.Repeat("0", 999) + "1",
		strings.Repeat("9", 500) + "." + strings.Repeat("9", 500),
		"0." + strings.Repeat("0", 16382) + "1",
	}
	return lits
}

func numericCases(t testing.TB, lits []string) []pgCase {
	var cases []pgCase
	for _, l := range lits {
		cases = append(cases, pgCase{name: short(l), expr: sqlquote.Literal(l) + "::numeric", v: mustDec(t, l)})
	}
	return cases
}

func short(s string) string {
	if len(s) > 40 {
		return s[:18] + "..." + s[len(s)-18:] + fmt.Sprintf("(%d chars)", len(s))
	}
	return s
}

// randomNumeric returns a numeric literal with random digits and scale,
// biased toward group-boundary edges.
func randomNumeric(r *rand.Rand) string {
	var b strings.Builder
	if r.Intn(3) == 0 {
		b.WriteByte('-')
	}
	intDigits := []int{0, 1, 3, 4, 5, 8, 9, 17, 40}[r.Intn(9)]
	fracDigits := []int{0, 1, 2, 3, 4, 5, 8, 12, 20, 33}[r.Intn(10)]
	digit := func() byte {
		if r.Intn(3) == 0 {
			return '0'
		}
		return byte('0' + r.Intn(10))
	}
	if intDigits == 0 {
		b.WriteByte('0')
	}
	for i := 0; i < intDigits; i++ {
		b.WriteByte(digit())
	}
	if fracDigits > 0 {
		b.WriteByte('.')
		for i := 0; i < fracDigits; i++ {
			b.WriteByte(digit())
		}
	}
	return b.String()
}

func TestNumericAgainstServer(t *testing.T) {
	s := newSession(t)
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty := newTally(t)
	cases := numericCases(t, numericLiterals())
	// 9 × 10^131071 has weight 32767, the largest the server stores; apd's
	// parser does not take exponents that large, so it is built directly.
	largest := &apd.Decimal{Exponent: 131071}
	largest.Coeff.SetInt64(9)
	cases = append(cases, pgCase{name: "9e131071", expr: "'9e131071'::numeric", v: largest})
	ty.add("numeric text, literals", s.diff("literals", pgtype.NumericOID, cases, 0, st))
	ty.add("numeric binary, literals", s.diff("literals", pgtype.NumericOID, cases, 1, st))

	r := rand.New(rand.NewSource(1))
	var lits []string
	for i := 0; i < 3000; i++ {
		lits = append(lits, randomNumeric(r))
	}
	cases = numericCases(t, lits)
	ty.add("numeric text, random", s.diff("random", pgtype.NumericOID, cases, 0, st))
	ty.add("numeric binary, random", s.diff("random", pgtype.NumericOID, cases, 1, st))

	// int64 is accepted as a numeric of scale 0.
	ints := []pgCase{
		{name: "int64 0", expr: "0::numeric", v: int64(0)},
		{name: "int64 -42", expr: "(-42)::numeric", v: int64(-42)},
		{name: "int64 max", expr: "9223372036854775807::numeric", v: int64(9223372036854775807)},
	}
	ty.add("numeric text, int64", s.diff("int64", pgtype.NumericOID, ints, 0, st))
	ty.add("numeric binary, int64", s.diff("int64", pgtype.NumericOID, ints, 1, st))
	ty.log()
}

func TestNumericScaleExamples(t *testing.T) {
	// The documented promises, spelled out without a server.
	tests := []struct {
		in, text string
		bin      string // hex
	}{
		{"1.50", "1.50", "0002 0000 0000 0002 0001 1388"},
		{"0.00", "0.00", "0000 0000 0000 0002"},
		{"10000", "10000", "0001 0001 0000 0000 0001"},
		{"-0.0001", "-0.0001", "0001 ffff 4000 0004 0001"},
		{"NaN", "NaN", "0000 0000 c000 0000"},
		{"-Infinity", "-Infinity", "0000 0000 f000 0020"},
		{"Infinity", "Infinity", "0000 0000 d000 0020"},
	}
	for _, tc := range tests {
		d := mustDec(t, tc.in)
		text, err := AppendText(nil, pgtype.NumericOID, d, nil)
		if err != nil || string(text) != tc.text {
			t.Errorf("%s: text %q, %v; want %q", tc.in, text, err, tc.text)
		}
		bin, err := AppendBinary(nil, pgtype.NumericOID, *d)
		if err != nil || fmt.Sprintf("% x", bin) != spacedHex(tc.bin) {
			t.Errorf("%s: binary % x, %v; want %s", tc.in, bin, err, tc.bin)
		}
	}
}

func spacedHex(groups string) string {
	h := strings.ReplaceAll(groups, " ", "")
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func TestNumericErrors(t *testing.T) {
	tooSmall := mustDec(t, "1E-16384")
	tooBig := &apd.Decimal{Exponent: 131072} // 10^131072: weight 32768
	tooBig.Coeff.SetInt64(1)
	snan := &apd.Decimal{Form: apd.NaNSignaling}
	var nilDec *apd.Decimal
	for _, v := range []any{tooSmall, tooBig, snan, nilDec, 1.5, "1.5"} {
		if b, err := AppendText([]byte("x"), pgtype.NumericOID, v, nil); err == nil || string(b) != "x" {
			t.Errorf("text of %v: got %q, %v; want an error and dst unchanged", v, b, err)
		}
		if b, err := AppendBinary([]byte("x"), pgtype.NumericOID, v); err == nil || string(b) != "x" {
			t.Errorf("binary of %v: got %q, %v; want an error and dst unchanged", v, b, err)
		}
	}
	// The largest values the server holds still encode.
	for _, e := range []int32{131071, -16383} {
		d := &apd.Decimal{Exponent: e}
		d.Coeff.SetInt64(9)
		if _, err := AppendBinary(nil, pgtype.NumericOID, d); err != nil {
			t.Errorf("9E%d: %v", e, err)
		}
	}
}

func TestNumericDivAgainstServer(t *testing.T) {
	s := newSession(t)
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty := newTally(t)
	pairs := [][2]string{
		{"1", "3"}, {"2", "3"}, {"-2", "3"}, {"1", "-3"}, {"3", "2"}, {"10", "4"}, {"1", "7"},
		{"0", "5"}, {"0.00", "7"}, {"1.5000", "2"}, {"100", "3"}, {"99999", "1"}, {"10000", "9999"},
		{"9999", "10000"}, {"1", "10000"}, {"12345678901234567890", "3"}, {"1e-20", "3"},
		{"1", "1e20"}, {"1e20", "1e-20"}, {"5", "0.0000001"}, {"0.1", "0.3"}, {"2", "0.0004"},
		{"1.005", "1"}, {"-1.005", "1"}, {"0.5", "1000000000000000000"},
		{"123456789012345678901234567890.123", "7.5"}, {"1", "123456789012345678901234567890"},
		{"NaN", "1"}, {"1", "NaN"}, {"NaN", "0"}, {"Infinity", "2"}, {"Infinity", "-2"},
		{"-Infinity", "3"}, {"Infinity", "Infinity"}, {"Infinity", "-Infinity"}, {"5", "Infinity"},
		{"-5", "-Infinity"}, {"0.005", "Infinity"},
		{"1", "0." + strings.Repeat("0", 998) + "3"}, {"1." + strings.Repeat("0", 1200), "3"},
		// Rounding exactly on a half: half away from zero.
		{"1", "32"}, {"-1", "32"}, {"5", "1e17"}, {"-5", "1e17"}, {"15", "1e17"}, {"25", "1e17"},
	}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		b := randomNumeric(r)
		if mustDec(t, b).IsZero() {
			continue
		}
		pairs = append(pairs, [2]string{randomNumeric(r), b})
	}
	var cases []pgCase
	for _, p := range pairs {
		q, err := NumericDiv(mustDec(t, p[0]), mustDec(t, p[1]))
		if err != nil {
			t.Fatalf("NumericDiv(%s, %s): %v", p[0], p[1], err)
		}
		cases = append(cases, pgCase{
			name: short(p[0]) + " / " + short(p[1]),
			expr: sqlquote.Literal(p[0]) + "::numeric / " + sqlquote.Literal(p[1]) + "::numeric",
			v:    q,
		})
	}
	ty.add("numeric division text", s.diff("div", pgtype.NumericOID, cases, 0, st))
	ty.add("numeric division binary", s.diff("div", pgtype.NumericOID, cases, 1, st))

	// AVG of integer and numeric columns is SUM / COUNT with the division scale.
	avgs := [][]string{
		{"1", "2"}, {"1", "2", "4"}, {"7"}, {"-1", "-2"}, {"0"}, {"1", "1", "1"},
		{"1.5", "2.25"}, {"1.5", "2.5"}, {"0.001", "0.002", "0.004"}, {"10000", "20000", "1"},
		{"9223372036854775807", "9223372036854775807"}, {"1e-30", "3"}, {"NaN", "1"},
		{"Infinity", "1"}, {"-Infinity", "1"},
	}
	for i := 0; i < 300; i++ {
		n := 1 + r.Intn(6)
		var vals []string
		for j := 0; j < n; j++ {
			vals = append(vals, randomNumeric(r))
		}
		avgs = append(avgs, vals)
	}
	var avgCases []pgCase
	for _, vals := range avgs {
		sum := new(apd.Decimal)
		var rows []string
		for _, v := range vals {
			if _, err := apd.BaseContext.WithPrecision(5000).Add(sum, sum, mustDec(t, v)); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, "("+sqlquote.Literal(v)+"::numeric)")
		}
		avg, ok, err := numericAvg(sum, int64(len(vals)))
		if err != nil || !ok {
			t.Fatalf("NumericAvg(%v): %v %v", vals, ok, err)
		}
		avgCases = append(avgCases, pgCase{
			name: strings.Join(vals, ","),
			expr: "(SELECT avg(x) FROM (VALUES " + strings.Join(rows, ",") + ") t(x))",
			v:    avg,
		})
	}
	// Integer columns take the int8/int4 average paths in the server.
	intAvgs := [][]int64{{1, 2}, {1, 2, 4}, {-3, 1}, {5}, {2147483647, 2147483647, 1}}
	for _, vals := range intAvgs {
		var sum int64
		var rows []string
		for _, v := range vals {
			sum += v
			rows = append(rows, fmt.Sprintf("(%d::int4)", v))
		}
		avg, _, err := numericAvg(new(apd.Decimal).SetInt64(sum), int64(len(vals)))
		if err != nil {
			t.Fatal(err)
		}
		avgCases = append(avgCases, pgCase{
			name: fmt.Sprint(vals),
			expr: "(SELECT avg(x) FROM (VALUES " + strings.Join(rows, ",") + ") t(x))",
			v:    avg,
		})
	}
	ty.add("numeric avg text", s.diff("avg", pgtype.NumericOID, avgCases, 0, st))
	ty.add("numeric avg binary", s.diff("avg", pgtype.NumericOID, avgCases, 1, st))
	ty.log()
}

func TestNumericDivEdges(t *testing.T) {
	got, err := NumericDiv(mustDec(t, "1"), mustDec(t, "2"))
	if err != nil || got.String() != "0.50000000000000000000" {
		t.Errorf("1/2 = %v, %v; want 0.50000000000000000000", got, err)
	}
	avg, ok, err := numericAvg(mustDec(t, "3"), 2)
	if b, _ := AppendText(nil, pgtype.NumericOID, avg, nil); !ok || err != nil || string(b) != "1.5000000000000000" {
		t.Errorf("avg(1,2) = %q, %v, %v; want 1.5000000000000000", b, ok, err)
	}
	if _, ok, err := numericAvg(mustDec(t, "0"), 0); ok || err != nil {
		t.Errorf("avg of no rows: ok=%v err=%v; want NULL", ok, err)
	}
	for _, p := range [][2]string{{"1", "0"}, {"0", "0.00"}, {"Infinity", "0"}, {"-Infinity", "0"}} {
		if _, err := NumericDiv(mustDec(t, p[0]), mustDec(t, p[1])); err != ErrDivisionByZero {
			t.Errorf("%s/%s: err %v, want ErrDivisionByZero", p[0], p[1], err)
		}
	}
	if q, err := NumericDiv(mustDec(t, "NaN"), mustDec(t, "0")); err != nil || q.Form != apd.NaN {
		t.Errorf("NaN/0 = %v, %v; want NaN", q, err)
	}
}
