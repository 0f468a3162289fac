package config

import "testing"

// TestAppendedLists: rollups and tables given again at the end of the file
// (pgrollup advise's output appended) add to the earlier lists; any other
// key given twice is still an error.
func TestAppendedLists(t *testing.T) {
	src := withRollup() + lines(
		"rollups:",                        // 12
		"  - name: advised",               // 13
		"    table: public.orders",        // 14
		"    dimensions: [status]",        // 15
		"    measures: [\"sum(amount)\"]", // 16
		"tables:",                         // 17
		"  - name: public.items",          // 18
	)
	cfg := mustParse(t, src, "pgrollup.yaml", nil)
	if len(cfg.Rollups) != 2 || cfg.Rollups[1].Name != "advised" || cfg.Rollups[1].Dimensions[0] != "status" {
		t.Fatalf("rollups %+v", cfg.Rollups)
	}
	if len(cfg.Tables) != 2 || cfg.Tables[1].Name != "public.items" {
		t.Fatalf("tables %+v", cfg.Tables)
	}
	if cfg.Rollups[1].Line != 13 {
		t.Fatalf("appended rollup at line %d, want 13", cfg.Rollups[1].Line)
	}
	// The same name twice across the two lists is the usual error.
	errs := parseErrors(t, withRollup()+lines("rollups:", "  - name: r", "    table: public.orders", "    measures: [count(*)]"), nil)
	if len(errs) == 0 {
		t.Fatal("a rollup name given twice was accepted")
	}
}
