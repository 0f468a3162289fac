package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func startupPacket(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

func TestMessageReader(t *testing.T) {
	big := appendMessage(nil, 'd', bytes.Repeat([]byte{'x'}, 3*bufferSize))
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []byte // types of the messages read before the error
		wantErr error
	}{
		{"two messages", append(appendMessage(nil, 'Q', []byte("select 1\x00")), appendMessage(nil, 'X', nil)...), 0, []byte("QX"), io.EOF},
		{"message larger than the buffer", big, 0, []byte("d"), io.EOF},
		{"over the limit", big, 1024, nil, &lengthError{}},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, 0, nil, &lengthError{}},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}, 0, nil, &lengthError{}},
		{"truncated header", []byte{'Q', 0, 0}, 0, nil, io.ErrUnexpectedEOF},
		{"truncated body", []byte{'Q', 0, 0, 0, 10, 's'}, 0, nil, io.ErrUnexpectedEOF},
		{"empty", nil, 0, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMessageReader(newConnReader(bytes.NewReader(tt.in), newBufferPool()), tt.max)
			var got []byte
			var err error
			for {
				var m message
				m, err = r.next()
				if err != nil {
					break
				}
				if int(binary.BigEndian.Uint32(m.raw[1:5])) != len(m.body())+4 || m.raw[0] != m.typ {
					t.Fatalf("message %q: inconsistent framing", m.typ)
				}
				got = append(got, m.typ)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %q, want %q", got, tt.want)
			}
			var le *lengthError
			if _, wantLength := tt.wantErr.(*lengthError); wantLength {
				if !errors.As(err, &le) {
					t.Errorf("err = %v, want a length error", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTakeRun reads a message, then takes the DataRows buffered after it:
// whole ones only, up to the first message of another type, a partial one
// or a bad length; the reader goes on after them.
func TestTakeRun(t *testing.T) {
	row := func(v string) []byte { return appendMessage(nil, 'D', []byte(v)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	head := appendMessage(nil, 'T', []byte("desc"))
	done := appendMessage(nil, 'C', []byte("SELECT 3\x00"))
	tests := []struct {
		name string
		in   []byte
		run  []byte // taken after the first message
		next byte   // type of the message read after the run, 0 for none
	}{
		{"rows then complete", cat(head, row("a"), row("bb"), row("ccc"), done), cat(row("a"), row("bb"), row("ccc")), 'C'},
		{"no row", cat(head, done), nil, 'C'},
		{"a partial row", cat(head, row("a"), row("bb")[:4]), row("a"), 0},
		{"a bad length", cat(head, row("a"), []byte{'D', 0, 0, 0, 2}), row("a"), 0},
		{"nothing after", head, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One read brings everything, as the event loop reads.
			r := newMessageReader(newConnReader(bytes.NewReader(tt.in), newBufferPool()), 0)
			if _, err := r.r.peek(len(tt.in)); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if m, err := r.next(); err != nil || m.typ != 'T' {
				t.Fatalf("first message: %q, %v", m.typ, err)
			}
			if got := r.takeRun('D'); !bytes.Equal(got, tt.run) {
				t.Fatalf("takeRun = %q, want %q", got, tt.run)
			}
			checkAfterRun(t, r, tt.next)
		})
	}
}

// TestRun reads a message, then the whole messages of the run types
// buffered after it, and checks that their bytes lie together from the
// first one's mark: what upstreamMessage writes in one go.
func TestRun(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	head := appendMessage(nil, 'T', []byte("desc"))
	row := appendMessage(nil, 'D', []byte("row"))
	done := appendMessage(nil, 'C', []byte("SELECT 1\x00"))
	ready := appendMessage(nil, 'Z', []byte("I"))
	notice := appendMessage(nil, 'N', []byte("Snotice\x00\x00"))
	tests := []struct {
		name string
		in   []byte
		run  []byte // the first message and those nextWhole takes after it
		next byte   // type of the message next reads after the run, 0 for none
	}{
		{"a whole answer", cat(head, row, done, ready), cat(head, row, done, ready), 0},
		{"up to a type not in runs", cat(head, row, notice, done), cat(head, row), 'N'},
		{"up to a partial message", cat(head, row, done[:3]), cat(head, row), 0},
		{"up to a bad length", cat(head, []byte{'D', 0, 0, 0, 1}), head, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMessageReader(newConnReader(bytes.NewReader(tt.in), newBufferPool()), 0)
			if _, err := r.r.peek(len(tt.in)); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			first, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			mark, ok := r.runMark(first)
			if !ok {
				t.Fatal("a message read in place has no mark")
			}
			if _, ok := r.runMark(message{typ: first.typ, raw: bytes.Clone(first.raw)}); ok {
				t.Fatal("a message made elsewhere has a mark")
			}
			for {
				if _, ok := r.nextWhole(&runTypes); !ok {
					break
				}
			}
			if got := r.runBytes(mark, r.runEnd()); !bytes.Equal(got, tt.run) {
				t.Fatalf("run = %q, want %q", got, tt.run)
			}
			checkAfterRun(t, r, tt.next)
		})
	}
	// runAfter joins a message to those taken just before it, and to
	// nothing else.
	bind, exec, sync := appendMessage(nil, 'B', []byte("b")), appendMessage(nil, 'E', []byte("e")), appendMessage(nil, 'S', nil)
	stream := cat(bind, exec, sync)
	rr := newMessageReader(newConnReader(bytes.NewReader(stream), newBufferPool()), 0)
	if _, err := rr.r.peek(len(stream)); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	var run []byte
	for i, want := range [][]byte{bind, cat(bind, exec), cat(bind, exec, sync)} {
		m, err := rr.next()
		if err != nil {
			t.Fatal(err)
		}
		got, joined, ok := rr.runAfter(run, m)
		if !ok || joined != (i > 0) || !bytes.Equal(got, want) {
			t.Fatalf("message %d: run %q, joined %v, ok %v; want %q", i, got, joined, ok, want)
		}
		if _, joined, _ := rr.runAfter(bytes.Clone(run), m); joined {
			t.Fatalf("message %d joined to a copy of the run", i)
		}
		run = got
	}
	// A message bigger than the buffer is held apart: no run starts there.
	big := appendMessage(nil, 'D', bytes.Repeat([]byte("x"), bufferSize))
	r := newMessageReader(newConnReader(bytes.NewReader(cat(big, ready)), newBufferPool()), 0)
	m, err := r.next()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.runMark(m); ok {
		t.Fatal("a held message has a mark")
	}
	if _, ok := r.nextWhole(&runTypes); ok {
		t.Fatal("nextWhole went on after a held message")
	}
}

// checkAfterRun checks the message r reads after a run: of type next, or
// an error when next is 0.
func checkAfterRun(t *testing.T, r *messageReader, next byte) {
	t.Helper()
	m, err := r.next()
	switch {
	case next == 0 && err == nil:
		t.Fatalf("after the run: %q, want an error", m.typ)
	case next != 0 && (err != nil || m.typ != next):
		t.Fatalf("after the run: %q, %v; want %q", m.typ, err, next)
	}
}

func TestReadStartupPacket(t *testing.T) {
	params := []byte("user\x00alice\x00database\x00shop\x00\x00")
	tests := []struct {
		name     string
		in       []byte
		wantCode uint32
		wantErr  string // substring; empty: no error
	}{
		{"startup 3.0", startupPacket(protocolVersion30, params), protocolVersion30, ""},
		{"ssl request", startupPacket(sslRequestCode, nil), sslRequestCode, ""},
		{"protocol 2", startupPacket(2<<16, params), 2 << 16, ""},
		{"length too small", []byte{0, 0, 0, 4, 0, 3, 0, 0}, 0, "invalid length of startup packet"},
		{"length too large", []byte{0, 1, 0, 0, 0, 3, 0, 0}, 0, "invalid length of startup packet"},
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n"), 0, "invalid length of startup packet"},
		{"truncated", startupPacket(protocolVersion30, params)[:12], 0, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, err := readStartupPacket(bytes.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || code != tt.wantCode {
				t.Fatalf("code %d, err %v; want %d", code, err, tt.wantCode)
			}
		})
	}
}

func TestParseStartupParameters(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		ok   bool
	}{
		{"two", "user\x00alice\x00database\x00shop\x00\x00", map[string]string{"user": "alice", "database": "shop"}, true},
		{"options with spaces", "user\x00a\x00options\x00-c search_path=x\x00\x00", map[string]string{"user": "a", "options": "-c search_path=x"}, true},
		{"none", "\x00", map[string]string{}, true},
		{"no terminator", "user\x00alice\x00", nil, false},
		{"name without value", "user\x00", nil, false},
		{"bytes after terminator", "user\x00a\x00\x00junk", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartupParameters([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestParseParseAndBind(t *testing.T) {
	name, query, ok := parseParse([]byte("S_1\x00select $1\x00\x00\x01\x00\x00\x00\x17"))
	if !ok || name != "S_1" || query != "select $1" {
		t.Fatalf("Parse: %q %q %v", name, query, ok)
	}
	if _, _, ok := parseParse([]byte("S_1\x00select")); ok {
		t.Fatal("unterminated query accepted")
	}
	portal, stmt, ok := parseBind([]byte("C_1\x00S_1\x00\x00\x00"))
	if !ok || portal != "C_1" || string(stmt) != "S_1" {
		t.Fatalf("Bind: %q %q %v", portal, stmt, ok)
	}
}

// FuzzMessageReader feeds arbitrary client bytes through the framing and the
// decoders the proxy applies to them: nothing may panic, and every message
// must be framed consistently.
func FuzzMessageReader(f *testing.F) {
	f.Add(appendMessage(nil, 'Q', []byte("select 1\x00")))
	f.Add(appendMessage(nil, 'P', []byte("S_1\x00select $1\x00\x00\x00")))
	f.Add(appendMessage(nil, 'B', []byte("\x00S_1\x00\x00\x00\x00\x00\x00\x00")))
	f.Add(appendMessage(nil, 'C', []byte("Sname\x00")))
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newMessageReader(newConnReader(iotest.OneByteReader(bytes.NewReader(in)), newBufferPool()), 1<<16)
		for {
			m, err := r.next()
			if err != nil {
				return
			}
			if len(m.raw) != len(m.body())+5 || int(binary.BigEndian.Uint32(m.raw[1:5])) != len(m.body())+4 {
				t.Fatalf("inconsistent framing for %q", m.typ)
			}
			switch m.typ {
			case 'P':
				parseParse(m.body())
			case 'B':
				parseBind(m.body())
			case 'p':
				offers(m.body(), scramMechanism)
			}
		}
	})
}

// FuzzStartupPacket covers the untyped first packet and its parameters.
func FuzzStartupPacket(f *testing.F) {
	f.Add(startupPacket(protocolVersion30, []byte("user\x00alice\x00\x00")))
	f.Add(startupPacket(sslRequestCode, nil))
	f.Add(startupPacket(cancelRequestCode, []byte{0, 0, 0, 1, 0, 0, 0, 2}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		code, body, err := readStartupPacket(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(body)+8 > maxStartupPacketLen {
			t.Fatalf("accepted a %d-byte startup packet", len(body)+8)
		}
		if code>>16 == 3 {
			params, err := parseStartupParameters(body)
			if err == nil && params == nil {
				t.Fatal("nil parameters without an error")
			}
		}
	})
}
