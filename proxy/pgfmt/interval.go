package pgfmt

import (
	"encoding/binary"
	"strconv"
)

// Interval is an interval as the server stores it: three independent signed
// fields, never normalised into each other (1 day is not 24 hours, 1 month is
// not 30 days).
type Interval struct {
	Months       int32
	Days         int32
	Microseconds int64
}

const (
	usecsPerHour   = 3600 * 1000000
	usecsPerMinute = 60 * 1000000
	usecsPerSec    = 1000000
)

// intervalFields is the server's pg_itm: the interval split into display
// fields, each carrying the sign of the stored field it came from (C division
// truncates toward zero, as Go's does).
type intervalFields struct {
	year, mon int64
	mday      int64
	hour      int64
	min, sec  int64
	usec      int64
}

func splitInterval(iv Interval) intervalFields {
	f := intervalFields{
		year: int64(iv.Months / 12),
		mon:  int64(iv.Months % 12),
		mday: int64(iv.Days),
	}
	t := iv.Microseconds
	f.hour = t / usecsPerHour
	t -= f.hour * usecsPerHour
	f.min = t / usecsPerMinute
	t -= f.min * usecsPerMinute
	f.sec = t / usecsPerSec
	f.usec = t - f.sec*usecsPerSec
	return f
}

func appendIntervalBinary(dst []byte, v any) ([]byte, error) {
	iv, ok := v.(Interval)
	if !ok {
		return dst, typeError("interval", v)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(iv.Microseconds))
	dst = binary.BigEndian.AppendUint32(dst, uint32(iv.Days))
	return binary.BigEndian.AppendUint32(dst, uint32(iv.Months)), nil
}

func appendIntervalText(dst []byte, v any, s *Settings) ([]byte, error) {
	iv, ok := v.(Interval)
	if !ok {
		return dst, typeError("interval", v)
	}
	f := splitInterval(iv)
	switch s.IntervalStyle {
	case IntervalStyleSQLStandard:
		return appendIntervalSQL(dst, f), nil
	case IntervalStyleISO8601:
		return appendIntervalISO(dst, f), nil
	case IntervalStylePostgresVerbose:
		return appendIntervalVerbose(dst, f), nil
	default:
		return appendIntervalPostgres(dst, f), nil
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// appendIntervalSQL is the server's INTSTYLE_SQL_STANDARD output: the standard's
// year-month or day-time literal when the value is one, otherwise every field
// with an explicit sign so that mixed signs stay unambiguous.
func appendIntervalSQL(dst []byte, f intervalFields) []byte {
	hasNeg := f.year < 0 || f.mon < 0 || f.mday < 0 || f.hour < 0 || f.min < 0 || f.sec < 0 || f.usec < 0
	hasPos := f.year > 0 || f.mon > 0 || f.mday > 0 || f.hour > 0 || f.min > 0 || f.sec > 0 || f.usec > 0
	hasYearMonth := f.year != 0 || f.mon != 0
	hasDayTime := f.mday != 0 || f.hour != 0 || f.min != 0 || f.sec != 0 || f.usec != 0
	standard := !(hasNeg && hasPos) && !(hasYearMonth && hasDayTime)
	if hasNeg && standard {
		dst = append(dst, '-')
		f.year, f.mon, f.mday, f.hour, f.min, f.sec, f.usec = -f.year, -f.mon, -f.mday, -f.hour, -f.min, -f.sec, -f.usec
	}
	switch {
	case !hasNeg && !hasPos:
		return append(dst, '0')
	case !standard:
		sign := func(neg bool) byte {
			if neg {
				return '-'
			}
			return '+'
		}
		dst = append(dst, sign(f.year < 0 || f.mon < 0))
		dst = strconv.AppendInt(dst, abs64(f.year), 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, abs64(f.mon), 10)
		dst = append(dst, ' ', sign(f.mday < 0))
		dst = strconv.AppendInt(dst, abs64(f.mday), 10)
		dst = append(dst, ' ', sign(f.hour < 0 || f.min < 0 || f.sec < 0 || f.usec < 0))
		dst = strconv.AppendInt(dst, abs64(f.hour), 10)
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(abs64(f.min)), 2)
		dst = append(dst, ':')
		return appendSeconds(dst, int(f.sec), int(f.usec), true)
	case hasYearMonth:
		dst = strconv.AppendInt(dst, f.year, 10)
		dst = append(dst, '-')
		return strconv.AppendInt(dst, f.mon, 10)
	default:
		if f.mday != 0 {
			dst = strconv.AppendInt(dst, f.mday, 10)
			dst = append(dst, ' ')
		}
		dst = strconv.AppendInt(dst, f.hour, 10)
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(f.min), 2)
		dst = append(dst, ':')
		return appendSeconds(dst, int(f.sec), int(f.usec), true)
	}
}

// appendIntervalISO is the server's INTSTYLE_ISO_8601 output ("time-intervals by
// duration only"), each field with its own sign.
func appendIntervalISO(dst []byte, f intervalFields) []byte {
	if f.year == 0 && f.mon == 0 && f.mday == 0 && f.hour == 0 && f.min == 0 && f.sec == 0 && f.usec == 0 {
		return append(dst, "PT0S"...)
	}
	part := func(dst []byte, v int64, unit byte) []byte {
		if v == 0 {
			return dst
		}
		return append(strconv.AppendInt(dst, v, 10), unit)
	}
	dst = append(dst, 'P')
	dst = part(dst, f.year, 'Y')
	dst = part(dst, f.mon, 'M')
	dst = part(dst, f.mday, 'D')
	if f.hour != 0 || f.min != 0 || f.sec != 0 || f.usec != 0 {
		dst = append(dst, 'T')
	}
	dst = part(dst, f.hour, 'H')
	dst = part(dst, f.min, 'M')
	if f.sec != 0 || f.usec != 0 {
		if f.sec < 0 || f.usec < 0 {
			dst = append(dst, '-')
		}
		dst = appendSeconds(dst, int(f.sec), int(f.usec), false)
		dst = append(dst, 'S')
	}
	return dst
}

// appendIntervalPostgres is the server's INTSTYLE_POSTGRES output
// ("1 year 2 mons -3 days +04:05:06").
func appendIntervalPostgres(dst []byte, f intervalFields) []byte {
	isZero, isBefore := true, false
	part := func(dst []byte, v int64, unit string) []byte {
		if v == 0 {
			return dst
		}
		if !isZero {
			dst = append(dst, ' ')
		}
		if isBefore && v > 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, v, 10)
		dst = append(dst, ' ')
		dst = append(dst, unit...)
		if v != 1 {
			dst = append(dst, 's')
		}
		// Each nonzero field sets isBefore for only the next one, as the server does.
		isBefore = v < 0
		isZero = false
		return dst
	}
	dst = part(dst, f.year, "year")
	dst = part(dst, f.mon, "mon")
	dst = part(dst, f.mday, "day")
	if isZero || f.hour != 0 || f.min != 0 || f.sec != 0 || f.usec != 0 {
		minus := f.hour < 0 || f.min < 0 || f.sec < 0 || f.usec < 0
		if !isZero {
			dst = append(dst, ' ')
		}
		if minus {
			dst = append(dst, '-')
		} else if isBefore {
			dst = append(dst, '+')
		}
		dst = appendZeroPad(dst, uint64(abs64(f.hour)), 2)
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(abs64(f.min)), 2)
		dst = append(dst, ':')
		dst = appendSeconds(dst, int(f.sec), int(f.usec), true)
	}
	return dst
}

// appendIntervalVerbose is the server's INTSTYLE_POSTGRES_VERBOSE output
// ("@ 1 year 2 mons -3 days 4 hours ago"): the first nonzero field decides
// "ago", and later fields of the other sign are printed negative.
func appendIntervalVerbose(dst []byte, f intervalFields) []byte {
	isZero, isBefore := true, false
	dst = append(dst, '@')
	part := func(dst []byte, v int64, unit string) []byte {
		if v == 0 {
			return dst
		}
		if isZero {
			isBefore = v < 0
			v = abs64(v)
		} else if isBefore {
			v = -v
		}
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, v, 10)
		dst = append(dst, ' ')
		dst = append(dst, unit...)
		if v != 1 {
			dst = append(dst, 's')
		}
		isZero = false
		return dst
	}
	dst = part(dst, f.year, "year")
	dst = part(dst, f.mon, "mon")
	dst = part(dst, f.mday, "day")
	dst = part(dst, f.hour, "hour")
	dst = part(dst, f.min, "min")
	if f.sec != 0 || f.usec != 0 {
		dst = append(dst, ' ')
		if f.sec < 0 || (f.sec == 0 && f.usec < 0) {
			if isZero {
				isBefore = true
			} else if !isBefore {
				dst = append(dst, '-')
			}
		} else if isBefore {
			dst = append(dst, '-')
		}
		dst = appendSeconds(dst, int(f.sec), int(f.usec), false)
		dst = append(dst, " sec"...)
		if abs64(f.sec) != 1 || f.usec != 0 {
			dst = append(dst, 's')
		}
		isZero = false
	}
	if isZero {
		dst = append(dst, " 0"...)
	}
	if isBefore {
		dst = append(dst, " ago"...)
	}
	return dst
}
