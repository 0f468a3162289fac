package pgfmt

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// ymd is a calendar date; y is astronomical (0 is 1 BC).
type ymd struct{ y, m, d int }

// isoLit writes the SQL input literal of a date and optional time, so that the
// server parses a value the test spelled out itself.
func isoLit(y, m, d, hh, mi, ss, us int, withTime bool, tz string) string {
	bc := ""
	if y <= 0 {
		y, bc = 1-y, " BC"
	}
	s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	if withTime {
		s += fmt.Sprintf(" %02d:%02d:%02d.%06d%s", hh, mi, ss, us, tz)
	}
	return sqlquote.Literal(s + bc)
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := LoadTimeZone(name)
	if err != nil {
		t.Fatalf("LoadTimeZone(%q): %v", name, err)
	}
	return loc
}

func dateCases(t *testing.T) []pgCase {
	dates := []ymd{
		{2000, 1, 1}, {1999, 12, 31}, {2000, 2, 29}, {2024, 2, 29}, {1900, 2, 28}, {1900, 3, 1},
		{1970, 1, 1}, {2038, 1, 19}, {1, 1, 1}, {0, 12, 31}, {0, 1, 1}, {0, 2, 29}, {-43, 3, 15},
		{-4713, 11, 24}, {-4713, 12, 31}, {9999, 12, 31}, {10000, 1, 1}, {12345, 6, 7},
		{294276, 12, 31}, {5874897, 12, 31}, {2021, 7, 4}, {2023, 10, 8},
	}
	ny := mustLoc(t, "America/New_York")
	var cases []pgCase
	for _, d := range dates {
		lit := isoLit(d.y, d.m, d.d, 0, 0, 0, 0, false, "")
		cases = append(cases, pgCase{name: lit, expr: lit + "::date", v: time.Date(d.y, time.Month(d.m), d.d, 0, 0, 0, 0, time.UTC)})
	}
	// The calendar date in the value's own location is the date.
	cases = append(cases,
		pgCase{name: "2024-03-10 in New York", expr: "'2024-03-10'::date", v: time.Date(2024, 3, 10, 0, 0, 0, 0, ny)},
		pgCase{name: "infinity", expr: "'infinity'::date", v: PosInfinity},
		pgCase{name: "-infinity", expr: "'-infinity'::date", v: NegInfinity},
	)
	return cases
}

func randomDateCases(r *rand.Rand, n int) []pgCase {
	var cases []pgCase
	for i := 0; i < n; i++ {
		var days int64
		if i%2 == 0 {
			days = r.Int63n(200*366) - 100*366 // around 2000
		} else {
			days = r.Int63n(dateEndJulian) - postgresEpochJDate // anywhere
		}
		cases = append(cases, pgCase{
			name: fmt.Sprintf("day %d", days), expr: "$?::date",
			v:     time.Date(2000, 1, 1+int(days), 0, 0, 0, 0, time.UTC),
			param: binary.BigEndian.AppendUint32(nil, uint32(int32(days))), paramOID: pgtype.DateOID, paramFmt: 1,
		})
	}
	return cases
}

type tsLit struct{ y, m, d, hh, mi, ss, us int }

func timestampCases(t *testing.T) []pgCase {
	stamps := []tsLit{
		{2000, 1, 1, 0, 0, 0, 0}, {1999, 12, 31, 23, 59, 59, 999999}, {2024, 2, 29, 12, 30, 0, 500000},
		{2024, 3, 31, 2, 30, 0, 1}, {2024, 7, 1, 8, 0, 0, 120000}, {2024, 10, 27, 2, 30, 0, 100},
		{1970, 1, 1, 0, 0, 0, 0}, {1850, 1, 1, 12, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0}, {0, 12, 31, 23, 59, 59, 0},
		{-43, 3, 15, 12, 0, 0, 0}, {-4713, 11, 24, 0, 0, 0, 0}, {9999, 12, 31, 23, 59, 59, 999999},
		{10000, 1, 1, 0, 0, 0, 0}, {294276, 12, 31, 23, 59, 59, 999999}, {2038, 1, 19, 3, 14, 8, 0},
		{2100, 7, 1, 12, 0, 0, 10},
	}
	ny := mustLoc(t, "America/New_York")
	var cases []pgCase
	for _, s := range stamps {
		lit := isoLit(s.y, s.m, s.d, s.hh, s.mi, s.ss, s.us, true, "")
		cases = append(cases, pgCase{name: lit, expr: lit + "::timestamp",
			v: time.Date(s.y, time.Month(s.m), s.d, s.hh, s.mi, s.ss, s.us*1000, time.UTC)})
	}
	cases = append(cases,
		// A timestamp is the wall clock in the value's own location.
		pgCase{name: "wall clock in New York", expr: "'2024-07-01 20:15:00'::timestamp", v: time.Date(2024, 7, 1, 20, 15, 0, 0, ny)},
		pgCase{name: "infinity", expr: "'infinity'::timestamp", v: PosInfinity},
		pgCase{name: "-infinity", expr: "'-infinity'::timestamp", v: NegInfinity},
	)
	return cases
}

func randomTimestampCases(r *rand.Rand, n int, typ string, oid uint32) []pgCase {
	var cases []pgCase
	for i := 0; i < n; i++ {
		var us int64
		switch i % 3 {
		case 0: // 1800..2200, where the zone rules are rich
			us = r.Int63n(400*366*86400*1000000) - 200*366*86400*1000000
		case 1: // whole seconds, so that the fraction-free path is covered too
			us = (r.Int63n(400*366*86400) - 200*366*86400) * 1000000
		default: // anywhere in range
			const span = uint64(endTimestampSecs-minTimestampSecs) * 1000000
			us = minTimestampSecs*1000000 + int64(r.Uint64()%span) // span < 2^63
		}
		secs, frac := us/1000000, us%1000000
		if frac < 0 {
			secs, frac = secs-1, frac+1000000
		}
		cases = append(cases, pgCase{
			name: fmt.Sprintf("%d us", us), expr: "$?::" + typ,
			v:     time.Unix(secs+unixEpochToPostgres, frac*1000).UTC(),
			param: binary.BigEndian.AppendUint64(nil, uint64(us)), paramOID: oid, paramFmt: 1,
		})
	}
	return cases
}

func timestamptzCases(t *testing.T) []pgCase {
	stamps := []tsLit{
		// Europe/Berlin DST 2024: 01:00 UTC on Mar 31 and Oct 27.
		{2024, 3, 31, 0, 59, 59, 999999}, {2024, 3, 31, 1, 0, 0, 0}, {2024, 10, 27, 0, 30, 0, 0}, {2024, 10, 27, 1, 30, 0, 0},
		// America/New_York DST 2024: 07:00 UTC Mar 10, 06:00 UTC Nov 3.
		{2024, 3, 10, 6, 59, 59, 0}, {2024, 3, 10, 7, 0, 0, 0}, {2024, 11, 3, 5, 30, 0, 0}, {2024, 11, 3, 6, 30, 0, 0},
		{2000, 1, 1, 0, 0, 0, 0}, {1999, 12, 31, 23, 59, 59, 999999}, {2024, 2, 29, 12, 30, 0, 500000},
		{1850, 1, 1, 12, 0, 0, 0}, {1900, 1, 1, 0, 0, 0, 0}, {1937, 7, 1, 0, 0, 0, 0}, {1945, 5, 8, 23, 1, 0, 0},
		{1970, 1, 1, 0, 0, 0, 0}, {1986, 1, 1, 0, 0, 0, 0}, {2038, 1, 19, 3, 14, 8, 0}, {2100, 7, 1, 12, 0, 0, 10},
		{2100, 12, 1, 12, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0}, {0, 12, 31, 23, 59, 59, 0}, {-43, 3, 15, 12, 0, 0, 0},
		{-4713, 11, 24, 0, 0, 0, 0}, {9999, 12, 31, 23, 59, 59, 999999}, {10000, 1, 1, 0, 0, 0, 0},
		{294276, 12, 31, 23, 59, 59, 999999}, {2024, 6, 15, 18, 45, 0, 0},
	}
	var cases []pgCase
	for _, s := range stamps {
		lit := isoLit(s.y, s.m, s.d, s.hh, s.mi, s.ss, s.us, true, "+00")
		cases = append(cases, pgCase{name: lit, expr: lit + "::timestamptz",
			v: time.Date(s.y, time.Month(s.m), s.d, s.hh, s.mi, s.ss, s.us*1000, time.UTC)})
	}
	kolkata := mustLoc(t, "Asia/Kolkata")
	cases = append(cases,
		// The instant counts, not the value's Location.
		pgCase{name: "instant given in Kolkata", expr: "'2024-01-01 00:00:00+00'::timestamptz", v: time.Date(2024, 1, 1, 5, 30, 0, 0, kolkata)},
		pgCase{name: "infinity", expr: "'infinity'::timestamptz", v: PosInfinity},
		pgCase{name: "-infinity", expr: "'-infinity'::timestamptz", v: NegInfinity},
	)
	return cases
}

// testZones are the TimeZone values swept for timestamptz: DST zones,
// half- and quarter-hour offsets, historic LMT offsets with seconds, negative
// DST, and the POSIX forms the server reports after SET TIME ZONE.
var testZones = []string{
	"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Europe/Amsterdam",
	"Africa/Monrovia", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham", "Europe/Dublin",
	"America/Sao_Paulo", "Pacific/Kiritimati", "EST5EDT", "<+05>-05", "<+05:30>-05:30", "XYZ3ABC",
	"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
}

func TestDateAgainstServer(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	r := rand.New(rand.NewSource(4))
	cases := dateCases(t)
	random := randomDateCases(r, 1000)
	for _, ds := range allDateStyles {
		st := s.set(ds, "postgres", "UTC", 1)
		ty.add("date text, edge cases, DateStyle "+ds, s.diff(ds, pgtype.DateOID, cases, 0, st))
		ty.add("date text, random, DateStyle "+ds, s.diff(ds, pgtype.DateOID, random, 0, st))
	}
	st := s.set("ISO, MDY", "postgres", "Asia/Kathmandu", 1)
	ty.add("date binary, edge cases", s.diff("binary", pgtype.DateOID, cases, 1, st))
	ty.log()
}

func TestTimestampAgainstServer(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	r := rand.New(rand.NewSource(5))
	cases := timestampCases(t)
	random := randomTimestampCases(r, 1000, "timestamp", pgtype.TimestampOID)
	for _, ds := range allDateStyles {
		// TimeZone must not matter for timestamp without time zone.
		st := s.set(ds, "postgres", "America/New_York", 1)
		ty.add("timestamp text, edge cases, DateStyle "+ds, s.diff(ds, pgtype.TimestampOID, cases, 0, st))
		ty.add("timestamp text, random, DateStyle "+ds, s.diff(ds, pgtype.TimestampOID, random, 0, st))
	}
	st := s.set("ISO, MDY", "postgres", "Europe/Berlin", 1)
	ty.add("timestamp binary, edge cases", s.diff("binary", pgtype.TimestampOID, cases, 1, st))
	ty.log()
}

func TestTimestamptzAgainstServer(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	r := rand.New(rand.NewSource(6))
	cases := timestamptzCases(t)
	random := randomTimestampCases(r, 600, "timestamptz", pgtype.TimestamptzOID)
	for _, zone := range testZones {
		for _, ds := range allDateStyles {
			st := s.set(ds, "postgres", zone, 1)
			label := "DateStyle " + ds + ", TimeZone " + zone
			ty.add("timestamptz text, edge cases, "+label, s.diff(label, pgtype.TimestamptzOID, cases, 0, st))
			ty.add("timestamptz text, random, "+label, s.diff(label, pgtype.TimestamptzOID, random, 0, st))
		}
	}
	for _, zone := range []string{"UTC", "Asia/Kathmandu"} {
		st := s.set("ISO, MDY", "postgres", zone, 1)
		ty.add("timestamptz binary, edge cases, TimeZone "+zone, s.diff("binary "+zone, pgtype.TimestamptzOID, cases, 1, st))
	}
	ty.log()
}

// TestTimestamptzAroundTransitions samples the transition seasons of many
// years densely (every 47 minutes, so that an error of an hour or a day
// cannot hide), in zones where the rule comes from a POSIX string and in IANA
// zones with odd DST (half-hour, negative, southern).
func TestTimestamptzAroundTransitions(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	var cases []pgCase
	for _, y := range []int{-100, 1806, 1900, 1969, 1970, 2024, 2038, 2100, 3000} {
		for _, season := range [][2]int{{2, 5}, {9, 12}} {
			from := time.Date(y, time.Month(season[0]), 1, 0, 0, 0, 0, time.UTC)
			to := time.Date(y, time.Month(season[1]), 1, 0, 0, 0, 0, time.UTC)
			for u := from; u.Before(to); u = u.Add(47 * time.Minute) {
				us := (u.Unix() - unixEpochToPostgres) * 1000000
				cases = append(cases, pgCase{name: u.String(), expr: "$?::timestamptz", v: u,
					param: binary.BigEndian.AppendUint64(nil, uint64(us)), paramOID: pgtype.TimestamptzOID, paramFmt: 1})
			}
		}
	}
	for _, zone := range []string{"XYZ3ABC", "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", "AAA-10BBB,M10.1.0,M4.1.0/3",
		"CET-1CEST,J60/2,J300/3", "<+0330>-3:30<+0430>,79/24,263/24", "Europe/Berlin", "Australia/Lord_Howe",
		"Europe/Dublin", "America/Sao_Paulo"} {
		st := s.set("Postgres, MDY", "postgres", zone, 1)
		ty.add("timestamptz text around transitions, TimeZone "+zone, s.diff(zone, pgtype.TimestamptzOID, cases, 0, st))
	}
	ty.log()
}

func TestDateTimeErrors(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	tests := []struct {
		oid uint32
		v   any
	}{
		{pgtype.DateOID, time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)},               // time of day on a date
		{pgtype.DateOID, time.Date(-4713, 11, 23, 0, 0, 0, 0, time.UTC)},             // before the first date
		{pgtype.DateOID, time.Date(5874898, 1, 1, 0, 0, 0, 0, time.UTC)},             // after the last date
		{pgtype.TimestampOID, time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC)},           // nanoseconds
		{pgtype.TimestampOID, time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)},         // after the last timestamp
		{pgtype.TimestamptzOID, time.Date(-4713, 11, 23, 23, 59, 59, 0, time.UTC)},   // before the first timestamp
		{pgtype.TimestamptzOID, time.Date(294276, 12, 31, 20, 0, 0, 0, ny)},          // after the last instant
		{pgtype.TimestamptzOID, "2024-01-01"},                                        // not a time.Time
		{pgtype.DateOID, Infinity(0)},                                                // not an infinity
		{pgtype.IntervalOID, 5 * time.Second},                                        // a Duration is not an Interval
		{pgtype.TimestampOID, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()},    // nor is an int64
		{pgtype.TimestamptzOID, &time.Time{}},                                        // nor a pointer
		{pgtype.DateOID, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Format("x")},    // nor a string
		{pgtype.TimestamptzOID, time.Date(2024, 1, 1, 0, 0, 0, 500, time.UTC)},       // nanoseconds
		{pgtype.TimestamptzOID, Infinity(2)},                                         // not an infinity
		{pgtype.TimestampOID, Infinity(-2)},                                          // not an infinity
		{pgtype.IntervalOID, Interval{}.Months},                                      // not an Interval
		{pgtype.DateOID, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Hour)}, // time of day
	}
	st := DefaultSettings()
	for i, tc := range tests {
		if b, err := AppendText([]byte("x"), tc.oid, tc.v, &st); err == nil || string(b) != "x" {
			t.Errorf("%d: text of %s %v: %q, %v; want an error and dst unchanged", i, typeName(tc.oid), tc.v, b, err)
		}
		if b, err := AppendBinary([]byte("x"), tc.oid, tc.v); err == nil || string(b) != "x" {
			t.Errorf("%d: binary of %s %v: %q, %v; want an error and dst unchanged", i, typeName(tc.oid), tc.v, b, err)
		}
	}
}
