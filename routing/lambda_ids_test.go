package routing

import (
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

// TestIDLambdaPartitions: a lambda rollup on an id column covers the
// times around its partitions, but not all time while rows without a time
// may be missing from it, nor beyond a build_range.
func TestIDLambdaPartitions(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC) }
	parts := []rewrite.Partition{{Start: day(2), End: day(3), Files: []string{"b"}}, {Start: day(1), End: day(2), Files: []string{"a"}}}
	cut := int64(100)
	lam := &config.Lambda{Column: "id"}
	cat := &rewrite.Catalog{Rollups: []*rewrite.RollupState{
		{Def: config.Rollup{Name: "ids", Lambda: lam}, Version: "v1", Partitions: parts, LambdaCutoffID: &cut},
		{Def: config.Rollup{Name: "all", Lambda: lam}, Version: "v1", Partitions: parts, AllTime: true, LambdaCutoffID: &cut},
		{Def: config.Rollup{Name: "ranged", Lambda: lam, BuildRange: &config.BuildRange{}}, Version: "v1", Partitions: parts, LambdaCutoffID: &cut},
		{Def: config.Rollup{Name: "unbuilt", Lambda: lam}, LambdaCutoffID: &cut},
	}}
	_, lambda := splitLambda(cat)
	if lambda == nil || len(lambda.Rollups) != 3 {
		t.Fatalf("lambda catalog: %+v", lambda)
	}
	want := map[string][]rewrite.Partition{
		"ids":    append(append([]rewrite.Partition(nil), parts...), rewrite.Partition{Start: farPast, End: day(1)}, rewrite.Partition{Start: day(3), End: farFuture}),
		"all":    parts,
		"ranged": parts,
	}
	for _, st := range lambda.Rollups {
		got := st.Partitions
		w := want[st.Def.Name]
		if len(got) != len(w) {
			t.Errorf("%s: partitions %+v, want %+v", st.Def.Name, got, w)
			continue
		}
		for i := range w {
			if !got[i].Start.Equal(w[i].Start) || !got[i].End.Equal(w[i].End) {
				t.Errorf("%s: partition %d is %+v, want %+v", st.Def.Name, i, got[i], w[i])
			}
		}
	}
	if len(cat.Rollups[0].Partitions) != 2 {
		t.Error("the configured catalog's partitions changed")
	}
}
