package routing

import (
	"strings"
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

// TestEdgesPayLambda: whether a split's edges pay is read from the table of
// the rollup answering its whole buckets, a lambda rollup's as well as an
// ordinary one's: an index on the time column, or a small table.
func TestEdgesPayLambda(t *testing.T) {
	table := func(name string, rows float64, indexed bool) *rewrite.Table {
		return &rewrite.Table{Name: name, Rows: rows, Columns: []rewrite.Column{{Name: "created_at", Indexed: indexed}}}
	}
	tables := map[string]*rewrite.Table{
		"public.small": table("public.small", 5000, false),
		"public.big":   table("public.big", 2e6, false),
		"public.idx":   table("public.idx", 2e6, true),
	}
	lam := &config.Lambda{Column: "created_at"}
	cat := &rewrite.Catalog{Tables: tables, Rollups: []*rewrite.RollupState{
		{Def: config.Rollup{Name: "big_plain", Table: "public.big"}, Version: "v1"},
		{Def: config.Rollup{Name: "small_lambda", Table: "public.small", Lambda: lam}, Version: "v1", LambdaCutoff: time.Unix(1e9, 0)},
		{Def: config.Rollup{Name: "big_lambda", Table: "public.big", Lambda: lam}, Version: "v1", LambdaCutoff: time.Unix(1e9, 0)},
		{Def: config.Rollup{Name: "idx_lambda", Table: "idx", Lambda: lam}, Version: "v1", LambdaCutoff: time.Unix(1e9, 0)},
	}}
	snap := &snapshot{}
	snap.cat, snap.lambda = splitLambda(cat)
	split := &rewrite.EdgeSplit{Column: "created_at", LambdaColumn: "created_at"}
	for _, c := range []struct {
		rollup string
		pays   bool
		note   string
	}{
		{"big_plain", false, "no index on public.big.created_at"},
		{"small_lambda", true, "but the table is small"},
		{"big_lambda", false, "no index on public.big.created_at"},
		{"idx_lambda", true, ""},
		{"missing", false, "the rollup's table is unknown"},
	} {
		pays, note := edgesPay(snap, c.rollup, split)
		if pays != c.pays || !strings.Contains(note, c.note) || (c.note == "" && note != "") {
			t.Errorf("%s: pays %v (%q), want %v (%q)", c.rollup, pays, note, c.pays, c.note)
		}
	}
}
