package pgfmt

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

const (
	sec  = int64(1000000)
	hour = 3600 * sec
)

func intervalValues() []Interval {
	return []Interval{
		{}, {Months: 1}, {Months: -1}, {Months: 12}, {Months: 14}, {Months: -14}, {Months: 25},
		{Days: 1}, {Days: -1}, {Days: 2}, {Microseconds: 1}, {Microseconds: -1},
		{Microseconds: sec}, {Microseconds: -sec}, {Microseconds: 1500000}, {Microseconds: -500000},
		{Microseconds: hour}, {Microseconds: -90061 * sec}, {Microseconds: 4*hour + 5*60*sec + 6*sec},
		{Months: 14, Days: 3, Microseconds: 4*hour + 5*60*sec + 6*sec},
		{Months: -14, Days: -3, Microseconds: -(4*hour + 5*60*sec + 6500000)},
		{Months: 1, Days: -1, Microseconds: sec}, {Months: -1, Days: 2, Microseconds: -3 * sec},
		{Months: 1, Days: 1, Microseconds: -sec}, {Months: 0, Days: -1, Microseconds: hour},
		{Days: 1, Microseconds: -hour}, {Months: 3, Microseconds: 120000}, {Months: -3, Microseconds: -120000},
		{Days: 10, Microseconds: 100 * hour}, {Months: 12, Days: 0, Microseconds: 0},
		{Microseconds: 59*60*sec + 59*sec + 999999}, {Microseconds: -(59*60*sec + 59*sec + 999999)},
		{Days: -5, Microseconds: -sec}, {Days: 5, Microseconds: sec}, {Months: 5, Days: 5},
		{Months: -5, Days: -5}, {Months: 5, Days: -5}, {Microseconds: 1000}, {Microseconds: 100000},
		{Months: math.MaxInt32, Days: math.MaxInt32, Microseconds: math.MaxInt64},
		{Months: math.MinInt32, Days: math.MinInt32, Microseconds: math.MinInt64},
		{Months: 1, Microseconds: sec}, {Months: -1, Microseconds: -sec}, {Days: 1, Microseconds: 1},
		{Months: 7, Days: 0, Microseconds: -1}, {Months: 0, Days: 3, Microseconds: 0},
	}
}

// intervalParam writes the interval_recv layout by hand, so that the value
// reaches the server without the encoder under test.
func intervalParam(iv Interval) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(iv.Microseconds))
	b = binary.BigEndian.AppendUint32(b, uint32(iv.Days))
	return binary.BigEndian.AppendUint32(b, uint32(iv.Months))
}

func intervalCase(iv Interval) pgCase {
	return pgCase{name: fmt.Sprintf("%+v", iv), expr: "$?::interval", v: iv,
		param: intervalParam(iv), paramOID: pgtype.IntervalOID, paramFmt: 1}
}

func randomIntervals(r *rand.Rand, n int) []pgCase {
	var cases []pgCase
	pick := func(choices ...int64) int64 { return choices[r.Intn(len(choices))] }
	for i := 0; i < n; i++ {
		iv := Interval{
			Months:       int32(pick(0, 0, 1, -1, 12, -12, 13, r.Int63n(1000)-500, int64(int32(r.Uint32())))),
			Days:         int32(pick(0, 0, 1, -1, 7, r.Int63n(100)-50, int64(int32(r.Uint32())))),
			Microseconds: pick(0, 0, sec, -sec, r.Int63n(48*hour)-24*hour, (r.Int63n(200000)-100000)*sec, int64(r.Uint64())),
		}
		cases = append(cases, intervalCase(iv))
	}
	return cases
}

func TestIntervalAgainstServer(t *testing.T) {
	s := newSession(t)
	ty := newTally(t)
	var cases []pgCase
	for _, iv := range intervalValues() {
		cases = append(cases, intervalCase(iv))
	}
	random := randomIntervals(rand.New(rand.NewSource(7)), 3000)
	for _, is := range allIntervalStyles {
		// DateStyle must not matter; two are swept to show it.
		for _, ds := range []string{"ISO, MDY", "SQL, DMY"} {
			st := s.set(ds, is, "UTC", 1)
			label := "IntervalStyle " + is + ", DateStyle " + ds
			ty.add("interval text, edge cases, "+label, s.diff(label, pgtype.IntervalOID, cases, 0, st))
			ty.add("interval text, random, "+label, s.diff(label, pgtype.IntervalOID, random, 0, st))
		}
	}
	// Binary output from literals the server parses itself.
	lits := []pgCase{
		{name: "1 year 2 mons 3 days 04:05:06.5", expr: "'1 year 2 mons 3 days 04:05:06.5'::interval",
			v: Interval{Months: 14, Days: 3, Microseconds: 4*hour + 5*60*sec + 6500000}},
		{name: "-1 day +02:00", expr: "'-1 day +02:00'::interval", v: Interval{Days: -1, Microseconds: 2 * hour}},
		{name: "0", expr: "'0'::interval", v: Interval{}},
		{name: "-178000000 years", expr: "'-178000000 years'::interval", v: Interval{Months: -178000000 * 12}},
		{name: "1 microsecond ago", expr: "'1 microsecond ago'::interval", v: Interval{Microseconds: -1}},
		{name: "P1Y2M3DT4H5M6S", expr: "'P1Y2M3DT4H5M6S'::interval", v: Interval{Months: 14, Days: 3, Microseconds: 4*hour + 5*60*sec + 6*sec}},
	}
	st := s.set("ISO, MDY", "postgres", "UTC", 1)
	ty.add("interval binary, literals", s.diff("binary", pgtype.IntervalOID, lits, 1, st))
	ty.add("interval text, literals", s.diff("text", pgtype.IntervalOID, lits, 0, st))
	ty.log()
}

func TestIntervalTextExamples(t *testing.T) {
	iv := Interval{Months: -14, Days: 3, Microseconds: -(4*hour + 5*60*sec + 6500000)}
	want := map[IntervalStyle]string{
		IntervalStylePostgres:        "-1 years -2 mons +3 days -04:05:06.5",
		IntervalStylePostgresVerbose: "@ 1 year 2 mons -3 days 4 hours 5 mins 6.5 secs ago",
		IntervalStyleSQLStandard:     "-1-2 +3 -4:05:06.5",
		IntervalStyleISO8601:         "P-1Y-2M3DT-4H-5M-6.5S",
	}
	for style, w := range want {
		st := DefaultSettings()
		st.IntervalStyle = style
		got, err := AppendText(nil, pgtype.IntervalOID, iv, &st)
		if err != nil || string(got) != w {
			t.Errorf("style %d: %q, %v; want %q", style, got, err, w)
		}
	}
}
