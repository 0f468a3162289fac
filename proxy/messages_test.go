package proxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// A value the encoder refuses fails the row and leaves what was encoded
// before it untouched, in every format: never a panic that would take the
// whole process down.
func TestAppendRowEncodingError(t *testing.T) {
	enc := &encoder{settings: pgfmt.DefaultSettings()}
	tests := []struct {
		name    string
		cols    []Column
		formats []int16
		row     []any
		wantErr string
	}{
		{"wrong Go type, text", []Column{{Name: "n", TypeOID: pgtype.Int8OID}}, nil, []any{"x"}, "column n"},
		{"wrong Go type, binary", []Column{{Name: "n", TypeOID: pgtype.Int8OID}}, []int16{1}, []any{"x"}, "column n"},
		{"second column fails", []Column{{Name: "a", TypeOID: pgtype.TextOID}, {Name: "f", TypeOID: pgtype.Float8OID}}, nil, []any{"ok", "not a float"}, "column f"},
		{"invalid UTF-8", []Column{{Name: "s", TypeOID: pgtype.TextOID}}, nil, []any{"\xff"}, "column s"},
		{"unsupported type", []Column{{Name: "j", TypeOID: pgtype.JSONBOID}}, []int16{0}, []any{"{}"}, "column j"},
		{"unsupported type, binary", []Column{{Name: "j", TypeOID: pgtype.JSONBOID}}, []int16{1}, []any{"{}"}, "column j"},
		{"too few values", []Column{{Name: "a", TypeOID: pgtype.TextOID}}, nil, []any{}, "0 values for 1 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := appendCommandComplete(nil, "SELECT 1")
			for _, dst := range [][]byte{prefix, nil, make([]byte, 0, 4096)} {
				before := append([]byte(nil), dst...)
				out, err := appendRow(dst, enc, tt.cols, tt.formats, tt.row)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if !bytes.Equal(out, before) {
					t.Fatalf("dst changed to %q, want %q", out, before)
				}
			}
		})
	}
}

func TestAppendRow(t *testing.T) {
	enc := &encoder{settings: pgfmt.DefaultSettings()}
	cols := []Column{{Name: "n", TypeOID: pgtype.Int8OID}, {Name: "f", TypeOID: pgtype.Float8OID}, {Name: "s", TypeOID: pgtype.TextOID}}
	out, err := appendRow([]byte("x"), enc, cols, []int16{0, 1, 0}, []any{int64(7), 0.5, nil})
	if err != nil {
		t.Fatal(err)
	}
	want := "xD\x00\x00\x00\x1b\x00\x03\x00\x00\x00\x017\x00\x00\x00\x08\x3f\xe0\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
