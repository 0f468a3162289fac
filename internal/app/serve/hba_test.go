package serve

import (
	"testing"
)

func TestHBARuleMayMatch(t *testing.T) {
	for _, tt := range []struct {
		address, netmask, proxy string
		want                    bool
	}{
		{"127.0.0.1", "255.255.255.255", "127.0.0.1", true},
		{"127.0.0.1", "255.255.255.255", "127.0.0.2", false},
		{"10.0.0.0", "255.0.0.0", "10.1.2.3", true},
		{"10.0.0.0", "255.0.0.0", "192.168.1.1", false},
		{"::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1", true},
		{"::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "127.0.0.1", false},
		{"all", "", "10.0.0.1", true},
		{"samenet", "", "10.0.0.1", true},
		{"db.example.com", "", "10.0.0.1", true},
		{"10.0.0.0", "255.0.0.0", "", true}, // the warehouse would not say: warn
	} {
		r := hbaRule{address: tt.address, netmask: tt.netmask, proxy: tt.proxy}
		if got := r.mayMatch(); got != tt.want {
			t.Errorf("%s/%s from %q: %v, want %v", tt.address, tt.netmask, tt.proxy, got, tt.want)
		}
	}
}
