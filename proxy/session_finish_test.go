package proxy

import (
	"bytes"
	"testing"
)

// TestSetOrigins: the origins of a finished statement are written into
// its RowDescription, and a description of another shape is left alone.
func TestSetOrigins(t *testing.T) {
	cols := []Column{
		{Name: "region", TypeOID: 25, TypeSize: -1, Typmod: -1},
		{Name: "sum", TypeOID: 1700, TypeSize: -1, Typmod: -1},
	}
	origins := []ColumnOrigin{{TableOID: 16406, Attnum: 2}, {}}
	raw := appendRowDescription(nil, cols, nil)
	if !setOrigins(raw[5:], origins) {
		t.Fatal("setOrigins refused a matching description")
	}
	want := appendRowDescription(nil, []Column{
		{Name: "region", TableOID: 16406, Attnum: 2, TypeOID: 25, TypeSize: -1, Typmod: -1},
		{Name: "sum", TypeOID: 1700, TypeSize: -1, Typmod: -1},
	}, nil)
	if !bytes.Equal(raw, want) {
		t.Errorf("got %x\nwant %x", raw, want)
	}
	for _, other := range [][]Column{cols[:1], append(cols, cols[0])} {
		raw := appendRowDescription(nil, other, nil)
		before := bytes.Clone(raw)
		if setOrigins(raw[5:], origins) || !bytes.Equal(raw, before) {
			t.Errorf("a description of %d columns was changed", len(other))
		}
	}
	if setOrigins([]byte{0, 2, 'x'}, origins) {
		t.Error("a truncated description was accepted")
	}
}

// TestFinishMessages: the Query and Parse pgrollup relays in place of the
// client's are well formed.
func TestFinishMessages(t *testing.T) {
	q := queryMessage("SELECT 1")
	if string(q.raw) != "Q\x00\x00\x00\x0dSELECT 1\x00" || !bytes.Equal(q.body, q.raw[5:]) {
		t.Errorf("query %q", q.raw)
	}
	p := parseMessage("SELECT 1")
	name, query, ok := parseParse(p.body)
	oids, ok2 := parseParamOIDs(p.body, name, query)
	if !ok || !ok2 || name != "" || query != "SELECT 1" || len(oids) != 0 || p.typ != 'P' {
		t.Errorf("parse %q: %q %q %v %v", p.raw, name, query, oids, ok && ok2)
	}
}
