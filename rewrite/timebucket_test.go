package rewrite

import (
	"context"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
)

// TestBucketEdgeMatchesPostgres checks bucketEdge against Postgres's
// date_trunc around every change of 2025: an instant is an edge when it is
// its own bucket and every instant of the three hours before it truncates
// to an earlier bucket. Havana shows its midnight of 2 November 2025 twice,
// and date_trunc('day') gives the later pass: that day's value is no edge.
func TestBucketEdgeMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := startPostgres(t, ctx)
	const edgeSQL = `SELECT array_agg(date_trunc($2, e) = e AND
		(SELECT max(date_trunc($2, x)) FROM generate_series(e - interval '3 hours', e - interval '1 minute', interval '1 minute') x) < e
		ORDER BY i) FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(e, i)`
	nonEdges := map[config.Granularity]int{}
	for _, zone := range []string{"America/New_York", "America/Havana", "America/Santiago", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pg.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
			t.Fatal(err)
		}
		// Instants every 30 minutes two days either side of each change
		// of 2025 and 2026 (Havana's 1 November 2026 starts twice: a month
		// value that is no edge), and 1 January.
		var xs []time.Time
		for _, a := range append(append(changesIn(loc, 2025), changesIn(loc, 2026)...), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
			for m := -48 * 60; m <= 48*60; m += 30 {
				xs = append(xs, a.Add(time.Duration(m)*time.Minute))
			}
		}
		for _, g := range []config.Granularity{config.Hour, config.Day, config.Week, config.Month} {
			// The buckets' values, and the instants themselves.
			var cands []time.Time
			if err := pg.QueryRow(ctx, "SELECT array_agg(DISTINCT date_trunc($2, x)) FROM unnest($1::timestamptz[]) x", xs, string(g)).Scan(&cands); err != nil {
				t.Fatal(err)
			}
			cands = append(cands, xs...)
			var want []bool
			if err := pg.QueryRow(ctx, edgeSQL, cands, string(g)).Scan(&want); err != nil {
				t.Fatal(err)
			}
			for i, e := range cands {
				got := bucketEdge(e, loc, g)
				if got != want[i] {
					t.Errorf("%s: bucketEdge(%s, %s) = %v, Postgres's date_trunc says %v", zone, e.In(loc), g, got, want[i])
				}
				if !got && truncTime(e.In(loc), g).Equal(e) {
					nonEdges[g]++
				}
			}
		}
	}
	if nonEdges[config.Day] == 0 || nonEdges[config.Month] == 0 {
		t.Errorf("bucket values that are no edge by grain: %v; Havana's 2 November 2025 and November 2026 should be", nonEdges)
	}
}
