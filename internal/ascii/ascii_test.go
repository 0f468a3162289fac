package ascii

import (
	"strings"
	"testing"
)

func TestContainsFold(t *testing.T) {
	tests := []struct {
		s, substr string
		want      bool
	}{
		{"SELECT * FROM Orders", "orders", true},
		{"select * from ORDERS_2024", "orders", true},
		{"SET Extra_Float_Digits = 3", "extra_float_digits", true},
		{"select 1", "orders", false},
		{"ord", "orders", false},
		{"", "x", false},
		{"anything", "", true},
		{"ÖRDERS orders", "orders", true},
	}
	for _, tt := range tests {
		if got := ContainsFold(tt.s, tt.substr); got != tt.want {
			t.Errorf("ContainsFold(%q, %q) = %v", tt.s, tt.substr, got)
		}
		if want := strings.Contains(strings.ToLower(tt.s), tt.substr); tt.s != "ÖRDERS orders" && want != tt.want {
			t.Errorf("table case %q/%q disagrees with strings.ToLower", tt.s, tt.substr)
		}
	}
}

func BenchmarkContainsFold(b *testing.B) {
	s := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"
	for b.Loop() {
		ContainsFold(s, "orders")
	}
}
