package rewrite

import (
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
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

// parseISO reads YYYY-MM-DD, optionally followed by a space or T and
// HH:MM, HH:MM:SS or HH:MM:SS.f with one to six fractional digits. It is
// stricter than Postgres: more digits (Postgres rounds them to microseconds),
// a leap second or a field out of range do not parse, and the statement passes
// through.
func parseISO(b string) (time.Time, bool) {
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, len(s) > 0
	}
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return time.Time{}, false
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	var h, mi, sec, ns int
	if rest := b[10:]; rest != "" {
		if len(rest) < 6 || (rest[0] != ' ' && rest[0] != 'T' && rest[0] != 't') || rest[3] != ':' {
			return time.Time{}, false
		}
		var okh, okm bool
		h, okh = num(rest[1:3])
		mi, okm = num(rest[4:6])
		if !okh || !okm {
			return time.Time{}, false
		}
		if rest = rest[6:]; rest != "" {
			if len(rest) < 3 || rest[0] != ':' {
				return time.Time{}, false
			}
			var oks bool
			if sec, oks = num(rest[1:3]); !oks {
				return time.Time{}, false
			}
			if rest = rest[3:]; rest != "" {
				if rest[0] != '.' || len(rest) < 2 || len(rest) > 7 {
					return time.Time{}, false
				}
				f, okf := num(rest[1:])
				if !okf {
					return time.Time{}, false
				}
				for i := len(rest) - 1; i < 9; i++ {
					f *= 10
				}
				ns = f
			}
		}
	}
	if y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // February 30th
	}
	return t, true
}

// parseTimeText reads the timestamp spellings BI tools send: ISO dates and
// times with an optional zone offset or Z. hasZone reports an explicit offset,
// which t has been moved by (t is then the instant in UTC).
func parseTimeText(s string) (t time.Time, hasZone bool, ok bool) {
	w, off, hasZone, ok := parseTimeWall(s)
	if !ok || !hasZone {
		return w, false, ok
	}
	return w.Add(-time.Duration(off) * time.Second), true, true
}

// parseTimeWall reads what parseTimeText reads and returns the wall-clock
// reading as written (held in UTC) and, when hasZone, the offset written
// with it in seconds east of Greenwich. Postgres's timestamp and date input
// ignores the offset ('2025-01-01T00:00:00Z'::timestamp is midnight), so
// those kinds read the wall clock.
func parseTimeWall(s string) (t time.Time, off int, hasZone bool, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) < 10 {
		return time.Time{}, 0, false, false
	}
	body, zone := s, ""
	if strings.HasSuffix(body, "Z") || strings.HasSuffix(body, "z") {
		body, zone = body[:len(body)-1], "+00:00"
	} else if len(body) > 10 {
		if i := strings.LastIndexAny(body[10:], "+-"); i >= 0 {
			body, zone = body[:10+i], body[10+i:]
		}
	}
	if t, ok = parseISO(strings.TrimSpace(body)); !ok {
		return time.Time{}, 0, false, false
	}
	if zone == "" {
		return t, 0, false, true
	}
	off, good := parseOffset(zone)
	if !good {
		return time.Time{}, 0, false, false
	}
	return t, off, true, true
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

// foldCtx is what folding constant time expressions reads: the session's
// zone, and at execution the clock and the bound parameters. While a
// statement is being prepared live is false, and anything that reads the
// clock or a parameter value does not fold (the caller defers it instead).
type foldCtx struct {
	loc    *time.Location
	now    time.Time
	params []Param
	live   bool
	zones  *zoneCache
}

// param returns bound parameter n ($1 is 1) at execution.
func (f *foldCtx) param(n int) (Param, bool) {
	if !f.live || n < 1 || n > len(f.params) {
		return Param{}, false
	}
	return f.params[n-1], true
}

// textToTime converts text to a value of kind k the way Postgres's input
// functions would, in the session zone.
func (f *foldCtx) textToTime(s string, k valueKind) (tval, bool) {
	t, off, hasZone, ok := parseTimeWall(s)
	if !ok {
		return tval{}, false
	}
	switch k {
	case vInstant:
		if hasZone {
			return tval{vInstant, t.Add(-time.Duration(off) * time.Second)}, true
		}
		return tval{vInstant, localToInstant(t, f.loc)}, true
	case vLocal:
		// Postgres ignores an offset in timestamp input: JavaScript Date
		// parameters ('2025-01-01T00:00:00.000Z') on timestamp columns.
		return tval{vLocal, t}, true
	case vDate:
		// Date input reads the date and ignores the time of day and the
		// offset: '2024-06-30T23:59:59Z'::date is 2024-06-30 (Grafana's
		// $__timeFilter on a date column). parseISO takes no 24:00.
		return tval{vDate, time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)}, true
	}
	return tval{}, false
}

// localToInstant reads wall-clock w (held in UTC) on the clock of loc, as
// Postgres does: a reading the clock skips (a change to daylight saving
// time) takes the UTC offset before the change, and one it shows twice (a
// change back) the offset after it. time.Date leaves both unspecified, and
// west of UTC picks the other offset: New York's '2025-03-09 02:30' would
// be an hour early, its '2025-11-02 01:30' the first pass, not Postgres's
// second.
func localToInstant(w time.Time, loc *time.Location) time.Time {
	naive := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	offset := func(t time.Time) time.Duration {
		_, o := t.In(loc).Zone()
		return time.Duration(o) * time.Second
	}
	// Offsets lie within 14 hours of UTC and no zone changes twice in two
	// days, so the offsets a day either side are those before and after
	// any change near w.
	before, after := offset(naive.Add(-24*time.Hour)), offset(naive.Add(24*time.Hour))
	if t := naive.Add(-after); offset(t) == after {
		return t // w's offset, or, shown twice, the later pass
	}
	// w is read with the offset before the change: it is that offset's, or
	// skipped.
	return naive.Add(-before)
}

// instantToLocal reads instant t on the clock of loc, as a wall clock held in UTC.
func instantToLocal(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// convertTime converts v to kind k as Postgres's implicit casts do.
func (f *foldCtx) convertTime(v tval, k valueKind) (tval, bool) {
	if v.kind == k {
		return v, true
	}
	switch {
	case v.kind == vDate && k == vLocal:
		return tval{vLocal, v.t}, true
	case v.kind == vDate && k == vInstant, v.kind == vLocal && k == vInstant:
		return tval{vInstant, localToInstant(v.t, f.loc)}, true
	case v.kind == vInstant && k == vLocal:
		return tval{vLocal, instantToLocal(v.t, f.loc)}, true
	case v.kind == vInstant && k == vDate:
		l := instantToLocal(v.t, f.loc)
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
func (f *foldCtx) addInterval(v tval, iv interval, sign int) tval {
	loc := time.UTC
	if v.kind == vInstant {
		loc = f.loc
	}
	t := v.t
	// Months, then days, on the wall clock, each read back as Postgres
	// reads a wall clock (a skipped or repeated reading, localToInstant).
	if iv.months != 0 {
		t = localToInstant(addMonthsPG(instantToLocal(t, loc), sign*iv.months), loc)
	}
	if iv.days != 0 {
		t = localToInstant(instantToLocal(t, loc).AddDate(0, 0, sign*iv.days), loc)
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
func (f *foldCtx) foldTime(e *expr, want valueKind) (tval, bool) {
	switch e.kind {
	case kConst:
		if e.lit != litString {
			return tval{}, false
		}
		return f.textToTime(e.str, want)
	case kParam:
		p, ok := f.param(e.param)
		if !ok || p.Null {
			return tval{}, false
		}
		k := want
		switch p.Type {
		case pgtype.TimestamptzOID:
			k = vInstant
		case pgtype.TimestampOID:
			k = vLocal
		case pgtype.DateOID:
			k = vDate
		case 0, pgtype.UnknownOID:
			// Postgres infers the type from the column. A text or varchar
			// parameter has no operator with a time column: an error there.
		default:
			return tval{}, false
		}
		return f.textToTime(p.Value, k)
	case kSVF:
		if !f.live {
			return tval{}, false
		}
		switch e.name {
		case "current_date":
			l := instantToLocal(f.now, f.loc)
			return tval{vDate, time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)}, true
		case "current_timestamp":
			return tval{vInstant, f.now.UTC()}, true
		case "localtimestamp":
			return tval{vLocal, instantToLocal(f.now, f.loc)}, true
		}
	case kCast:
		var k valueKind
		switch e.typ.OID {
		case pgtype.TimestamptzOID:
			k = vInstant
		case pgtype.TimestampOID:
			k = vLocal
		case pgtype.DateOID:
			k = vDate
		default:
			return tval{}, false
		}
		if e.typ.Typmod != -1 {
			return tval{}, false
		}
		v, ok := f.foldTime(e.args[0], k)
		if !ok {
			return tval{}, false
		}
		return f.convertTime(v, k)
	case kFunc:
		switch {
		case (e.name == "now" || e.name == "transaction_timestamp") && len(e.args) == 0:
			if !f.live {
				return tval{}, false
			}
			return tval{vInstant, f.now.UTC()}, true
		case e.name == "date_trunc" && len(e.args) == 2:
			u, ok := constString(e.args[0])
			if !ok {
				return tval{}, false
			}
			g, ok := unitGrain(u)
			if !ok || strings.ToLower(u) == "isoyear" || strings.ToLower(u) == "dow" || strings.ToLower(u) == "doy" || strings.ToLower(u) == "isodow" {
				return tval{}, false
			}
			v, ok := f.foldTime(e.args[1], vInstant)
			if !ok {
				return tval{}, false
			}
			if v.kind == vDate {
				v, _ = f.convertTime(v, vInstant)
			}
			if v.kind == vInstant {
				return tval{vInstant, truncTime(v.t.In(f.loc), g).UTC()}, true
			}
			return tval{vLocal, truncTime(v.t, g)}, true
		case e.name == "to_timestamp":
			return f.toTimestamp(e)
		case e.name == "to_date":
			return toDate(e)
		case e.name == "timezone" && len(e.args) == 2:
			z, ok := constString(e.args[0])
			if !ok {
				return tval{}, false
			}
			zi := f.zones.get(z)
			if zi.err != nil {
				return tval{}, false
			}
			loc := zi.loc
			v, ok := f.foldTime(e.args[1], vInstant)
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
				v, ok := f.foldTime(e.args[0], want)
				if !ok {
					return tval{}, false
				}
				sign := 1
				if e.name == "-" {
					sign = -1
				}
				return f.addInterval(v, iv, sign), true
			}
			if e.name == "+" {
				if iv, ok := foldInterval(e.args[0]); ok {
					v, ok := f.foldTime(e.args[1], want)
					if !ok {
						return tval{}, false
					}
					return f.addInterval(v, iv, 1), true
				}
			}
			// date +/- integer days stays a date.
			if n, ok := constInt(e.args[1]); ok {
				v, ok := f.foldTime(e.args[0], vDate)
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

// toTimestampLayouts are the to_timestamp formats the rewriter folds (what
// Superset sends), with the Go layout that reads exactly the text Postgres
// reads for them: every field at its full width, nothing else.
var toTimestampLayouts = map[string]string{
	"YYYY-MM-DD HH24:MI:SS.US": "2006-01-02 15:04:05.000000",
	"YYYY-MM-DD HH24:MI:SS":    "2006-01-02 15:04:05",
	"YYYY-MM-DD":               "2006-01-02",
}

// toTimestamp folds to_timestamp(text, format), which reads the text on the
// session's clock, and to_timestamp(integer), the instant that many seconds
// after the epoch. Anything Postgres would read more leniently than the
// strict layouts here does not fold.
func (f *foldCtx) toTimestamp(e *expr) (tval, bool) {
	switch len(e.args) {
	case 1:
		n, ok := constInt(e.args[0])
		if a := e.args[0]; a.kind == kConst && a.lit == litNumeric && intRE.MatchString(a.str) {
			v, err := strconv.ParseInt(strings.TrimSpace(a.str), 10, 64)
			n, ok = v, err == nil
		}
		if !ok || n < -1e11 || n > 1e11 {
			return tval{}, false
		}
		return tval{vInstant, time.Unix(n, 0).UTC()}, true
	case 2:
		s, ok1 := constString(e.args[0])
		format, ok2 := constString(e.args[1])
		layout, ok3 := toTimestampLayouts[format]
		if !ok1 || !ok2 || !ok3 {
			return tval{}, false
		}
		// Every field has a fixed width, so the text has the layout's length;
		// that also refuses the fraction time.Parse would accept after seconds.
		if len(s) != len(layout) {
			return tval{}, false
		}
		t, err := time.Parse(layout, s)
		if err != nil || t.Year() < 1 {
			return tval{}, false
		}
		return tval{vInstant, localToInstant(t, f.loc)}, true
	}
	return tval{}, false
}

// toDate folds to_date(text, 'YYYY-MM-DD'), which Superset writes for date
// bounds: the date as written, read only at the format's full width.
func toDate(e *expr) (tval, bool) {
	if len(e.args) != 2 {
		return tval{}, false
	}
	s, ok1 := constString(e.args[0])
	format, ok2 := constString(e.args[1])
	if !ok1 || !ok2 || format != "YYYY-MM-DD" || len(s) != len("2006-01-02") {
		return tval{}, false
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil || t.Year() < 1 {
		return tval{}, false
	}
	return tval{vDate, t}, true
}

// foldKind is the kind of value foldTime returns for e, known from the
// expression and the parameter types alone, so that a deferred fold has its
// type when the statement is prepared. The deferred fold checks that the value
// it computes has this kind.
func foldKind(e *expr, want valueKind, ptype func(int) (uint32, bool), zones *zoneCache) (valueKind, bool) {
	switch e.kind {
	case kConst:
		return want, e.lit == litString
	case kParam:
		t, ok := ptype(e.param)
		if !ok {
			return 0, false
		}
		switch t {
		case pgtype.TimestamptzOID:
			return vInstant, true
		case pgtype.TimestampOID:
			return vLocal, true
		case pgtype.DateOID:
			return vDate, true
		case 0, pgtype.UnknownOID:
			// Postgres infers the type from the column. A text or varchar
			// parameter has no operator with a time column: an error there.
			return want, true
		}
		return 0, false
	case kSVF:
		switch e.name {
		case "current_date":
			return vDate, true
		case "current_timestamp":
			return vInstant, true
		case "localtimestamp":
			return vLocal, true
		}
	case kCast:
		k := kindOfType(e.typ)
		if k == 0 || e.typ.Typmod != -1 {
			return 0, false
		}
		if _, ok := foldKind(e.args[0], k, ptype, zones); !ok {
			return 0, false
		}
		return k, true
	case kFunc:
		switch {
		case (e.name == "now" || e.name == "transaction_timestamp") && len(e.args) == 0:
			return vInstant, true
		case e.name == "to_timestamp":
			return vInstant, true
		case e.name == "to_date":
			return vDate, true
		case e.name == "date_trunc" && len(e.args) == 2:
			u, ok := constString(e.args[0])
			if !ok {
				return 0, false
			}
			if _, ok := unitGrain(u); !ok {
				return 0, false
			}
			k, ok := foldKind(e.args[1], vInstant, ptype, zones)
			if !ok {
				return 0, false
			}
			if k == vLocal {
				return vLocal, true
			}
			return vInstant, true
		case e.name == "timezone" && len(e.args) == 2:
			z, ok := constString(e.args[0])
			if !ok || zones.get(z).err != nil {
				return 0, false
			}
			switch k, ok := foldKind(e.args[1], vInstant, ptype, zones); {
			case !ok:
				return 0, false
			case k == vInstant:
				return vLocal, true
			case k == vLocal:
				return vInstant, true
			}
			return 0, false
		}
	case kOp:
		if len(e.args) == 2 && (e.name == "+" || e.name == "-") {
			inner := e.args[0]
			if _, ok := foldInterval(e.args[1]); !ok {
				if _, ok := foldInterval(e.args[0]); ok && e.name == "+" {
					inner = e.args[1]
				} else if _, ok := constInt(e.args[1]); ok {
					k, ok := foldKind(e.args[0], vDate, ptype, zones)
					return vDate, ok && k == vDate
				} else {
					return 0, false
				}
			}
			k, ok := foldKind(inner, want, ptype, zones)
			if k == vDate {
				k = vLocal
			}
			return k, ok
		}
	}
	return 0, false
}

// intervalFieldUnits are the single-field interval qualifiers (INTERVAL '1'
// DAY) by their INTERVAL_MASK, with the unit a bare number is read in.
var intervalFieldUnits = map[int32]string{1 << 1: "month", 1 << 2: "year", 1 << 3: "day", 1 << 10: "hour", 1 << 11: "minute", 1 << 12: "second"}

func foldInterval(e *expr) (interval, bool) {
	if e.kind == kCast && e.typ.OID == pgtype.IntervalOID && e.typ.Typmod != -1 {
		// INTERVAL '1' DAY (Malloy): a whole number read in the one field
		// the qualifier names, at full precision. Other qualified forms
		// ('1 day 2 hours' DAY truncates) are left to Postgres.
		unit, ok := intervalFieldUnits[e.typ.Typmod>>16]
		s, isStr := constString(e.args[0])
		if !ok || !isStr || e.typ.Typmod&0xFFFF != 0xFFFF || !intRE.MatchString(s) {
			return interval{}, false
		}
		return parseInterval(strings.TrimSpace(s) + " " + unit)
	}
	if e.kind == kCast && e.typ.OID == pgtype.IntervalOID && e.typ.Typmod == -1 {
		if s, ok := constText(e.args[0]); ok {
			return parseInterval(s)
		}
		if e.args[0].kind == kOp && e.args[0].name == "-" && len(e.args[0].args) == 1 {
			return interval{}, false
		}
	}
	return interval{}, false
}

// constText is the text of a string constant, or of a concatenation of
// string and integer constants as Postgres's || makes it: Looker writes
// a relative range as (-10 || ' day')::INTERVAL.
func constText(e *expr) (string, bool) {
	if s, ok := constString(e); ok {
		return s, true
	}
	if e.kind != kOp || e.name != "||" || len(e.args) != 2 {
		return "", false
	}
	var parts [2]string
	texts := 0
	for i, a := range e.args {
		if s, ok := constText(a); ok {
			parts[i] = s
			texts++
		} else if n, ok := constInt(a); ok {
			parts[i] = strconv.FormatInt(n, 10)
		} else {
			return "", false
		}
	}
	if texts == 0 {
		return "", false // int || int is no operator Postgres has
	}
	return parts[0] + parts[1], true
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

// timeLiteral renders a folded value as a DuckDB literal of its type. It
// runs on every execution, so it formats by hand rather than with
// time.Format: YYYY-MM-DD[ hh:mm:ss[.ffffff]][+00], fractional digits
// without trailing zeros as time.Format's .999999 would write them.
func timeLiteral(v tval) string {
	var b [48]byte
	out := b[:0]
	t := v.t.UTC()
	switch v.kind {
	case vInstant:
		out = append(out, "TIMESTAMPTZ '"...)
	case vLocal:
		out = append(out, "TIMESTAMP '"...)
	case vDate:
		out = append(out, "DATE '"...)
	default:
		return "NULL"
	}
	y, mo, d := t.Date()
	out = appendPadded(out, y, 4)
	out = append(out, '-')
	out = appendPadded(out, int(mo), 2)
	out = append(out, '-')
	out = appendPadded(out, d, 2)
	if v.kind != vDate {
		out = append(out, ' ')
		out = appendPadded(out, t.Hour(), 2)
		out = append(out, ':')
		out = appendPadded(out, t.Minute(), 2)
		out = append(out, ':')
		out = appendPadded(out, t.Second(), 2)
		if us := t.Nanosecond() / 1000; us != 0 {
			digits := 6
			for us%10 == 0 {
				us /= 10
				digits--
			}
			out = append(out, '.')
			out = appendPadded(out, us, digits)
		}
		if v.kind == vInstant {
			out = append(out, "+00"...)
		}
	}
	out = append(out, '\'')
	return string(out)
}

// appendPadded appends n (>= 0) in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	var d [20]byte
	i := len(d)
	for n > 0 || i == len(d) {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	for len(d)-i < width {
		i--
		d[i] = '0'
	}
	return append(b, d[i:]...)
}
