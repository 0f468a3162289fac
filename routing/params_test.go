package routing

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
		{rewrite.OIDInt4, "int4", int32(-7)},
		{rewrite.OIDInt8, "int8", int64(1) << 40},
		{rewrite.OIDInt2, "int2", int16(12)},
		{rewrite.OIDBool, "bool", true},
		{rewrite.OIDText, "text", "paid"},
		{rewrite.OIDDate, "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{rewrite.OIDTimestamp, "timestamp", time.Date(2024, 3, 31, 2, 30, 0, 123456000, time.UTC)},
		{rewrite.OIDTimestamptz, "timestamptz", time.Date(2024, 3, 31, 2, 30, 0, 0, berlin)},
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
	if _, err := binaryToText(rewrite.OIDNumeric, []byte{0, 0}); err == nil {
		t.Error("an unsupported binary type was accepted")
	}
}

func TestConvertPadsBpchar(t *testing.T) {
	got, err := convert("ab", rewrite.Type{OID: rewrite.OIDBpchar, Typmod: 4 + 4})
	if err != nil || got != "ab  " {
		t.Fatalf("char(4) 'ab' = %q, %v", got, err)
	}
	if _, err := convert(int64(1), rewrite.Type{OID: rewrite.OIDText, Typmod: -1}); err == nil {
		t.Fatal("an integer was accepted as text")
	}
}
