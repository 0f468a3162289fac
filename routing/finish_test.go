package routing

import (
	"testing"

	"github.com/pgrollup/pgrollup/proxy"
)

// TestFinishSession: the warehouse finishes statements only where it reads
// the text pgrollup writes as pgrollup means it.
func TestFinishSession(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   bool
	}{
		{map[string]string{"client_encoding": "UTF8", "standard_conforming_strings": "on"}, true},
		{map[string]string{"client_encoding": "LATIN1", "standard_conforming_strings": "on"}, false},
		{map[string]string{"client_encoding": "UTF8", "standard_conforming_strings": "off"}, false},
		{map[string]string{}, false},
	} {
		if got := finishSession(&proxy.SessionInfo{Parameters: tc.params}); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.params, got, tc.want)
		}
	}
}
