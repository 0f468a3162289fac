package rewrite

import (
	"strconv"
	"strings"
	"time"
)

// tval is a folded time value: an instant, a wall-clock reading (held in UTC)
// or a date (midnight, held in UTC).
type tval struct {
	kind valueKind
	t    time.Time
}

// interval is a Postgres interval: months, days and microseconds apart,
// because a month and a day have no fixed length.
type interval struct {
	months, days int
	dur          time.Duration
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTimeText reads the timestamp spellings BI tools send: ISO dates and
// times with an optional zone offset or Z. hasZone reports an explicit offset.
func parseTimeText(s string) (t time.Time, hasZone bool, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) < 10 {
		return time.Time{}, false, false
	}
	body, zone := s, ""
	if strings.HasSuffix(body, "Z") || strings.HasSuffix(body, "z") {
		body, zone = body[:len(body)-1], "+00:00"
	} else if len(body) > 10 {
		if i := strings.LastIndexAny(body[10:], "+-"); i >= 0 {
			body, zone = body[:10+i], body[10+i:]
		}
	}
	body = strings.TrimSpace(body)
	for _, l := range timeLayouts {
		if p, err := time.Parse(l, body); err == nil {
			t = p
			ok = true
			break
		}
	}
	if !ok {
		return time.Time{}, false, false
	}
	if zone == "" {
		return t, false, true
	}
	off, good := parseOffset(zone)
	if !good {
		return time.Time{}, false, false
	}
	return t.Add(-time.Duration(off) * time.Second), true, true
}

// parseOffset reads +hh, +hh:mm, +hhmm (ISO sign: east of Greenwich positive).
func parseOffset(z string) (int, bool) {
	sign := 1
	switch z[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	z = strings.ReplaceAll(z[1:], ":", "")
	var h, mi int
	var err error
	switch len(z) {
	case 2:
		h, err = strconv.Atoi(z)
	case 4:
		h, err = strconv.Atoi(z[:2])
		if err == nil {
			mi, err = strconv.Atoi(z[2:])
		}
	default:
		return 0, false
	}
	if err != nil || h > 15 || mi > 59 {
		return 0, false
	}
	return sign * (h*3600 + mi*60), true
}

// textToTime converts text to a value of kind k the way Postgres's input
// functions would, in the session zone.
func (m *matcher) textToTime(s string, k valueKind) (tval, bool) {
	t, hasZone, ok := parseTimeText(s)
	if !ok {
		return tval{}, false
	}
	switch k {
	case vInstant:
		if hasZone {
			return tval{vInstant, t.UTC()}, true
		}
		return tval{vInstant, localToInstant(t, m.loc)}, true
	case vLocal:
		// Postgres ignores an offset in timestamp input.
		if hasZone {
			return tval{}, false
		}
		return tval{vLocal, t}, true
	case vDate:
		if hasZone || !t.Equal(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)) {
			return tval{}, false
		}
		return tval{vDate, t}, true
	}
	return tval{}, false
}

// localToInstant reads wall-clock w (held in UTC) on the clock of loc.
func localToInstant(w time.Time, loc *time.Location) time.Time {
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc).UTC()
}

// instantToLocal reads instant t on the clock of loc, as a wall clock held in UTC.
func instantToLocal(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// convertTime converts v to kind k as Postgres's implicit casts do.
func (m *matcher) convertTime(v tval, k valueKind) (tval, bool) {
	if v.kind == k {
		return v, true
	}
	switch {
	case v.kind == vDate && k == vLocal:
		return tval{vLocal, v.t}, true
	case v.kind == vDate && k == vInstant, v.kind == vLocal && k == vInstant:
		return tval{vInstant, localToInstant(v.t, m.loc)}, true
	case v.kind == vInstant && k == vLocal:
		return tval{vLocal, instantToLocal(v.t, m.loc)}, true
	case v.kind == vInstant && k == vDate:
		l := instantToLocal(v.t, m.loc)
		return tval{vDate, time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)}, true
	case v.kind == vLocal && k == vDate:
		return tval{vDate, time.Date(v.t.Year(), v.t.Month(), v.t.Day(), 0, 0, 0, 0, time.UTC)}, true
	}
	return tval{}, false
}

// parseInterval reads "7 days", "-12 month", "1 year 2 months", "3 hours".
func parseInterval(s string) (interval, bool) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 0 || len(f)%2 != 0 {
		return interval{}, false
	}
	var iv interval
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			return interval{}, false
		}
		switch strings.TrimSuffix(f[i+1], "s") {
		case "year":
			iv.months += 12 * n
		case "month", "mon":
			iv.months += n
		case "week":
			iv.days += 7 * n
		case "day":
			iv.days += n
		case "hour":
			iv.dur += time.Duration(n) * time.Hour
		case "minute", "min":
			iv.dur += time.Duration(n) * time.Minute
		case "second", "sec":
			iv.dur += time.Duration(n) * time.Second
		default:
			return interval{}, false
		}
	}
	return iv, true
}

// addInterval adds iv to v like Postgres: months and days on the session's
// calendar for instants, then the exact duration.
func (m *matcher) addInterval(v tval, iv interval, sign int) tval {
	loc := time.UTC
	if v.kind == vInstant {
		loc = m.loc
	}
	t := v.t.In(loc)
	if iv.months != 0 {
		t = addMonthsPG(t, sign*iv.months)
	}
	if iv.days != 0 {
		t = time.Date(t.Year(), t.Month(), t.Day()+sign*iv.days, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
	}
	t = t.Add(time.Duration(sign) * iv.dur)
	kind := v.kind
	if kind == vDate {
		kind = vLocal // date + interval is timestamp
	}
	return tval{kind, t.UTC()}
}

// addMonthsPG adds months, clamping the day to the month's length as Postgres does.
func addMonthsPG(t time.Time, n int) time.Time {
	y, mo, d := t.Date()
	first := time.Date(y, mo+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// foldTime evaluates a constant time expression once for this execution:
// literals, parameters, now() and friends, date_trunc, AT TIME ZONE and
// interval arithmetic. want is the kind an untyped literal takes. ok is false
// when e is not a constant time expression the rewriter can fold.
func (m *matcher) foldTime(e *expr, want valueKind) (tval, bool) {
	switch e.kind {
	case kConst:
		if e.lit != litString {
			return tval{}, false
		}
		return m.textToTime(e.str, want)
	case kParam:
		p, ok := m.param(e.param)
		if !ok || p.Null {
			return tval{}, false
		}
		k := want
		switch p.Type {
		case OIDTimestamptz:
			k = vInstant
		case OIDTimestamp:
			k = vLocal
		case OIDDate:
			k = vDate
		case 0, OIDUnknown, OIDText, OIDVarchar:
		default:
			return tval{}, false
		}
		return m.textToTime(p.Value, k)
	case kSVF:
		switch e.name {
		case "current_date":
			l := instantToLocal(m.now, m.loc)
			return tval{vDate, time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)}, true
		case "current_timestamp":
			return tval{vInstant, m.now.UTC()}, true
		case "localtimestamp":
			return tval{vLocal, instantToLocal(m.now, m.loc)}, true
		}
	case kCast:
		var k valueKind
		switch e.typ.OID {
		case OIDTimestamptz:
			k = vInstant
		case OIDTimestamp:
			k = vLocal
		case OIDDate:
			k = vDate
		default:
			return tval{}, false
		}
		if e.typ.Typmod != -1 {
			return tval{}, false
		}
		v, ok := m.foldTime(e.args[0], k)
		if !ok {
			return tval{}, false
		}
		return m.convertTime(v, k)
	case kFunc:
		switch {
		case (e.name == "now" || e.name == "transaction_timestamp") && len(e.args) == 0:
			return tval{vInstant, m.now.UTC()}, true
		case e.name == "date_trunc" && len(e.args) == 2:
			u, ok := constString(e.args[0])
			if !ok {
				return tval{}, false
			}
			g, ok := unitGrain(u)
			if !ok || strings.ToLower(u) == "isoyear" || strings.ToLower(u) == "dow" || strings.ToLower(u) == "doy" || strings.ToLower(u) == "isodow" {
				return tval{}, false
			}
			v, ok := m.foldTime(e.args[1], vInstant)
			if !ok {
				return tval{}, false
			}
			if v.kind == vDate {
				v, _ = m.convertTime(v, vInstant)
			}
			if v.kind == vInstant {
				return tval{vInstant, truncTime(v.t.In(m.loc), g).UTC()}, true
			}
			return tval{vLocal, truncTime(v.t, g)}, true
		case e.name == "timezone" && len(e.args) == 2:
			z, ok := constString(e.args[0])
			if !ok {
				return tval{}, false
			}
			zn, err := canonicalZone(z)
			if err != nil {
				return tval{}, false
			}
			loc, err := loadZone(zn)
			if err != nil {
				return tval{}, false
			}
			v, ok := m.foldTime(e.args[1], vInstant)
			if !ok {
				return tval{}, false
			}
			switch v.kind {
			case vInstant:
				return tval{vLocal, instantToLocal(v.t, loc)}, true
			case vLocal:
				return tval{vInstant, localToInstant(v.t, loc)}, true
			}
			return tval{}, false
		}
	case kOp:
		if len(e.args) == 2 && (e.name == "+" || e.name == "-") {
			if iv, ok := foldInterval(e.args[1]); ok {
				v, ok := m.foldTime(e.args[0], want)
				if !ok {
					return tval{}, false
				}
				sign := 1
				if e.name == "-" {
					sign = -1
				}
				return m.addInterval(v, iv, sign), true
			}
			if e.name == "+" {
				if iv, ok := foldInterval(e.args[0]); ok {
					v, ok := m.foldTime(e.args[1], want)
					if !ok {
						return tval{}, false
					}
					return m.addInterval(v, iv, 1), true
				}
			}
			// date +/- integer days stays a date.
			if n, ok := constInt(e.args[1]); ok {
				v, ok := m.foldTime(e.args[0], vDate)
				if !ok || v.kind != vDate {
					return tval{}, false
				}
				if e.name == "-" {
					n = -n
				}
				return tval{vDate, v.t.AddDate(0, 0, int(n))}, true
			}
		}
	}
	return tval{}, false
}

func foldInterval(e *expr) (interval, bool) {
	if e.kind == kCast && e.typ.OID == OIDInterval && e.typ.Typmod == -1 {
		if s, ok := constString(e.args[0]); ok {
			return parseInterval(s)
		}
		if e.args[0].kind == kOp && e.args[0].name == "-" && len(e.args[0].args) == 1 {
			return interval{}, false
		}
	}
	return interval{}, false
}

func constString(e *expr) (string, bool) {
	if e.kind == kConst && e.lit == litString {
		return e.str, true
	}
	return "", false
}

func constInt(e *expr) (int64, bool) {
	if e.kind == kConst && e.lit == litInt {
		n, err := strconv.ParseInt(e.str, 10, 64)
		return n, err == nil
	}
	if e.kind == kOp && e.name == "-" && len(e.args) == 1 {
		n, ok := constInt(e.args[0])
		return -n, ok
	}
	return 0, false
}

// timeLiteral renders a folded value as a DuckDB literal of its type.
func timeLiteral(v tval) string {
	switch v.kind {
	case vInstant:
		return "TIMESTAMPTZ " + quoteLiteral(v.t.UTC().Format("2006-01-02 15:04:05.999999")+"+00")
	case vLocal:
		return "TIMESTAMP " + quoteLiteral(v.t.Format("2006-01-02 15:04:05.999999"))
	case vDate:
		return "DATE " + quoteLiteral(v.t.Format("2006-01-02"))
	}
	return "NULL"
}
