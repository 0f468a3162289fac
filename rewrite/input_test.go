package rewrite

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestCertainInput(t *testing.T) {
	tests := []struct {
		oid  uint32
		text string
		want bool
	}{
		{pgtype.Int8OID, "10", true},
		{pgtype.Int8OID, " -10 ", true},
		{pgtype.Int8OID, "ten", false},
		{pgtype.Int4OID, "3000000000", false},
		{pgtype.Int2OID, "1_000", false},
		{pgtype.NumericOID, "-1.50e3", true},
		{pgtype.NumericOID, "1,5", false},
		{pgtype.BoolOID, "TRUE", true},
		{pgtype.BoolOID, "maybe", false},
		{pgtype.TimestamptzOID, "2024-01-03 01:00:00+00", true},
		{pgtype.TimestampOID, "2024-01-03T01:00:00.123456Z", true},
		{pgtype.DateOID, "2024-02-30", false},
		{pgtype.DateOID, "yesterday", false},
		{pgtype.TextOID, "anything", true},
		{pgtype.ByteaOID, "\\x00", false},
	}
	for _, tt := range tests {
		if got := CertainInput(tt.oid, tt.text); got != tt.want {
			t.Errorf("CertainInput(%d, %q) = %v, want %v", tt.oid, tt.text, got, tt.want)
		}
	}
}
