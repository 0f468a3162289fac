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
// rules only as the footer of a TZif file, so this wraps the specification in
// a minimal one: a single zone type (the standard time) and no transitions,
// which makes Go apply the footer rule to every instant, as the server does.
func posixZone(spec string) (*time.Location, error) {
	stdName, stdOffset, err := checkPOSIXTZ(spec)
	if err != nil {
		return nil, err
	}
	chars := append([]byte(stdName), 0)
	block := func(dst []byte) []byte {
		dst = append(dst, "TZif2"...)
		dst = append(dst, make([]byte, 15)...)
		for _, n := range []uint32{0, 0, 0, 0, 1, uint32(len(chars))} { // isut, isstd, leap, time, type, char
			dst = binary.BigEndian.AppendUint32(dst, n)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(int32(stdOffset)))
		dst = append(dst, 0, 0) // not DST, name at index 0
		return append(dst, chars...)
	}
	var data []byte
	data = block(data) // version 1 part, which readers of version 2 skip
	data = block(data)
	data = append(data, '\n')
	data = append(data, spec...)
	data = append(data, '\n')
	return time.LoadLocationFromTZData(spec, data)
}

// checkPOSIXTZ validates spec against the POSIX TZ grammar (with the <...>
// quoted names of current tzcode) and returns the standard-time abbreviation and
// its offset east of UTC in seconds. Validating here matters because Go quietly
// falls back to standard time for a footer rule it cannot parse.
func checkPOSIXTZ(spec string) (string, int, error) {
	p := &tzParser{s: spec}
	std, ok := p.name()
	if !ok {
		return "", 0, fmt.Errorf("bad standard time name")
	}
	off, ok := p.offset(24)
	if !ok {
		return "", 0, fmt.Errorf("bad standard time offset")
	}
	if p.done() {
		return std, -off, nil
	}
	if _, ok := p.name(); !ok {
		return "", 0, fmt.Errorf("bad daylight time name")
	}
	if !p.done() && p.s[0] != ',' {
		if _, ok := p.offset(24); !ok {
			return "", 0, fmt.Errorf("bad daylight time offset")
		}
	}
	if p.done() {
		return std, -off, nil
	}
	for i := 0; i < 2; i++ {
		if !p.eat(',') || !p.ruleDate() {
			return "", 0, fmt.Errorf("bad transition rule")
		}
		if p.eat('/') {
			if _, ok := p.offset(167); !ok {
				return "", 0, fmt.Errorf("bad transition time")
			}
		}
	}
	if !p.done() {
		return "", 0, fmt.Errorf("trailing characters %q", p.s)
	}
	return std, -off, nil
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
		n := p.s[:end]
		for i := 0; i < len(n); i++ {
			c := n[i]
			if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' {
				return "", false
			}
		}
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

// ruleDate reads Jn (1..365), n (0..365) or Mm.w.d.
func (p *tzParser) ruleDate() bool {
	switch {
	case p.eat('J'):
		_, ok := p.num(1, 365)
		return ok
	case p.eat('M'):
		if _, ok := p.num(1, 12); !ok || !p.eat('.') {
			return false
		}
		if _, ok := p.num(1, 5); !ok || !p.eat('.') {
			return false
		}
		_, ok := p.num(0, 6)
		return ok
	default:
		_, ok := p.num(0, 365)
		return ok
	}
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
