package pgfmt

import (
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

func TestParseDateStyle(t *testing.T) {
	tests := []struct {
		in    string
		style DateStyle
		order DateOrder
		ok    bool
	}{
		{"ISO, MDY", DateStyleISO, DateOrderMDY, true},
		{"SQL, DMY", DateStyleSQL, DateOrderDMY, true},
		{"Postgres, YMD", DateStylePostgres, DateOrderYMD, true},
		{"German, DMY", DateStyleGerman, DateOrderDMY, true},
		{"German", DateStyleGerman, DateOrderDMY, true},
		{"german, mdy", DateStyleGerman, DateOrderMDY, true},
		{"MDY, German", DateStyleGerman, DateOrderMDY, true},
		{"European", DateStyleISO, DateOrderDMY, true},
		{" sql ,  us ", DateStyleSQL, DateOrderMDY, true},
		{"NonEuropean, Postgres", DateStylePostgres, DateOrderMDY, true},
		{"Default", DateStyleISO, DateOrderMDY, true},
		{"ISO, SQL", 0, 0, false},
		{"DMY, MDY", 0, 0, false},
		{"ISO, XYZ", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		style, order, err := ParseDateStyle(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (style != tc.style || order != tc.order)) {
			t.Errorf("ParseDateStyle(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, style, order, err, tc.style, tc.order, tc.ok)
		}
	}
}

// TestDateStyleAsServerReports sets DateStyle as users write it and checks
// that what the server then reports parses to the same thing as the input.
func TestDateStyleAsServerReports(t *testing.T) {
	s := newSession(t)
	for _, in := range []string{"ISO", "SQL", "Postgres", "German", "European", "US", "sql, european",
		"postgres, ymd", "German, MDY", "iso, dmy", "NonEuro", "SQL, YMD"} {
		s.exec("RESET DateStyle")
		s.exec("SET DateStyle = " + sqlquote.Literal(in))
		reported := s.conn.ParameterStatus("DateStyle")
		st1, o1, err1 := ParseDateStyle(in)
		st2, o2, err2 := ParseDateStyle(reported)
		if err1 != nil || err2 != nil || st1 != st2 || o1 != o2 {
			t.Errorf("SET DateStyle %q (server reports %q): parsed %d,%d,%v vs %d,%d,%v", in, reported, st1, o1, err1, st2, o2, err2)
		}
	}
}

func TestParseIntervalStyle(t *testing.T) {
	for in, want := range map[string]IntervalStyle{
		"postgres": IntervalStylePostgres, "Postgres_Verbose": IntervalStylePostgresVerbose,
		"sql_standard": IntervalStyleSQLStandard, "ISO_8601": IntervalStyleISO8601,
	} {
		if got, err := ParseIntervalStyle(in); err != nil || got != want {
			t.Errorf("ParseIntervalStyle(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseIntervalStyle("iso"); err == nil {
		t.Error(`ParseIntervalStyle("iso"): want an error`)
	}
}

func TestParseExtraFloatDigits(t *testing.T) {
	for in, want := range map[string]int{"-15": -15, "0": 0, "1": 1, " 3": 3} {
		if got, err := ParseExtraFloatDigits(in); err != nil || got != want {
			t.Errorf("ParseExtraFloatDigits(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"4", "-16", "x", ""} {
		if _, err := ParseExtraFloatDigits(in); err == nil {
			t.Errorf("ParseExtraFloatDigits(%q): want an error", in)
		}
	}
}

func TestSettingsFromParams(t *testing.T) {
	st, err := SettingsFromParams(nil)
	if err != nil || st.DateStyle != DateStyleISO || st.DateOrder != DateOrderMDY ||
		st.IntervalStyle != IntervalStylePostgres || st.TimeZone != time.UTC || st.ExtraFloatDigits != 1 {
		t.Errorf("defaults: %+v, %v", st, err)
	}
	st, err = SettingsFromParams(map[string]string{
		"DateStyle": "SQL, DMY", "IntervalStyle": "iso_8601", "TimeZone": "Europe/Berlin", "extra_float_digits": "3",
		"client_encoding": "UTF8", // other parameters are ignored
	})
	if err != nil || st.DateStyle != DateStyleSQL || st.DateOrder != DateOrderDMY ||
		st.IntervalStyle != IntervalStyleISO8601 || st.TimeZone.String() != "Europe/Berlin" || st.ExtraFloatDigits != 3 {
		t.Errorf("full: %+v, %v", st, err)
	}
	for _, bad := range []map[string]string{
		{"DateStyle": "Roman"}, {"IntervalStyle": "short"}, {"TimeZone": "Mars/Olympus"},
		{"TimeZone": "Local"}, {"TimeZone": ""}, {"extra_float_digits": "9"},
	} {
		if _, err := SettingsFromParams(bad); err == nil {
			t.Errorf("SettingsFromParams(%v): want an error", bad)
		}
	}
}

func TestLoadTimeZonePOSIX(t *testing.T) {
	tests := []struct {
		spec   string
		at     time.Time
		name   string
		offset int
	}{
		{"<+05>-05", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "+05", 5 * 3600},
		{"<+05:30>-05:30", time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), "+05:30", 5*3600 + 1800},
		{"<-03>3", time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), "-03", -3 * 3600},
		// An empty standard time name, as the server reports a startup option
		// timezone=+05:30 (five and a half hours west).
		{"+05:30", time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), "", -(5*3600 + 1800)},
		{"+00:00", time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), "", 0},
		// No rule: the US rules since 2007, for every year, as the server does.
		{"XYZ3ABC", time.Date(2004, 3, 20, 0, 0, 0, 0, time.UTC), "ABC", -2 * 3600},
		{"XYZ3ABC", time.Date(2004, 12, 20, 0, 0, 0, 0, time.UTC), "XYZ", -3 * 3600},
		{"AAA-10BBB,M10.1.0,M4.1.0/3", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "BBB", 11 * 3600},
		{"AAA-10BBB,M10.1.0,M4.1.0/3", time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), "AAA", 10 * 3600},
		{"CET-1CEST,J60/2,J300/3", time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), "CEST", 2 * 3600},
		// Before 1970 too (Go's own footer evaluation is a day late there):
		// DST began on Saturday 1806-03-29 at 22:00 local standard time.
		{"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", time.Date(1806, 3, 30, 1, 0, 0, 0, time.UTC), "-02", -2 * 3600},
		{"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", time.Date(1806, 3, 30, 0, 59, 0, 0, time.UTC), "-03", -3 * 3600},
		{"AAA-10BBB,M10.1.0,M4.1.0/3", time.Date(-4713, 12, 1, 0, 0, 0, 0, time.UTC), "BBB", 11 * 3600},
	}
	for _, tc := range tests {
		loc, err := LoadTimeZone(tc.spec)
		if err != nil {
			t.Errorf("LoadTimeZone(%q): %v", tc.spec, err)
			continue
		}
		name, off := tc.at.In(loc).Zone()
		if name != tc.name || off != tc.offset {
			t.Errorf("%s at %v: %s %d, want %s %d", tc.spec, tc.at, name, off, tc.name, tc.offset)
		}
	}
	for _, bad := range []string{"AB3", "ABC", "ABC3DEF,M3.2.0", "ABC3DEF,M13.1.0,M11.1.0", "<+05-05", "ABC3DEF,M3.2.0,M11.1.0x", "ABC25"} {
		if _, err := LoadTimeZone(bad); err == nil {
			t.Errorf("LoadTimeZone(%q): want an error", bad)
		}
	}
}
