package routing

import (
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

// TestSplitLambda keeps lambda rollups out of the main catalog, and gives
// each the open range its warehouse part covers above its partitions.
func TestSplitLambda(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC) }
	cutoff := day(5).Add(10 * time.Hour)
	parts := []rewrite.Partition{{Start: day(1), End: day(2), Files: []string{"a"}}, {Start: day(2), End: day(3), Files: []string{"b"}}}
	lam := &config.Lambda{Column: "ts"}
	cat := &rewrite.Catalog{Rollups: []*rewrite.RollupState{
		{Def: config.Rollup{Name: "plain"}, Version: "v1"},
		{Def: config.Rollup{Name: "lam", Lambda: lam}, Version: "v1", Partitions: parts, LambdaCutoff: cutoff},
		{Def: config.Rollup{Name: "ranged", Lambda: lam, BuildRange: &config.BuildRange{}}, Version: "v1", Partitions: parts, LambdaCutoff: cutoff},
		{Def: config.Rollup{Name: "uncut", Lambda: lam}, Version: "v1", Partitions: parts},
	}}
	main, lambda := splitLambda(cat)
	if len(main.Rollups) != 1 || main.Rollups[0].Def.Name != "plain" {
		t.Fatalf("main catalog: %v", main.Rollups)
	}
	if lambda == nil || len(lambda.Rollups) != 2 || lambda.MaxStaleness != 0 {
		t.Fatalf("lambda catalog: %+v", lambda)
	}
	for _, c := range []struct {
		name  string
		start time.Time
	}{{"lam", day(3)}, {"ranged", cutoff}} {
		var st *rewrite.RollupState
		for _, rs := range lambda.Rollups {
			if rs.Def.Name == c.name {
				st = rs
			}
		}
		if st == nil {
			t.Fatalf("%s is not in the lambda catalog", c.name)
		}
		last := st.Partitions[len(st.Partitions)-1]
		if len(st.Partitions) != 3 || !last.Start.Equal(c.start) || !last.End.IsZero() || len(last.Files) != 0 {
			t.Errorf("%s: partitions %+v, want the open range from %s last", c.name, st.Partitions, c.start)
		}
	}
	if len(cat.Rollups[1].Partitions) != 2 {
		t.Error("the configured catalog's partitions changed")
	}
	if m, l := splitLambda(&rewrite.Catalog{Rollups: cat.Rollups[:1]}); l != nil || len(m.Rollups) != 1 {
		t.Error("a catalog without lambda rollups is split")
	}
}
