package proxy

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "50ms", want: 50 * time.Millisecond},
		{in: "1500ms", want: 1500 * time.Millisecond},
		{in: "5s", want: 5 * time.Second},
		{in: "1min", want: time.Minute},
		{in: "2h", want: 2 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "2147483647ms", want: 2147483647 * time.Millisecond},
		{in: "", bad: true},
		{in: "-1", bad: true},
		{in: "5 parsecs", bad: true},
		{in: "1.5s", bad: true},
		{in: "99999999999999999999d", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTimeout(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestParseSettings(t *testing.T) {
	tests := []struct {
		values []string
		want   sessionSettings
		bad    bool
	}{
		{values: []string{"1", "0"}, want: sessionSettings{floatDigits: "1"}},
		{values: []string{"3", "50ms"}, want: sessionSettings{floatDigits: "3", timeout: 50 * time.Millisecond}},
		{values: []string{"-15", "1min"}, want: sessionSettings{floatDigits: "-15", timeout: time.Minute}},
		{values: []string{"4", "0"}, bad: true},
		{values: []string{"1", "soon"}, bad: true},
		{values: []string{"1"}, bad: true},
		{values: nil, bad: true},
	}
	for _, tt := range tests {
		got, err := parseSettings(tt.values, nil)
		if (err != nil) != tt.bad || got.floatDigits != tt.want.floatDigits || got.timeout != tt.want.timeout {
			t.Errorf("parseSettings(%q) = %+v, %v; want %+v (error: %v)", tt.values, got, err, tt.want, tt.bad)
		}
	}
}

func TestDecodeDataRow(t *testing.T) {
	row, err := (&pgproto3.DataRow{Values: [][]byte{[]byte("3"), nil, []byte("")}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := row[5:]
	got, ok := decodeDataRow(body)
	if !ok || !reflect.DeepEqual(got, []string{"3", "", ""}) {
		t.Fatalf("got %q, %v", got, ok)
	}
	for _, bad := range [][]byte{nil, body[:1], body[:len(body)-1], append(append([]byte(nil), body...), 0)} {
		if got, ok := decodeDataRow(bad); ok {
			t.Errorf("decodeDataRow(%v) = %q, accepted", bad, got)
		}
	}
}

// TestSettingsNeutral: only statements that certainly leave the settings
// and the session's context alone keep what was read.
func TestSettingsNeutral(t *testing.T) {
	for _, tt := range []struct {
		sql     string
		neutral bool
	}{
		{"SELECT status, count(*) FROM orders GROUP BY status", true},
		{"SELECT count(*) FROM orders WHERE created_at > now()", true},
		{"SELECT * INTO TEMP TABLE orders FROM other.orders", false},
		{"SELECT * INTO orders FROM other.orders", false},
		{"EXPLAIN ANALYZE CREATE TABLE orders AS SELECT 1", false},
		{"SELECT set_config('search_path', 'other', false)", false},
		{"SET ROLE outsider", false},
		{"RESET search_path", false},
		{"DISCARD ALL", false},
		{"CREATE TEMP TABLE orders (a int)", false},
		{"SELECT 1; SET search_path = other", false},
		{"SELECT my_function()", false},
	} {
		if got := settingsNeutral(&Statement{SQL: tt.sql}); got != tt.neutral {
			t.Errorf("settingsNeutral(%q) = %v, want %v", tt.sql, got, tt.neutral)
		}
	}
}
