package pgfmt

import (
	"math"
	"math/bits"
	"strconv"
)

// appendFloatText is the server's float4out/float8out. With extra_float_digits
// > 0 it prints the shortest digits that read back to the same value, in the
// server's Ryu layout: plain notation for decimal exponents -4 up to 5 (float4)
// or 14 (float8), otherwise d.ddde±XX. Otherwise it prints %.{6|15 +
// extra_float_digits}g, as the C library would.
func appendFloatText(dst []byte, f float64, bitSize int, extraFloatDigits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	if extraFloatDigits > 0 {
		return appendShortestFloat(dst, f, bitSize)
	}
	ndig := 15 + extraFloatDigits // DBL_DIG
	if bitSize == 32 {
		ndig = 6 + extraFloatDigits // FLT_DIG
	}
	if ndig < 1 {
		ndig = 1
	}
	// Go's %g with an explicit precision rounds and chooses the notation as C
	// does (exponent < -4 or >= precision), drops trailing zeros as C does
	// without '#', and writes at least two exponent digits.
	return strconv.AppendFloat(dst, f, 'g', ndig, 64)
}

// appendShortestFloat lays out the shortest round-trip digits the way the
// server's d2s.c/f2s.c to_chars does.
func appendShortestFloat(dst []byte, f float64, bitSize int) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	d, k := shortestDigits(f, bitSize)
	var digits [24]byte
	nd := len(strconv.AppendUint(digits[:0], d, 10))
	exp := k + nd - 1 // decimal exponent of the first digit
	limit := 15
	if bitSize == 32 {
		limit = 6
	}
	if exp >= -4 && exp < limit {
		// Plain notation: nexp digits before the point.
		nexp := exp + 1
		switch {
		case nexp <= 0:
			dst = append(dst, '0', '.')
			for i := 0; i < -nexp; i++ {
				dst = append(dst, '0')
			}
			return append(dst, digits[:nd]...)
		case nexp >= nd:
			dst = append(dst, digits[:nd]...)
			for i := nd; i < nexp; i++ {
				dst = append(dst, '0')
			}
			return dst
		default:
			dst = append(dst, digits[:nexp]...)
			dst = append(dst, '.')
			return append(dst, digits[nexp:nd]...)
		}
	}
	dst = append(dst, digits[0])
	if nd > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:nd]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}

// shortestDigits returns the digits d (without trailing zeros) and exponent k
// of the server's shortest representation d×10^k of f > 0.
//
// The server's Ryu is built without STRICTLY_SHORTEST: it never prints a
// decimal that lies exactly halfway between f and a neighbour, although such
// a decimal reads back as f under round-half-even. Go's shortest formatting
// accepts those halfway points (1e23 is the classic: Go prints 1e+23, the
// server 9.999999999999999e+22). So Go's answer is taken unless it is such a
// halfway point; then the shortest decimal strictly inside the rounding
// interval is searched by length, as the server's digit removal would end.
func shortestDigits(f float64, bitSize int) (uint64, int) {
	var buf [32]byte
	d, k := parseE(strconv.AppendFloat(buf[:0], f, 'e', -1, bitSize))
	mm, mp, e2 := roundingInterval(f, bitSize)
	if !equalsDyadic(d, k, mp, e2) && !equalsDyadic(d, k, mm, e2) {
		return d, k
	}
	inside := func(d uint64, k int) bool {
		if equalsDyadic(d, k, mp, e2) || equalsDyadic(d, k, mm, e2) {
			return false
		}
		var b [40]byte
		s := strconv.AppendUint(b[:0], d, 10)
		s = append(s, 'e')
		s = strconv.AppendInt(s, int64(k), 10)
		g, err := strconv.ParseFloat(string(s), bitSize)
		return err == nil && g == f
	}
	for n := digitCount(d) + 1; n <= 25; n++ {
		c, ck := parseE(strconv.AppendFloat(buf[:0], f, 'e', n-1, bitSize))
		// The correctly rounded n-digit decimal is the closest; when it falls
		// outside the (asymmetric) interval, its neighbour on the other side
		// of f may still be inside.
		for _, cand := range []uint64{c, c + 1, c - 1} {
			if cand != 0 && inside(cand, ck) {
				return trimZeros(cand, ck)
			}
		}
	}
	return d, k // unreachable: 17 (float8) or 9 (float4) digits always fit
}

// parseE reads strconv's 'e' output ("d.ddde±xx", no sign) into digits d
// without trailing zeros and exponent k, value d×10^k.
func parseE(s []byte) (uint64, int) {
	var d uint64
	nd, i := 0, 0
	for ; i < len(s) && s[i] != 'e'; i++ {
		if s[i] != '.' {
			d = d*10 + uint64(s[i]-'0')
			nd++
		}
	}
	exp := 0
	neg := s[i+1] == '-'
	for _, c := range s[i+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	return trimZeros(d, exp-(nd-1))
}

func trimZeros(d uint64, k int) (uint64, int) {
	for d != 0 && d%10 == 0 {
		d /= 10
		k++
	}
	return d, k
}

func digitCount(d uint64) int {
	n := 1
	for d >= 10 {
		d /= 10
		n++
	}
	return n
}

// roundingInterval returns f's rounding interval as Ryu computes it: the open
// interval (mm×2^e2, mp×2^e2), narrower below when f is a power of two.
func roundingInterval(f float64, bitSize int) (mm, mp uint64, e2 int) {
	var mant uint64
	var exp, mbits, bias int
	if bitSize == 32 {
		b := math.Float32bits(float32(f))
		mant, exp, mbits, bias = uint64(b&(1<<23-1)), int(b>>23&0xFF), 23, 127
	} else {
		b := math.Float64bits(f)
		mant, exp, mbits, bias = b&(1<<52-1), int(b>>52&0x7FF), 52, 1023
	}
	m2 := mant
	if exp == 0 {
		e2 = 1 - bias - mbits - 2
	} else {
		e2 = exp - bias - mbits - 2
		m2 |= 1 << mbits
	}
	shift := uint64(0)
	if mant != 0 || exp <= 1 {
		shift = 1
	}
	return 4*m2 - 1 - shift, 4*m2 + 2, e2
}

// equalsDyadic reports whether d×10^k equals x×2^e exactly, comparing the
// powers of two and then the odd parts (d×5^k against x), without big numbers.
func equalsDyadic(d uint64, k int, x uint64, e int) bool {
	if d == 0 || x == 0 {
		return d == x
	}
	tz := bits.TrailingZeros64(d)
	d >>= uint(tz)
	tx := bits.TrailingZeros64(x)
	x >>= uint(tx)
	if tz+k != tx+e {
		return false
	}
	a, b, n := d, x, k // compare a×5^n with b
	if n < 0 {
		a, b, n = x, d, -n
	}
	for i := 0; i < n; i++ {
		hi, lo := bits.Mul64(a, 5)
		if hi != 0 || lo > b {
			return false
		}
		a = lo
	}
	return a == b
}
