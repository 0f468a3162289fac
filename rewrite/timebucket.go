package rewrite

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
)

// grainRank orders granularities; week sits apart (see derivable).
var grainRank = map[config.Granularity]int{
	config.Hour: 0, config.Day: 1, config.Week: 2, config.Month: 3, config.Quarter: 4, config.Year: 5,
}

// derivable reports whether buckets of unit q can be computed from buckets of
// unit g: hour -> day -> month -> quarter -> year, hour/day -> week, never
// week -> month (ISO weeks cross month and year boundaries).
func derivable(g, q config.Granularity) bool {
	if g == q {
		return true
	}
	if q == config.Week {
		return g == config.Hour || g == config.Day
	}
	if g == config.Week {
		return false
	}
	return grainRank[g] < grainRank[q]
}

// unitGrain maps a date_trunc unit or an EXTRACT field to the finest grain
// its value depends on; ok is false for units finer than an hour.
func unitGrain(unit string) (config.Granularity, bool) {
	switch strings.ToLower(unit) {
	case "hour", "hours":
		return config.Hour, true
	case "day", "days", "dow", "isodow", "doy":
		return config.Day, true
	case "week", "weeks", "isoyear":
		return config.Week, true
	case "month", "months":
		return config.Month, true
	case "quarter", "quarters":
		return config.Quarter, true
	case "year", "years":
		return config.Year, true
	}
	return "", false
}

// valueKind is how a time value relates to the clock.
type valueKind uint8

const (
	vInstant valueKind = iota + 1 // timestamptz
	vLocal                        // timestamp: a wall-clock reading
	vDate                         // date
)

func kindOfType(t Type) valueKind {
	switch t.OID {
	case pgtype.TimestamptzOID:
		return vInstant
	case pgtype.TimestampOID:
		return vLocal
	case pgtype.DateOID:
		return vDate
	}
	return 0
}

// naiveClock is the wall clock of timestamp and date values: no zone involved.
const naiveClock = ""

// chain describes a time value derived from the time column without losing
// resolution: its kind and, for wall-clock values, the zone whose clock it reads.
type chain struct {
	kind  valueKind
	clock string
	// grain is the bucket the chain already cut at (a cast to date: day);
	// "" when it keeps the column's resolution.
	grain config.Granularity
	// shifted: whole days were added to or subtracted from the value (the
	// weeks starting on Sunday of Metabase, Tableau and Malloy,
	// date_trunc('week', x + interval '1 day') - interval '1 day').
	shifted bool
}

// cut is where a query expression loses time resolution: the grain it needs
// and the clock (zone) in which it cuts.
type cut struct {
	grain config.Granularity
	clock string // zone for instants cut on a zone's clock; naiveClock otherwise
	// shifted: the bucket is cut after whole days were added, so it is a
	// union of days but not one of the rollup's own buckets above a day.
	shifted bool
}

// timeChain follows casts and AT TIME ZONE from the time column up; ok is
// false when e is not such a chain. Unsupported conversions return a reason.
func (m *matcher) timeChain(e *expr) (chain, bool, *Reason) {
	switch e.kind {
	case kCol:
		if e.col == nil || !m.cr.isTime(e.col) {
			return chain{}, false, nil
		}
		k := kindOfType(m.cr.timeType)
		if k == 0 {
			// Offline explain without types: the time dimension is an instant.
			k = vInstant
		}
		return chain{kind: k}, true, nil
	case kCast:
		in, ok, r := m.timeChain(e.args[0])
		if !ok || r != nil {
			return in, ok, r
		}
		if isTimeOID(e.typ.OID) && e.typ.Typmod != -1 {
			// timestamp(p) rounds, which can move a value into the next bucket.
			return in, true, reason(ReasonExpression, "casts of %s to a time type with a precision are not answered from rollups", m.timeName())
		}
		switch e.typ.OID {
		case pgtype.TimestamptzOID:
			if in.kind != vInstant {
				return in, true, reason(ReasonTimeZone, "casting the timestamp column %s to timestamptz is not answered from rollups", m.timeName())
			}
			return in, true, nil
		case pgtype.TimestampOID:
			switch in.kind {
			case vInstant:
				return chain{kind: vLocal, clock: m.zone, shifted: in.shifted}, true, nil
			case vDate:
				return chain{kind: vLocal, clock: in.clock, grain: in.grain, shifted: in.shifted}, true, nil
			}
			return in, true, nil
		case pgtype.DateOID:
			// A cast to date is a day bucket; a coarser bucket of it (Tableau's
			// DATE_TRUNC('QUARTER', CAST(x AS DATE))) is the same bucket of x.
			switch in.kind {
			case vInstant:
				return chain{kind: vDate, clock: m.zone, grain: config.Day, shifted: in.shifted}, true, nil
			case vLocal:
				return chain{kind: vDate, clock: in.clock, grain: config.Day, shifted: in.shifted}, true, nil
			}
			return in, true, nil
		}
		return in, false, nil
	case kOp:
		if (e.name != "+" && e.name != "-") || len(e.args) != 2 {
			return chain{}, false, nil
		}
		base, shift := e.args[0], e.args[1]
		if _, ok := dayShift(shift); !ok && e.name == "+" {
			base, shift = shift, base
		}
		days, ok := dayShift(shift)
		if !ok {
			return chain{}, false, nil
		}
		in, ok, r := m.timeChain(base)
		if !ok || r != nil {
			return in, ok, r
		}
		if days.isInt && in.kind != vDate {
			return chain{}, false, nil
		}
		in.shifted = true
		if in.kind == vDate && !days.isInt {
			in.kind = vLocal // date + interval is a timestamp
		}
		return in, true, nil
	case kFunc:
		if e.name == "timezone" && len(e.args) == 2 {
			z, ok := constString(e.args[0])
			if !ok {
				return chain{}, false, nil
			}
			in, ok, r := m.timeChain(e.args[1])
			if !ok || r != nil {
				return in, ok, r
			}
			if in.kind != vInstant {
				return in, true, reason(ReasonTimeZone, "AT TIME ZONE on the timestamp column %s is not answered from rollups", m.timeName())
			}
			zi := m.zones.get(z)
			if zi.err != nil {
				return in, true, reason(ReasonTimeZone, "time zone %q is not supported: %v", z, zi.err)
			}
			if in.shifted && zi.name != m.zone {
				// Days were added on the session's clock, whose days are not
				// the zone's.
				return in, true, reason(ReasonTimeZone, "days added to %s in the session's zone and read AT TIME ZONE %s are not answered from rollups", m.timeName(), z)
			}
			return chain{kind: vLocal, clock: zi.name, shifted: in.shifted}, true, nil
		}
	}
	return chain{}, false, nil
}

func (m *matcher) timeName() string { return m.cr.timeCol.column.Name }

// cutOf recognises a time bucket over the time column: date_trunc, a cast to
// date, EXTRACT or date_part, over a chain. ok is false when e is not one.
func (m *matcher) cutOf(e *expr) (cut, bool, *Reason) {
	var unit string
	var arg *expr
	zone := ""
	switch {
	case e.kind == kFunc && e.name == "date_trunc" && (len(e.args) == 2 || len(e.args) == 3):
		u, ok := constString(e.args[0])
		if !ok {
			return cut{}, false, nil
		}
		unit, arg = u, e.args[1]
		if len(e.args) == 3 {
			z, ok := constString(e.args[2])
			if !ok {
				return cut{}, false, nil
			}
			zi := m.zones.get(z)
			if zi.err != nil {
				return cut{}, true, reason(ReasonTimeZone, "time zone %q is not supported: %v", z, zi.err)
			}
			zone = zi.name
		}
	case e.kind == kFunc && (e.name == "extract" || e.name == "date_part") && len(e.args) == 2:
		u, ok := constString(e.args[0])
		if !ok {
			return cut{}, false, nil
		}
		unit, arg = u, e.args[1]
	case e.kind == kCast && e.typ.OID == pgtype.DateOID:
		unit, arg = "day", e.args[0]
	default:
		return cut{}, false, nil
	}
	ch, ok, r := m.timeChain(arg)
	if !ok || r != nil {
		return cut{}, ok, r
	}
	g, ok := unitGrain(unit)
	if !ok {
		return cut{}, true, reason(ReasonTimeBucket, "time bucket %q of %s is finer than any rollup grain", strings.ToLower(unit), m.timeName())
	}
	if e.name == "date_trunc" && g == config.Week && strings.ToLower(unit) == "isoyear" {
		return cut{}, true, reason(ReasonTimeBucket, "date_trunc('isoyear') is not supported")
	}
	c := cut{grain: g}
	if ch.shifted {
		// Days added before the cut: the bucket is a union of whole days of
		// the shifted value, so it needs day buckets on the same clock.
		if g == config.Hour {
			return cut{}, true, reason(ReasonTimeBucket, "an hour bucket of %s shifted by days is not answered from rollups", m.timeName())
		}
		if zone != "" && zone != m.zone {
			return cut{}, true, reason(ReasonTimeZone, "days added to %s in the session's zone and cut in %s are not answered from rollups", m.timeName(), zone)
		}
		c.grain, c.shifted = config.Day, true
	}
	switch ch.kind {
	case vInstant:
		c.clock = m.zone
		if zone != "" {
			c.clock = zone
		}
	default:
		if zone != "" {
			return cut{}, true, reason(ReasonTimeZone, "date_trunc with a zone over the timestamp column %s is not answered from rollups", m.timeName())
		}
		c.clock = ch.clock
	}
	if ch.kind == vDate && g == config.Hour {
		return cut{}, true, reason(ReasonTimeBucket, "an hour of a date is not answered from rollups")
	}
	if ch.grain != "" && !derivable(ch.grain, g) {
		return cut{}, true, reason(ReasonTimeBucket, "a %s bucket of a %s bucket of %s is not answered from rollups", g, ch.grain, m.timeName())
	}
	return c, true, nil
}

// checkCut applies rules 3 and 4 to a bucket.
func (m *matcher) checkCut(c cut) *Reason {
	cr := m.cr
	if !derivable(cr.grain, c.grain) {
		return reason(ReasonGrain, "a %s bucket of %s cannot be computed from rollup %s at %s grain", c.grain, m.timeName(), cr.st.Def.Name, cr.grain)
	}
	k := kindOfType(cr.timeType)
	if k == 0 {
		k = vInstant
	}
	if k != vInstant {
		if c.clock != naiveClock {
			return reason(ReasonTimeZone, "%s has no time zone but the query reads it on the clock of %s", m.timeName(), c.clock)
		}
		return nil
	}
	// The rollup cut instants on the clock of build_timezone.
	if c.clock == naiveClock {
		return reason(ReasonTimeZone, "unsupported mix of clocks over %s", m.timeName())
	}
	if c.clock == m.buildZone {
		return nil
	}
	if cr.grain == config.Hour && m.wholeHours(c.clock) && m.wholeHours(m.buildZone) {
		return nil
	}
	return reason(ReasonTimeZone, "rollup %s was cut in %s but the query buckets %s in %s; set TimeZone to %s or add an hour-grain rollup",
		cr.st.Def.Name, m.buildZone, m.timeName(), c.clock, m.buildZone)
}

// wholeHours reports whether zone's UTC offset is a whole number of hours over
// the range the rollup covers (from 1970 when it covers all time).
func (m *matcher) wholeHours(zone string) bool {
	var lo time.Time
	if !m.cr.st.AllTime {
		for i, p := range m.cr.st.Partitions {
			if p.Start.IsZero() {
				lo = time.Time{}
				break
			}
			if i == 0 || p.Start.Before(lo) {
				lo = p.Start
			}
		}
	}
	return m.zones.get(zone).wholeHoursFrom(lo)
}

// truncTime truncates a wall-clock reading in its location to grain g, as
// Postgres's date_trunc does.
func truncTime(t time.Time, g config.Granularity) time.Time {
	y, mo, d := t.Date()
	loc := t.Location()
	switch g {
	case config.Hour:
		// Postgres keeps the reading's own UTC offset below a day, so the
		// repeated hour of a DST fall-back truncates within itself; time.Date
		// could pick the other pass's offset.
		return t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
	case config.Day:
		return midnight(y, mo, d, loc)
	case config.Week:
		wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
		return midnight(y, mo, d-wd, loc)
	case config.Month:
		return midnight(y, mo, 1, loc)
	case config.Quarter:
		return midnight(y, ((mo-1)/3)*3+1, 1, loc)
	case config.Year:
		return midnight(y, 1, 1, loc)
	}
	return t
}

// bucketEdge reports whether instant t is an edge between the grain g
// buckets Postgres's date_trunc cuts on loc's clock: t is a bucket's value
// and no instant before t falls in that bucket. A bucket's value is then its
// first instant, so a range >= or < t takes whole buckets. Where loc's
// clock shows a midnight twice (Havana goes back from 01:00 to 00:00 on 2
// November 2025), date_trunc reads the midnight as the later pass (05:00
// UTC) but the day's first instants come an hour earlier, in the first
// pass: that day's value is no edge, and neither is the one before it
// bounded by it.
func bucketEdge(t time.Time, loc *time.Location, g config.Granularity) bool {
	return truncTime(t.In(loc), g).Equal(t) && truncTime(t.Add(-time.Microsecond).In(loc), g).Before(t)
}

// midnight is the start of a day on the clock of loc, read as Postgres reads
// it: where the clock skips midnight (Havana, Santiago, Asunción change to
// daylight saving time at 00:00), 00:00 takes the offset before the change,
// which is 01:00 of the new offset; time.Date would give 23:00 of the day
// before.
func midnight(y int, mo time.Month, d int, loc *time.Location) time.Time {
	return localToInstant(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC), loc).In(loc)
}

// exactRaw reports whether the raw time column is itself a bucket: a date at day grain.
func (m *matcher) exactRaw() bool {
	return m.cr.timeType.OID == pgtype.DateOID && m.cr.grain == config.Day
}

// shiftDays is a constant number of whole days added to a time value.
type shiftDays struct {
	days  int
	isInt bool // an integer added to a date (a date), not an interval
}

// dayShift reads e as a constant shift by whole days: an interval of days or
// weeks only (INTERVAL '1 day', INTERVAL '-1 day', INTERVAL '1' DAY), or an
// integer (date + integer).
func dayShift(e *expr) (shiftDays, bool) {
	if n, ok := constInt(e); ok {
		if n < -100000 || n > 100000 {
			return shiftDays{}, false
		}
		return shiftDays{days: int(n), isInt: true}, true
	}
	iv, ok := foldInterval(e)
	if !ok || iv.months != 0 || iv.dur != 0 || iv.days < -100000 || iv.days > 100000 {
		return shiftDays{}, false
	}
	return shiftDays{days: iv.days}, true
}
