package proxy

import (
	"slices"
	"testing"
)

func TestDecodeParameterDescription(t *testing.T) {
	tests := []struct {
		body []byte
		want []uint32
		ok   bool
	}{
		{[]byte{0, 0}, []uint32{}, true},
		{[]byte{0, 2, 0, 0, 0, 25, 0, 0, 4, 0xb8}, []uint32{25, 1208}, true},
		{[]byte{0, 1, 0, 0, 0}, nil, false},
		{[]byte{0, 1, 0, 0, 0, 25, 0}, nil, false},
		{[]byte{0}, nil, false},
	}
	for _, tt := range tests {
		got, ok := decodeParameterDescription(tt.body)
		if ok != tt.ok || ok && !slices.Equal(got, tt.want) {
			t.Errorf("%v: %v %v, want %v %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
	// What the proxy writes, it reads.
	oids := []uint32{0, 23, 1184}
	msg := appendParameterDescription(nil, oids)
	if got, ok := decodeParameterDescription(msg[5:]); !ok || !slices.Equal(got, oids) {
		t.Errorf("round trip: %v %v", got, ok)
	}
}
