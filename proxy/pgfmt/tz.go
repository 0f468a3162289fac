package pgfmt

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// LoadTimeZone resolves a TimeZone value as the server reports it: an IANA
// zone name ("Europe/Berlin", "UTC", "EST5EDT") from the system's zoneinfo, or
// a POSIX TZ specification ("<+05>-05", "<+05:30>-05:30", "XYZ3ABC",
// "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1"), which is what the server reports after
// SET TIME ZONE with a number, an interval or a POSIX string.
//
// The server and the proxy must read the same tz database release: zone rules
// change every year, and a different release is a different answer.
func LoadTimeZone(name string) (*time.Location, error) {
	// "Local" and "" mean the proxy's own zone to Go; to the server they are
	// not zone names at all.
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("pgfmt: invalid TimeZone %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err == nil {
		return loc, nil
	}
	posix, perr := posixZone(name)
	if perr != nil {
		return nil, fmt.Errorf("pgfmt: TimeZone %q is neither a zone in the tz database (%v) nor a POSIX TZ specification (%v)", name, err, perr)
	}
	return posix, nil
}

// posixZone builds a Location for a POSIX TZ specification. Go evaluates such
// rules only in the footer of a TZif file, and only correctly after 1970 (its
// rule arithmetic puts transitions before 1970 a day late), while the server
// applies the rule to every year of the proleptic Gregorian calendar. So this
// builds a TZif file whose transitions are computed here for every year the
// server's timestamps can reach up to 2037, and leaves the later ones to the
// footer.
func posixZone(spec string) (*time.Location, error) {
	r, err := parsePOSIXTZ(spec)
	if err != nil {
		return nil, err
	}
	type trans struct {
		at  int64
		typ byte
	}
	var tx []trans
	if r.hasDST {
		for y := posixFirstYear; y <= posixLastYear; y++ {
			start := r.transition(y, r.start, r.stdOff)
			end := r.transition(y, r.end, r.dstOff)
			if start < end {
				tx = append(tx, trans{start, 1}, trans{end, 0})
			} else {
				tx = append(tx, trans{end, 0}, trans{start, 1})
			}
		}
	}
	chars := append([]byte(r.stdName), 0)
	types := binary.BigEndian.AppendUint32(nil, uint32(int32(r.stdOff)))
	types = append(types, 0, 0) // standard time, name at 0
	ntypes := 1
	if r.hasDST {
		types = binary.BigEndian.AppendUint32(types, uint32(int32(r.dstOff)))
		types = append(types, 1, byte(len(chars)))
		chars = append(append(chars, r.dstName...), 0)
		ntypes = 2
	}
	header := func(dst []byte, ntx int) []byte {
		dst = append(dst, "TZif2"...)
		dst = append(dst, make([]byte, 15)...)
		for _, n := range []int{0, 0, 0, ntx, ntypes, len(chars)} { // isut, isstd, leap, time, type, char
			dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		}
		return dst
	}
	// Version 1 part (32-bit times, which readers of version 2 skip): types only.
	data := header(nil, 0)
	data = append(data, types...)
	data = append(data, chars...)
	// Version 2 part.
	data = header(data, len(tx))
	for _, t := range tx {
		data = binary.BigEndian.AppendUint64(data, uint64(t.at))
	}
	for _, t := range tx {
		data = append(data, t.typ)
	}
	data = append(data, types...)
	data = append(data, chars...)
	data = append(data, '\n')
	data = append(data, spec...)
	data = append(data, '\n')
	return time.LoadLocationFromTZData(spec, data)
}

// The years for which posixZone writes transitions: from the year of the
// server's earliest timestamp to the last year before Go's footer evaluation
// is trusted.
const (
	posixFirstYear = -4714
	posixLastYear  = 2037
)

// posixRule is a parsed POSIX TZ specification; offsets are seconds east of
// UTC.
type posixRule struct {
	stdName, dstName string
	stdOff, dstOff   int
	hasDST           bool
	start, end       posixDate
}

// posixDate is one transition rule: Jn (kind 'J', day 1..365, February 29
// never counted), n (kind 'n', day 0..365), or Mm.w.d (kind 'M'); secs is the
// local time of day of the transition, which may be negative or past 24h.
type posixDate struct {
	kind          byte
	day           int
	mon, week, wd int
	secs          int
}

// transition returns the UTC instant (Unix seconds) of rule d in year y,
// reckoned in the local time whose offset is before.
func (r *posixRule) transition(y int, d posixDate, before int) int64 {
	jan1 := date2j(y, 1, 1)
	leap := y%4 == 0 && (y%100 != 0 || y%400 == 0)
	var yday int64 // 0-based day of the year
	switch d.kind {
	case 'J':
		yday = int64(d.day - 1)
		if leap && d.day >= 60 {
			yday++
		}
	case 'n':
		yday = int64(d.day)
	default:
		first := date2j(y, d.mon, 1)
		dow := ((first+1)%7 + 7) % 7 // 0 is Sunday, as the server's j2day
		mday := (int64(d.wd)-dow+7)%7 + int64(d.week-1)*7
		monthLen := date2j(y, d.mon+1, 1) - first
		if d.mon == 12 {
			monthLen = 31
		}
		for mday >= monthLen {
			mday -= 7
		}
		yday = first - jan1 + mday
	}
	const unixEpochJDate = 2440588
	return (jan1-unixEpochJDate+yday)*86400 + int64(d.secs) - int64(before)
}

// parsePOSIXTZ parses spec by the POSIX TZ grammar with the <...> quoted
// names of current tzcode. Failing here matters: Go quietly falls back to
// standard time for a footer rule it cannot parse.
func parsePOSIXTZ(spec string) (*posixRule, error) {
	p := &tzParser{s: spec}
	r := &posixRule{}
	var ok bool
	if !p.done() && (p.s[0] == '+' || p.s[0] == '-' || isDigit(p.s[0])) {
		// The server allows an empty standard time name, unlike POSIX: a
		// startup option timezone=+00:00 is reported as "+00:00".
		ok = true
	} else if r.stdName, ok = p.name(); !ok {
		return nil, fmt.Errorf("bad standard time name")
	}
	off, ok := p.offset(24)
	if !ok {
		return nil, fmt.Errorf("bad standard time offset")
	}
	r.stdOff = -off
	if p.done() {
		return r, nil
	}
	if r.dstName, ok = p.name(); !ok {
		return nil, fmt.Errorf("bad daylight time name")
	}
	r.hasDST = true
	r.dstOff = r.stdOff + 3600
	if !p.done() && p.s[0] != ',' {
		off, ok := p.offset(24)
		if !ok {
			return nil, fmt.Errorf("bad daylight time offset")
		}
		r.dstOff = -off
	}
	if p.done() {
		// No rule: the server (like tzcode without a posixrules file) takes
		// the US rules in force since 2007, for every year.
		p.s = ",M3.2.0,M11.1.0"
	}
	for _, d := range []*posixDate{&r.start, &r.end} {
		if !p.eat(',') || !p.ruleDate(d) {
			return nil, fmt.Errorf("bad transition rule")
		}
		d.secs = 2 * 3600
		if p.eat('/') {
			secs, ok := p.offset(167)
			if !ok {
				return nil, fmt.Errorf("bad transition time")
			}
			d.secs = secs
		}
	}
	if !p.done() {
		return nil, fmt.Errorf("trailing characters %q", p.s)
	}
	return r, nil
}

type tzParser struct{ s string }

func (p *tzParser) done() bool { return p.s == "" }

func (p *tzParser) eat(c byte) bool {
	if p.s != "" && p.s[0] == c {
		p.s = p.s[1:]
		return true
	}
	return false
}

func (p *tzParser) name() (string, bool) {
	if p.eat('<') {
		end := strings.IndexByte(p.s, '>')
		if end < 3 {
			return "", false
		}
		// The server itself writes names such as <+05:30>, so any character
		// but '>' is taken, as Go's reader does.
		n := p.s[:end]
		p.s = p.s[end+1:]
		return n, true
	}
	i := 0
	for i < len(p.s) && isAlpha(p.s[i]) {
		i++
	}
	if i < 3 {
		return "", false
	}
	n := p.s[:i]
	p.s = p.s[i:]
	return n, true
}

// offset reads [+-]hh[:mm[:ss]] and returns it in seconds, POSIX sign
// (positive is west of Greenwich).
func (p *tzParser) offset(maxHours int) (int, bool) {
	sign := 1
	if p.eat('-') {
		sign = -1
	} else {
		p.eat('+')
	}
	h, ok := p.num(0, maxHours)
	if !ok {
		return 0, false
	}
	secs := h * 3600
	if p.eat(':') {
		m, ok := p.num(0, 59)
		if !ok {
			return 0, false
		}
		secs += m * 60
		if p.eat(':') {
			s, ok := p.num(0, 59)
			if !ok {
				return 0, false
			}
			secs += s
		}
	}
	return sign * secs, true
}

func (p *tzParser) num(lo, hi int) (int, bool) {
	i, n := 0, 0
	for i < len(p.s) && isDigit(p.s[i]) {
		n = n*10 + int(p.s[i]-'0')
		if n > hi {
			return 0, false
		}
		i++
	}
	if i == 0 || n < lo {
		return 0, false
	}
	p.s = p.s[i:]
	return n, true
}

// ruleDate reads Jn (1..365), n (0..365) or Mm.w.d into d.
func (p *tzParser) ruleDate(d *posixDate) bool {
	var ok bool
	switch {
	case p.eat('J'):
		d.kind = 'J'
		d.day, ok = p.num(1, 365)
		return ok
	case p.eat('M'):
		d.kind = 'M'
		if d.mon, ok = p.num(1, 12); !ok || !p.eat('.') {
			return false
		}
		if d.week, ok = p.num(1, 5); !ok || !p.eat('.') {
			return false
		}
		d.wd, ok = p.num(0, 6)
		return ok
	default:
		d.kind = 'n'
		d.day, ok = p.num(0, 365)
		return ok
	}
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
