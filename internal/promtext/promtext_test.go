package promtext

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	body := []byte(`# HELP pgrollup_queries_total Statements by route.
# TYPE pgrollup_queries_total counter
pgrollup_queries_total{route="rollup"} 12
pgrollup_queries_total{route="passthrough",reason="a b"} 3
pgrollup_client_connections 2.5e+00

not_a_sample
bad_value NaNish
`)
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`pgrollup_queries_total{route="rollup"}`:                   12,
		`pgrollup_queries_total{route="passthrough",reason="a b"}`: 3,
		`pgrollup_client_connections`:                              2.5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
}
