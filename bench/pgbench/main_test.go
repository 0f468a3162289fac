package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRotate(t *testing.T) {
	targets := []string{"direct", "pgbouncer", "pgrollup"}
	for round, want := range [][]string{
		{"direct", "pgbouncer", "pgrollup"},
		{"pgbouncer", "pgrollup", "direct"},
		{"pgrollup", "direct", "pgbouncer"},
		{"direct", "pgbouncer", "pgrollup"},
	} {
		if got := rotate(targets, round); !slices.Equal(got, want) {
			t.Errorf("rotate(round %d) = %v, want %v", round, got, want)
		}
	}
	if !slices.Equal(targets, []string{"direct", "pgbouncer", "pgrollup"}) {
		t.Fatalf("rotate changed its argument: %v", targets)
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList("simple, prepared", "simple", "extended", "prepared")
	if err != nil || !slices.Equal(got, []string{"simple", "prepared"}) {
		t.Fatalf("parseList = %v, %v", got, err)
	}
	if _, err := parseList("simple,fast", "simple", "prepared"); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("parseList of an unknown value: %v", err)
	}
}

func TestEstimate(t *testing.T) {
	// make bench's default: 3 rounds × 3 client counts × 2 protocols × 3 targets of 5 s.
	if got := estimate(54, 5*time.Second); got != "6" {
		t.Fatalf("estimate = %s min, want 6", got)
	}
}

func TestRowsScript(t *testing.T) {
	want := "\\set aid random(1, 999001)\nSELECT aid, bid, abalance, filler FROM pgbench_accounts WHERE aid >= :aid AND aid < :aid + 1000;\n"
	if got := rowsScript(10, 1000); got != want {
		t.Errorf("rowsScript(10, 1000) = %q, want %q", got, want)
	}
}
