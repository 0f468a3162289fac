package benchkit

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"CREATE TABLE t (a int)\nAS SELECT 1", "CREATE TABLE t (a int) ..."},
		{"\n  SELECT 1\n", "SELECT 1"},
		{"\nINSERT INTO t\nSELECT 1\n", "INSERT INTO t ..."},
		{"", ""},
	} {
		if got := FirstLine(tc.in); got != tc.want {
			t.Errorf("FirstLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIndent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a", "    a"},
		{"a\nb\n", "    a\n    b"},
		{"a\n\nb", "    a\n    \n    b"},
		{"", "    "},
	} {
		if got := Indent(tc.in); got != tc.want {
			t.Errorf("Indent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMS(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 1.5},
		{2 * time.Second, 2000},
	} {
		if got := MS(tc.d); got != tc.want {
			t.Errorf("MS(%s) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		want time.Duration
	}{
		{"none", nil, 0},
		{"one", []time.Duration{7}, 7},
		{"odd", []time.Duration{3, 1, 2}, 2},
		{"even: mean of the middle two", []time.Duration{4, 1, 3, 2}, 2},
		{"even, odd sum", []time.Duration{10, 40, 20, 35}, 27},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.ds...)
			if got := Median(tc.ds); got != tc.want {
				t.Fatalf("Median = %v, want %v", got, tc.want)
			}
			for i := range in {
				if in[i] != tc.ds[i] {
					t.Fatalf("Median sorted its argument: %v", tc.ds)
				}
			}
		})
	}
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{2.5}, 2.5},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := Median(tc.xs); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestMedianKnown(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"NaNs left out", []float64{nan, 5, nan, 1, 3}, 3},
		{"one", []float64{7}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MedianKnown(tc.xs); got != tc.want {
				t.Fatalf("MedianKnown = %v, want %v", got, tc.want)
			}
		})
	}
	for _, xs := range [][]float64{nil, {nan}, {nan, nan}} {
		if got := MedianKnown(xs); !math.IsNaN(got) {
			t.Errorf("MedianKnown(%v) = %v, want NaN", xs, got)
		}
	}
}

func TestPassMiss(t *testing.T) {
	if PassMiss(true) != "PASS" || PassMiss(false) != "MISS" {
		t.Fatalf("PassMiss = %q, %q", PassMiss(true), PassMiss(false))
	}
}

func TestSecondsArg(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1"},
		{5 * time.Second, "5"},
		{5*time.Second + time.Millisecond, "6"},
		{1500 * time.Millisecond, "2"},
		{time.Minute, "60"},
	} {
		if got := SecondsArg(tc.d); got != tc.want {
			t.Errorf("SecondsArg(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestParseInts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,16,64", []int{1, 16, 64}, false},
		{" 8 , 32", []int{8, 32}, false},
		{"4", []int{4}, false},
		{"", nil, true},
		{"1,,2", nil, true},
		{"0", nil, true},
		{"-3", nil, true},
		{"x", nil, true},
	} {
		got, err := ParseInts(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseInts(%q): error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseInts(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseInts(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestKeepFirst(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	for _, tc := range []struct {
		name      string
		err, stop error
		want      error
	}{
		{"both fine", nil, nil, nil},
		{"the stop's error is kept", nil, second, second},
		{"the function's own error wins", first, second, first},
		{"the function's own error stays", first, nil, first},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, called := tc.err, false
			KeepFirst(&err, func() error { called = true; return tc.stop })
			if !called || err != tc.want {
				t.Fatalf("KeepFirst: called %v, err %v, want %v", called, err, tc.want)
			}
		})
	}
}
