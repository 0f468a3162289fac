package pgfmt

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Infinity is the value of a date, timestamp or timestamptz that is 'infinity'
// (PosInfinity) or '-infinity' (NegInfinity). time.Time cannot express them,
// and a sentinel time would be a real date to someone.
type Infinity int8

// The two infinities.
const (
	NegInfinity Infinity = -1
	PosInfinity Infinity = 1
)

const (
	unixEpochToPostgres = 946684800 // seconds from 1970-01-01 to 2000-01-01
	postgresEpochJDate  = 2451545   // Julian day of 2000-01-01
	// The valid timestamp range, in seconds since 2000-01-01: from
	// 4714-11-24 00:00:00 BC (MIN_TIMESTAMP) up to, excluding,
	// 294277-01-01 00:00:00 (END_TIMESTAMP).
	minTimestampSecs = -211813488000
	endTimestampSecs = 9223371331200
	// The valid date range as Julian days: DATETIME_MIN_JULIAN up to,
	// excluding, DATE_END_JULIAN (5874898-01-01).
	dateEndJulian = 2147483494
)

var (
	monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	dayNames   = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
)

// date2j is the server's Julian day of a proleptic Gregorian date; year 0 is
// 1 BC.
func date2j(y, m, d int) int64 {
	yy, mm := int64(y), int64(m)
	if mm > 2 {
		mm++
		yy += 4800
	} else {
		mm += 13
		yy += 4799
	}
	century := yy / 100
	j := yy*365 - 32167
	j += yy/4 - century + century/4
	j += 7834*mm/256 + int64(d)
	return j
}

// dateOf returns the calendar date of a date value and its Julian day.
func dateOf(t time.Time) (y int, m time.Month, d int, jd int64, err error) {
	y, m, d = t.Date()
	if hh, mm, ss := t.Clock(); hh != 0 || mm != 0 || ss != 0 || t.Nanosecond() != 0 {
		return 0, 0, 0, 0, fmt.Errorf("pgfmt: date value %v has a time of day", t)
	}
	jd = date2j(y, int(m), d)
	if jd < 0 || jd >= dateEndJulian {
		return 0, 0, 0, 0, fmt.Errorf("pgfmt: date out of range: %v", t)
	}
	return y, m, d, jd, nil
}

// timestampMicros returns microseconds since 2000-01-01 of a timestamp
// (wall=true: t's wall clock taken as UTC) or timestamptz (the instant).
func timestampMicros(t time.Time, wall bool) (int64, error) {
	ns := t.Nanosecond()
	if ns%1000 != 0 {
		return 0, fmt.Errorf("pgfmt: timestamp %v has sub-microsecond precision", t)
	}
	secs := t.Unix()
	if wall {
		_, off := t.Zone()
		secs += int64(off)
	}
	secs -= unixEpochToPostgres
	if secs < minTimestampSecs || secs >= endTimestampSecs {
		return 0, fmt.Errorf("pgfmt: timestamp out of range: %v", t)
	}
	return secs*1000000 + int64(ns/1000), nil
}

func appendDateText(dst []byte, v any, s *Settings) ([]byte, error) {
	switch x := v.(type) {
	case Infinity:
		return appendInfinity(dst, x)
	case time.Time:
		y, m, d, _, err := dateOf(x)
		if err != nil {
			return dst, err
		}
		return appendDateFields(dst, s, y, int(m), d), nil
	}
	return dst, typeError("date", v)
}

func appendDateBinary(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case Infinity:
		if x == PosInfinity {
			return binary.BigEndian.AppendUint32(dst, math.MaxInt32), nil
		} else if x == NegInfinity {
			return binary.BigEndian.AppendUint32(dst, 1<<31), nil // math.MinInt32
		}
		return dst, fmt.Errorf("pgfmt: invalid Infinity %d", x)
	case time.Time:
		_, _, _, jd, err := dateOf(x)
		if err != nil {
			return dst, err
		}
		return binary.BigEndian.AppendUint32(dst, uint32(int32(jd-postgresEpochJDate))), nil
	}
	return dst, typeError("date", v)
}

func appendTimestampBinary(dst []byte, v any, wall bool) ([]byte, error) {
	switch x := v.(type) {
	case Infinity:
		if x == PosInfinity {
			return binary.BigEndian.AppendUint64(dst, math.MaxInt64), nil
		} else if x == NegInfinity {
			return binary.BigEndian.AppendUint64(dst, 1<<63), nil // math.MinInt64
		}
		return dst, fmt.Errorf("pgfmt: invalid Infinity %d", x)
	case time.Time:
		us, err := timestampMicros(x, wall)
		if err != nil {
			return dst, err
		}
		return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
	}
	if wall {
		return dst, typeError("timestamp", v)
	}
	return dst, typeError("timestamptz", v)
}

func appendInfinity(dst []byte, x Infinity) ([]byte, error) {
	switch x {
	case PosInfinity:
		return append(dst, "infinity"...), nil
	case NegInfinity:
		return append(dst, "-infinity"...), nil
	}
	return dst, fmt.Errorf("pgfmt: invalid Infinity %d", x)
}

func appendTimestampText(dst []byte, v any, s *Settings) ([]byte, error) {
	switch x := v.(type) {
	case Infinity:
		return appendInfinity(dst, x)
	case time.Time:
		if _, err := timestampMicros(x, true); err != nil {
			return dst, err
		}
		return appendDateTime(dst, s, x, false), nil
	}
	return dst, typeError("timestamp", v)
}

func appendTimestamptzText(dst []byte, v any, s *Settings) ([]byte, error) {
	switch x := v.(type) {
	case Infinity:
		return appendInfinity(dst, x)
	case time.Time:
		if _, err := timestampMicros(x, false); err != nil {
			return dst, err
		}
		if s.TimeZone == nil {
			return dst, fmt.Errorf("pgfmt: Settings.TimeZone is nil")
		}
		return appendDateTime(dst, s, x.In(s.TimeZone), true), nil
	}
	return dst, typeError("timestamptz", v)
}

// appendYear writes a year as the server does: at least four digits, and the
// astronomical year 0 as 1 (the caller appends " BC").
func appendYear(dst []byte, y int) []byte {
	if y <= 0 {
		y = -(y - 1)
	}
	return appendZeroPad(dst, uint64(y), 4)
}

// appendDateFields is the server's EncodeDateOnly.
func appendDateFields(dst []byte, s *Settings, y, m, d int) []byte {
	switch s.DateStyle {
	case DateStyleSQL, DateStyleGerman, DateStylePostgres:
		sep := byte('/')
		if s.DateStyle == DateStyleGerman {
			sep = '.'
		} else if s.DateStyle == DateStylePostgres {
			sep = '-'
		}
		if s.DateStyle == DateStyleGerman || s.DateOrder == DateOrderDMY {
			dst = appendZeroPad(dst, uint64(d), 2)
			dst = append(dst, sep)
			dst = appendZeroPad(dst, uint64(m), 2)
		} else {
			dst = appendZeroPad(dst, uint64(m), 2)
			dst = append(dst, sep)
			dst = appendZeroPad(dst, uint64(d), 2)
		}
		dst = append(dst, sep)
		dst = appendYear(dst, y)
	default:
		dst = appendYear(dst, y)
		dst = append(dst, '-')
		dst = appendZeroPad(dst, uint64(m), 2)
		dst = append(dst, '-')
		dst = appendZeroPad(dst, uint64(d), 2)
	}
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendDateTime is the server's EncodeDateTime for t's wall clock; withTZ adds
// t's zone (offset for ISO, abbreviation for the other styles).
func appendDateTime(dst []byte, s *Settings, t time.Time, withTZ bool) []byte {
	y, mon, d := t.Date()
	m := int(mon)
	hh, mi, ss := t.Clock()
	usec := t.Nanosecond() / 1000
	appendClock := func(dst []byte) []byte {
		dst = appendZeroPad(dst, uint64(hh), 2)
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(mi), 2)
		dst = append(dst, ':')
		return appendSeconds(dst, ss, usec, true)
	}
	appendAbbrev := func(dst []byte) []byte {
		name, _ := t.Zone()
		if len(name) > 10 { // MAXTZLEN
			name = name[:10]
		}
		dst = append(dst, ' ')
		return append(dst, name...)
	}
	switch s.DateStyle {
	case DateStyleSQL, DateStyleGerman:
		sep := byte('/')
		if s.DateStyle == DateStyleGerman {
			sep = '.'
		}
		if s.DateStyle == DateStyleGerman || s.DateOrder == DateOrderDMY {
			dst = appendZeroPad(dst, uint64(d), 2)
			dst = append(dst, sep)
			dst = appendZeroPad(dst, uint64(m), 2)
		} else {
			dst = appendZeroPad(dst, uint64(m), 2)
			dst = append(dst, sep)
			dst = appendZeroPad(dst, uint64(d), 2)
		}
		dst = append(dst, sep)
		dst = appendYear(dst, y)
		dst = append(dst, ' ')
		dst = appendClock(dst)
		if withTZ {
			dst = appendAbbrev(dst)
		}
	case DateStylePostgres:
		dst = append(dst, dayNames[(date2j(y, m, d)+1)%7]...)
		dst = append(dst, ' ')
		if s.DateOrder == DateOrderDMY {
			dst = appendZeroPad(dst, uint64(d), 2)
			dst = append(dst, ' ')
			dst = append(dst, monthNames[m-1]...)
		} else {
			dst = append(dst, monthNames[m-1]...)
			dst = append(dst, ' ')
			dst = appendZeroPad(dst, uint64(d), 2)
		}
		dst = append(dst, ' ')
		dst = appendClock(dst)
		dst = append(dst, ' ')
		dst = appendYear(dst, y)
		if withTZ {
			dst = appendAbbrev(dst)
		}
	default:
		dst = appendYear(dst, y)
		dst = append(dst, '-')
		dst = appendZeroPad(dst, uint64(m), 2)
		dst = append(dst, '-')
		dst = appendZeroPad(dst, uint64(d), 2)
		dst = append(dst, ' ')
		dst = appendClock(dst)
		if withTZ {
			_, off := t.Zone()
			dst = appendNumericZone(dst, off)
		}
	}
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendNumericZone is the server's EncodeTimezone: +hh, +hh:mm, or +hh:mm:ss
// for the historic local-mean-time offsets. off is seconds east of UTC.
func appendNumericZone(dst []byte, off int) []byte {
	if off >= 0 {
		dst = append(dst, '+')
	} else {
		dst = append(dst, '-')
		off = -off
	}
	h, m, sec := off/3600, off/60%60, off%60
	dst = appendZeroPad(dst, uint64(h), 2)
	if sec != 0 {
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(m), 2)
		dst = append(dst, ':')
		return appendZeroPad(dst, uint64(sec), 2)
	}
	if m != 0 {
		dst = append(dst, ':')
		dst = appendZeroPad(dst, uint64(m), 2)
	}
	return dst
}

// appendSeconds is the server's AppendSeconds with precision 6: whole seconds
// (two digits when fill is set) and the microseconds without trailing zeros.
// Signs are the caller's business.
func appendSeconds(dst []byte, sec int, usec int, fill bool) []byte {
	if sec < 0 {
		sec = -sec
	}
	if usec < 0 {
		usec = -usec
	}
	if fill {
		dst = appendZeroPad(dst, uint64(sec), 2)
	} else {
		dst = appendUint(dst, uint64(sec))
	}
	if usec == 0 {
		return dst
	}
	var frac [6]byte
	n := 6
	for i := 5; i >= 0; i-- {
		frac[i] = byte('0' + usec%10)
		usec /= 10
	}
	for n > 1 && frac[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, frac[:n]...)
}

// appendZeroPad writes v in decimal with at least width digits.
func appendZeroPad(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	buf[i] = byte('0' + v)
	for len(buf)-i < width {
		i--
		buf[i] = '0'
	}
	return append(dst, buf[i:]...)
}

func appendUint(dst []byte, v uint64) []byte { return appendZeroPad(dst, v, 1) }
