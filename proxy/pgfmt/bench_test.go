package pgfmt

import (
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// benchRow is a typical rollup answer row: a day bucket, a dimension, a
// numeric sum and a count.
func benchRow(b *testing.B) ([]uint32, []any) {
	return []uint32{pgtype.DateOID, pgtype.TextOID, pgtype.NumericOID, pgtype.Int8OID},
		[]any{time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC), "shipped", mustDec(b, "1234567.89"), int64(4242)}
}

func BenchmarkAppendTextRow(b *testing.B) {
	oids, vals := benchRow(b)
	st := DefaultSettings()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, v := range vals {
			var err error
			if buf, err = AppendText(buf, oids[i], v, &st); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendBinaryRow(b *testing.B) {
	oids, vals := benchRow(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, v := range vals {
			var err error
			if buf, err = AppendBinary(buf, oids[i], v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendTextTimestamptzBerlin(b *testing.B) {
	st := DefaultSettings()
	st.TimeZone = mustLoc(b, "Europe/Berlin")
	st.DateStyle = DateStylePostgres
	v := any(time.Date(2024, 10, 27, 0, 30, 0, 123000, time.UTC))
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendText(buf[:0], pgtype.TimestamptzOID, v, &st)
	}
}

func BenchmarkAppendTextFloat8(b *testing.B) {
	st := DefaultSettings()
	v := any(math.Pi * 1e10)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendText(buf[:0], pgtype.Float8OID, v, &st)
	}
}

func BenchmarkNumericAvg(b *testing.B) {
	sum := mustDec(b, "1234567.89")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := numericAvg(sum, 4242); err != nil {
			b.Fatal(err)
		}
	}
}
