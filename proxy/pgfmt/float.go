package pgfmt

import (
	"math"
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

// appendShortestFloat lays out Go's shortest round-trip digits the way the
// server's d2s.c/f2s.c to_chars does.
func appendShortestFloat(dst []byte, f float64, bitSize int) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	// 'e' with precision -1 gives the shortest digits: [-]d[.ddd]e±dd[d].
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, bitSize)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	ePos := 0
	for ePos < len(s) && s[ePos] != 'e' {
		ePos++
	}
	var digits [24]byte
	nd := 0
	for _, c := range s[:ePos] {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	exp := 0
	expNeg := s[ePos+1] == '-'
	for _, c := range s[ePos+2:] {
		exp = exp*10 + int(c-'0')
	}
	if expNeg {
		exp = -exp
	}
	if neg {
		dst = append(dst, '-')
	}
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
