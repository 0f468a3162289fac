package remote

import (
	"math"
	"math/big"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// codecValues covers every tag, with the edge cases of each.
func codecValues() []any {
	huge, _ := new(big.Int).SetString("-170141183460469231731687303715884105728", 10)
	return []any{
		nil, true, false,
		int8(math.MinInt8), int8(math.MaxInt8), int16(math.MinInt16), int16(math.MaxInt16),
		int32(math.MinInt32), int32(math.MaxInt32), int64(math.MinInt64), int64(math.MaxInt64), int64(0),
		uint8(255), uint16(math.MaxUint16), uint32(math.MaxUint32), uint64(math.MaxUint64),
		float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), float32(1.5),
		math.NaN(), math.Inf(1), math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64,
		"", "with \x00 NUL and ünïcødé", []byte{}, []byte{0, 1, 255},
		time.Time{}.UTC(), time.Date(2024, 3, 31, 1, 59, 59, 123456000, time.UTC),
		time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC), time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1, 1, 1, 12, 0, 0, 0, time.FixedZone("", -(15*3600+59*60))),
		time.Date(2024, 10, 27, 2, 30, 0, 0, time.FixedZone("CEST", 7200)),
		duckdb.Decimal{Width: 38, Scale: 10, Value: huge},
		duckdb.Decimal{Width: 4, Scale: 1, Value: big.NewInt(0)},
		duckdb.Decimal{Width: 18, Scale: 4, Value: big.NewInt(-1)},
		huge, new(big.Int).Neg(huge), big.NewInt(0),
		duckdb.Interval{Months: math.MinInt32, Days: math.MaxInt32, Micros: math.MinInt64},
	}
}

// TestCodecRoundTrip: every value decodes to the same Go type and bits.
func TestCodecRoundTrip(t *testing.T) {
	vals := codecValues()
	var buf []byte
	for _, v := range vals {
		var err error
		if buf, err = appendValue(buf, v); err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
	}
	d := decoder{b: buf}
	for i, want := range vals {
		got, err := d.value()
		if err != nil {
			t.Fatalf("value %d (%#v): %v", i, want, err)
		}
		if !sameValue(got, want) {
			t.Errorf("value %d: got %#v (%T), want %#v (%T)", i, got, got, want, want)
		}
	}
	if len(d.b) != 0 {
		t.Errorf("%d bytes left over", len(d.b))
	}
	// Every cut of the stream is an error, never a panic or a wrong value
	// passed off as whole.
	for n := range len(buf) {
		d := decoder{b: buf[:n]}
		for i := 0; ; i++ {
			if _, err := d.value(); err != nil {
				break
			}
			if i > len(vals) {
				t.Fatalf("cut at %d decoded more values than were sent", n)
			}
		}
	}
	if _, err := appendValue(nil, duckdb.Map{}); err == nil {
		t.Error("a MAP was encoded")
	}
}

// FuzzDecodeValue: arbitrary bytes never panic the decoder.
func FuzzDecodeValue(f *testing.F) {
	for _, v := range codecValues() {
		b, _ := appendValue(nil, v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := decoder{b: b}
		for len(d.b) > 0 {
			if _, err := d.value(); err != nil {
				return
			}
		}
	})
}
