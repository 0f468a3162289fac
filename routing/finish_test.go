package routing

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

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

// TestFinishShape: statements with parameters are not finished.
func TestFinishShape(t *testing.T) {
	for sql, want := range map[string]bool{
		`SELECT s.* FROM (SELECT status, count(*) FROM orders GROUP BY 1) s`:                   true,
		`SELECT s.* FROM (SELECT status, count(*) FROM orders WHERE status = $1 GROUP BY 1) s`: false,
		`SELECT s.*, $1::int FROM (SELECT status, count(*) FROM orders GROUP BY 1) s`:          false,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := finishShape(tree); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
	}
}
