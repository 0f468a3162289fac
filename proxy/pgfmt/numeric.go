package pgfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/cockroachdb/apd/v3"
)

// Limits of the server's numeric storage (numeric.c).
const (
	numericDscaleMax     = 0x3FFF // NUMERIC_DSCALE_MAX
	numericWeightMax     = 32767  // weights are int16
	numericMinSigDigits  = 16     // NUMERIC_MIN_SIG_DIGITS
	numericMaxDispScale  = 1000   // NUMERIC_MAX_DISPLAY_SCALE
	numericSignPos       = 0x0000
	numericSignNeg       = 0x4000
	numericSignNaN       = 0xC000
	numericSignPInf      = 0xD000
	numericSignNInf      = 0xF000
	numericGroupDigits   = 4 // DEC_DIGITS: base 10000
	smallNumericDigitBuf = 40
)

// ErrDivisionByZero is returned by NumericDiv for a zero divisor, where the
// server raises SQLSTATE 22012 (division_by_zero).
var ErrDivisionByZero = errors.New("pgfmt: division by zero")

// numericLayout is a finite numeric value split the way the server stores it:
// base-10000 groups with the decimal point on a group boundary, leading and
// trailing zero groups stripped, and the display scale kept separately.
type numericLayout struct {
	neg    bool
	digits []byte // decimal digits of the coefficient, no leading zeros ("0" for zero)
	exp    int    // value = digits × 10^exp
	dscale int
	// Group coordinates: the coefficient's first digit sits at padded position
	// first (counted from the start of the first, left-padded, integer group).
	first      int
	intGroups  int // groups left of the point in the padded form
	weight     int // base-10000 weight of the first nonzero group
	ndigits    int // number of groups from the first to the last nonzero one
	firstGroup int // value of the first nonzero group (0 for zero)
}

// layoutNumeric splits d (which must be finite) into a numericLayout, writing
// the digits into buf when they fit.
func layoutNumeric(d *apd.Decimal, buf []byte) (numericLayout, error) {
	var l numericLayout
	if d.Coeff.Sign() < 0 {
		return l, fmt.Errorf("pgfmt: numeric with a negative coefficient")
	}
	l.digits = d.Coeff.Append(buf[:0], 10)
	l.exp = int(d.Exponent)
	if l.exp < 0 {
		l.dscale = -l.exp
	}
	if l.dscale > numericDscaleMax {
		return l, fmt.Errorf("pgfmt: numeric display scale %d exceeds %d", l.dscale, numericDscaleMax)
	}
	isZero := len(l.digits) == 1 && l.digits[0] == '0'
	l.neg = d.Negative && !isZero
	if isZero {
		return l, nil
	}
	// Integer and fraction digit counts of the plain decimal form.
	ip := len(l.digits) + l.exp // digits left of the point; <= 0 means leading fraction zeros
	intDigits := ip
	if intDigits < 0 {
		intDigits = 0
	}
	lead := (numericGroupDigits - intDigits%numericGroupDigits) % numericGroupDigits
	l.intGroups = (lead + intDigits) / numericGroupDigits
	// Padded position of the coefficient's first digit.
	l.first = lead
	if ip < 0 {
		l.first += -ip
	}
	last := len(l.digits) - 1
	for l.digits[last] == '0' {
		last--
	}
	g0 := l.first / numericGroupDigits
	g1 := (l.first + last) / numericGroupDigits
	l.weight = l.intGroups - 1 - g0
	l.ndigits = g1 - g0 + 1
	if l.weight > numericWeightMax {
		return l, fmt.Errorf("pgfmt: value overflows numeric format")
	}
	l.firstGroup = l.group(g0)
	return l, nil
}

// group returns the value of padded group g.
func (l *numericLayout) group(g int) int {
	v := 0
	for k := g * numericGroupDigits; k < (g+1)*numericGroupDigits; k++ {
		v *= 10
		if i := k - l.first; i >= 0 && i < len(l.digits) {
			v += int(l.digits[i] - '0')
		}
	}
	return v
}

// numericValue accepts the Go representations of numeric.
func numericValue(v any, tmp *apd.Decimal) (*apd.Decimal, error) {
	switch x := v.(type) {
	case *apd.Decimal:
		if x == nil {
			return nil, fmt.Errorf("pgfmt: nil *apd.Decimal (NULL is the caller's business)")
		}
		return x, nil
	case apd.Decimal:
		*tmp = x
		return tmp, nil
	case int64:
		tmp.SetInt64(x)
		return tmp, nil
	}
	return nil, typeError("numeric", v)
}

func appendNumericText(dst []byte, v any) ([]byte, error) {
	var tmp apd.Decimal
	d, err := numericValue(v, &tmp)
	if err != nil {
		return dst, err
	}
	return AppendNumericText(dst, d)
}

// AppendNumericText appends d as the server's numeric_out prints it: plain
// notation with exactly the display scale's fraction digits (-d.Exponent, at
// least 0), "NaN", "Infinity" or "-Infinity".
func AppendNumericText(dst []byte, d *apd.Decimal) ([]byte, error) {
	switch d.Form {
	case apd.NaN:
		return append(dst, "NaN"...), nil
	case apd.Infinite:
		if d.Negative {
			return append(dst, "-Infinity"...), nil
		}
		return append(dst, "Infinity"...), nil
	case apd.Finite:
	default:
		return dst, fmt.Errorf("pgfmt: numeric form %v has no Postgres equivalent", d.Form)
	}
	var buf [smallNumericDigitBuf]byte
	l, err := layoutNumeric(d, buf[:])
	if err != nil {
		return dst, err
	}
	if l.neg {
		dst = append(dst, '-')
	}
	digits := l.digits
	if l.exp >= 0 {
		dst = append(dst, digits...)
		if !(len(digits) == 1 && digits[0] == '0') {
			for i := 0; i < l.exp; i++ {
				dst = append(dst, '0')
			}
		}
		return dst, nil
	}
	ip := len(digits) + l.exp
	if ip > 0 {
		dst = append(dst, digits[:ip]...)
		dst = append(dst, '.')
		return append(dst, digits[ip:]...), nil
	}
	dst = append(dst, '0', '.')
	for i := 0; i < -ip; i++ {
		dst = append(dst, '0')
	}
	return append(dst, digits...), nil
}

func appendNumericBinary(dst []byte, v any) ([]byte, error) {
	var tmp apd.Decimal
	d, err := numericValue(v, &tmp)
	if err != nil {
		return dst, err
	}
	return AppendNumericBinary(dst, d)
}

// AppendNumericBinary appends d as the server's numeric_send does: int16
// ndigits, int16 weight, uint16 sign, uint16 dscale, then ndigits base-10000
// groups, with leading and trailing zero groups stripped (zero is ndigits 0,
// weight 0, positive, with its display scale).
func AppendNumericBinary(dst []byte, d *apd.Decimal) ([]byte, error) {
	special := uint16(0)
	switch d.Form {
	case apd.NaN:
		special = numericSignNaN
	case apd.Infinite:
		special = numericSignPInf
		if d.Negative {
			special = numericSignNInf
		}
	case apd.Finite:
	default:
		return dst, fmt.Errorf("pgfmt: numeric form %v has no Postgres equivalent", d.Form)
	}
	if special != 0 {
		// numeric_send reads the header fields with the short-format macros even
		// for the special values, so the infinities' header bits leak into dscale
		// as 32 ((0xD000 & 0x1F80) >> 7); NaN's give 0.
		dscale := (special & 0x1F80) >> 7
		dst = binary.BigEndian.AppendUint32(dst, 0) // ndigits, weight
		dst = binary.BigEndian.AppendUint16(dst, special)
		return binary.BigEndian.AppendUint16(dst, dscale), nil
	}
	var buf [smallNumericDigitBuf]byte
	l, err := layoutNumeric(d, buf[:])
	if err != nil {
		return dst, err
	}
	sign := uint16(numericSignPos)
	if l.neg {
		sign = numericSignNeg
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(l.ndigits))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(l.weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(l.dscale))
	g0 := l.first / numericGroupDigits
	for g := g0; g < g0+l.ndigits; g++ {
		dst = binary.BigEndian.AppendUint16(dst, uint16(l.group(g)))
	}
	return dst, nil
}

// NumericDiv divides as the server's numeric_div does. The result scale is
// select_div_scale's: enough fraction digits for at least 16 significant
// digits, never fewer than either input's display scale, at most 1000; the
// quotient is rounded half away from zero at that scale. NaN and infinities
// follow the server (NaN in, NaN out; ±Infinity/finite is a signed infinity;
// Infinity/Infinity is NaN; finite/±Infinity is 0). A zero divisor of a non-NaN
// dividend returns ErrDivisionByZero.
func NumericDiv(a, b *apd.Decimal) (*apd.Decimal, error) {
	if a.Form == apd.NaNSignaling || b.Form == apd.NaNSignaling {
		return nil, fmt.Errorf("pgfmt: signaling NaN has no Postgres equivalent")
	}
	if a.Form != apd.Finite || b.Form != apd.Finite {
		return divSpecial(a, b)
	}
	var bufA, bufB [smallNumericDigitBuf]byte
	la, err := layoutNumeric(a, bufA[:])
	if err != nil {
		return nil, err
	}
	lb, err := layoutNumeric(b, bufB[:])
	if err != nil {
		return nil, err
	}
	if b.Coeff.Sign() == 0 {
		return nil, ErrDivisionByZero
	}
	rscale := selectDivScale(&la, &lb)

	// q = round(a.coeff × 10^a.exp / (b.coeff × 10^b.exp) × 10^rscale), exactly.
	num := new(big.Int).Set(a.Coeff.MathBigInt())
	den := new(big.Int).Set(b.Coeff.MathBigInt())
	if k := int(a.Exponent) - int(b.Exponent) + rscale; k >= 0 {
		num.Mul(num, pow10(k))
	} else {
		den.Mul(den, pow10(-k))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	res := new(apd.Decimal)
	res.Coeff.SetMathBigInt(q)
	res.Exponent = int32(-rscale)
	res.Negative = (la.neg != lb.neg) && q.Sign() != 0
	var buf [smallNumericDigitBuf]byte
	if _, err := layoutNumeric(res, buf[:]); err != nil {
		return nil, err
	}
	return res, nil
}

// numericAvg is the server's numeric average of count values summing to sum:
// sum / count with NumericDiv's scale, or ok=false (SQL NULL) when count is 0.
// This is how AVG of integer and numeric columns is re-derived from a rollup's
// SUM and COUNT: the server itself computes AVG as that very division.
func numericAvg(sum *apd.Decimal, count int64) (avg *apd.Decimal, ok bool, err error) {
	if count == 0 {
		return nil, false, nil
	}
	if count < 0 {
		return nil, false, fmt.Errorf("pgfmt: negative count %d", count)
	}
	var n apd.Decimal
	n.SetInt64(count)
	avg, err = NumericDiv(sum, &n)
	return avg, err == nil, err
}

// selectDivScale is the server's select_div_scale.
func selectDivScale(a, b *numericLayout) int {
	// Estimate the quotient's weight; with equal first groups, assume a < b.
	qweight := a.weight - b.weight
	if a.firstGroup <= b.firstGroup {
		qweight--
	}
	rscale := numericMinSigDigits - qweight*numericGroupDigits
	rscale = max(rscale, a.dscale, b.dscale, 0)
	return min(rscale, numericMaxDispScale)
}

func divSpecial(a, b *apd.Decimal) (*apd.Decimal, error) {
	if a.Form == apd.NaN || b.Form == apd.NaN {
		return &apd.Decimal{Form: apd.NaN}, nil
	}
	if a.Form == apd.Infinite {
		if b.Form != apd.Finite {
			return &apd.Decimal{Form: apd.NaN}, nil
		}
		if b.Coeff.Sign() == 0 {
			return nil, ErrDivisionByZero
		}
		return &apd.Decimal{Form: apd.Infinite, Negative: a.Negative != b.Negative}, nil
	}
	// A finite value over an infinity: the server returns plain zero rather
	// than an underflow error.
	return new(apd.Decimal), nil
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}
