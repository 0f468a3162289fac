package routing

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/rewrite"
)

// Binary parameters are printed as Postgres prints the same value, checked
// by having Postgres print the value pgx sent it in binary.
func TestBinaryParamsAsText(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		oid   uint32
		name  string
		value any
	}{
		{pgtype.Int4OID, "int4", int32(-7)},
		{pgtype.Int8OID, "int8", int64(1) << 40},
		{pgtype.Int2OID, "int2", int16(12)},
		{pgtype.BoolOID, "bool", true},
		{pgtype.TextOID, "text", "paid"},
		{pgtype.DateOID, "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{pgtype.TimestampOID, "timestamp", time.Date(2024, 3, 31, 2, 30, 0, 123456000, time.UTC)},
		{pgtype.TimestamptzOID, "timestamptz", time.Date(2024, 3, 31, 2, 30, 0, 0, berlin)},
	}
	for _, tt := range tests {
		raw, err := conn.TypeMap().Encode(tt.oid, pgx.BinaryFormatCode, tt.value, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Postgres's output function applied to the same binary value.
		res := conn.PgConn().ExecParams(ctx, "SELECT $1::"+tt.name, [][]byte{raw}, []uint32{tt.oid}, []int16{1}, []int16{0}).Read()
		if res.Err != nil {
			t.Fatalf("%v: %v", tt.value, res.Err)
		}
		want := string(res.Rows[0][0])
		got, err := binaryToText(tt.oid, raw)
		if err != nil {
			t.Fatalf("%v: %v", tt.value, err)
		}
		if got != want {
			t.Errorf("type %d %v: got %q, Postgres %q", tt.oid, tt.value, got, want)
		}
	}
	if _, err := binaryToText(pgtype.NumericOID, []byte{0, 0}); err == nil {
		t.Error("an unsupported binary type was accepted")
	}
}

func TestConvertPadsBpchar(t *testing.T) {
	got, err := convert("ab", rewrite.Type{OID: pgtype.BPCharOID, Typmod: 4 + 4})
	if err != nil || got != "ab  " {
		t.Fatalf("char(4) 'ab' = %q, %v", got, err)
	}
	if _, err := convert(int64(1), rewrite.Type{OID: pgtype.TextOID, Typmod: -1}); err == nil {
		t.Fatal("an integer was accepted as text")
	}
}
