package rewrite

import (
	"context"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
)

// TestWallClockMatchesPostgres checks that a wall clock in the session's
// zone is read as Postgres reads it around every change of 2025 in zones
// west and east of UTC, one that changes at midnight (Havana) and one that
// changes by half an hour (Lord Howe): literals ('2025-03-09 02:30', skipped
// in New York, and '2025-11-02 01:30', shown twice), and instants plus a
// number of days or months that land in such an hour (now() - interval '1
// day'), and date_trunc of the instants so read.
func TestWallClockMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := startPostgres(t, ctx)
	ivs := []struct {
		text string
		iv   interval
		sign int
	}{
		{"1 day", interval{days: 1}, 1},
		{"-1 day", interval{days: 1}, -1},
		{"1 mon", interval{months: 1}, 1},
		{"1 mon 1 day", interval{months: 1, days: 1}, 1},
	}
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		// Wall clocks every 10 minutes from 3 hours before each change
		// of 2025 to 3 hours after it, and one in June.
		var walls []time.Time
		walls = append(walls, time.Date(2025, 6, 15, 12, 34, 56, 789000000, time.UTC))
		for _, a := range changesIn(loc, 2025) {
			// The change lies in (a, a + 1h]: walls around a's reading.
			for m := -180; m <= 240; m += 10 {
				walls = append(walls, instantToLocal(a, loc).Add(time.Duration(m)*time.Minute))
			}
		}
		if _, err := pg.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
			t.Fatal(err)
		}
		texts := make([]string, len(walls))
		for i, w := range walls {
			texts[i] = w.Format("2006-01-02 15:04:05.999999")
		}
		var want []time.Time
		if err := pg.QueryRow(ctx, "SELECT array_agg(w::timestamptz ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(w, i)", texts).Scan(&want); err != nil {
			t.Fatal(err)
		}
		fc := &foldCtx{loc: loc}
		for i, w := range walls {
			if got := localToInstant(w, loc); !got.Equal(want[i]) {
				t.Errorf("%s: '%s' is %s, Postgres reads %s", zone, texts[i], got.UTC(), want[i].UTC())
			}
		}
		// date_trunc of the instants read: the midnight Havana skips when
		// it changes to daylight saving time is read as Postgres reads it.
		for _, g := range []config.Granularity{config.Hour, config.Day, config.Week, config.Month, config.Quarter, config.Year} {
			var truncs []time.Time
			if err := pg.QueryRow(ctx, "SELECT array_agg(date_trunc($2, x) ORDER BY i) FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(x, i)", want, string(g)).Scan(&truncs); err != nil {
				t.Fatal(err)
			}
			for i, x := range want {
				if got := truncTime(x.In(loc), g); !got.Equal(truncs[i]) {
					t.Errorf("%s: date_trunc('%s', %s) is %s, Postgres's %s", zone, g, x.In(loc), got.UTC(), truncs[i].UTC())
				}
			}
		}
		// Instants that many days or months before the walls.
		for _, iv := range ivs {
			from := make([]time.Time, len(want))
			for i, w := range want {
				from[i] = w.AddDate(0, -iv.sign*iv.iv.months, -iv.sign*iv.iv.days).Add(time.Duration(i%3) * 20 * time.Minute)
			}
			var sums []time.Time
			if err := pg.QueryRow(ctx, "SELECT array_agg(x + $2::interval ORDER BY i) FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(x, i)", from, iv.text).Scan(&sums); err != nil {
				t.Fatal(err)
			}
			for i, x := range from {
				if got := fc.addInterval(tval{vInstant, x}, iv.iv, iv.sign); got.kind != vInstant || !got.t.Equal(sums[i]) {
					t.Errorf("%s: %s + interval '%s' is %s, Postgres's %s", zone, x.In(loc), iv.text, got.t.UTC(), sums[i].UTC())
				}
			}
		}
	}
}

// changesIn lists, for each change of loc's UTC offset in year, the whole
// UTC hour a such that the change lies in (a, a + 1h].
func changesIn(loc *time.Location, year int) []time.Time {
	var out []time.Time
	start := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := 0; h < 365*24; h++ {
		a, b := start.Add(time.Duration(h)*time.Hour), start.Add(time.Duration(h+1)*time.Hour)
		_, oa := a.In(loc).Zone()
		_, ob := b.In(loc).Zone()
		if oa != ob {
			out = append(out, a)
		}
	}
	return out
}
