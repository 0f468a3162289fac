package proxy

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// Startup packet codes (the int32 after the length) as Postgres defines them.
const (
	protocolVersion30 = 3 << 16
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102

	// maxStartupPacketLen is Postgres's own MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacketLen = 10000
)

// message is one framed protocol message. raw holds the whole message
// including the type byte and length, so it can be relayed unchanged;
// body() is the part after the length.
//
// A message too big to hold (messageReader.stream) comes with only the part
// of its body read so far, and rest says how much more there is: whoever
// relays it sends raw and then the rest with messageReader.relayRest, and
// whatever is neither relayed nor read is skipped by the next read.
type message struct {
	typ  byte
	raw  []byte
	rest int
}

// body is the message after its type and length. A message is five words,
// so that it and an error are passed in registers.
func (m message) body() []byte { return m.raw[5:] }

// streamPolicy says, per message type, the body length above which a
// message is not held whole but relayed as it is read (0: always held
// whole, up to the reader's limit). Sessions share one per direction.
type streamPolicy [256]int

// messageReader frames protocol messages from a connection. The returned
// message aliases buffers that the next call reuses.
type messageReader struct {
	r      *connReader
	maxLen int // 0: no limit
	pool   *bufferPool
	// stream, when set, is the policy for messages too big to hold.
	stream *streamPolicy
	// pending is the unread rest of the last message; held the buffer
	// holding it, returned to the pool by the next call.
	pending int
	held    *[]byte
}

func newMessageReader(r *connReader, maxLen int) *messageReader {
	return &messageReader{r: r, maxLen: maxLen, pool: r.pool}
}

// lengthError is a protocol violation: a stream cannot be resynchronised
// after a bad length, so the connection ends.
type lengthError struct {
	typ    byte
	length int
	max    int
}

func (e *lengthError) Error() string {
	if e.length < 4 {
		return fmt.Sprintf("invalid message length %d for message type %q", e.length, e.typ)
	}
	return fmt.Sprintf("message type %q of %d bytes exceeds the limit of %d bytes", e.typ, e.length, e.max)
}

// next reads one message. io.EOF means the peer closed between messages;
// io.ErrUnexpectedEOF means it closed inside one.
func (m *messageReader) next() (message, error) {
	if err := m.skipRest(); err != nil {
		return message{}, err
	}
	if m.held != nil {
		m.pool.putMessage(m.held)
		m.held = nil
	}
	hdr, err := m.r.peek(5)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			return message{}, io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	typ := hdr[0]
	length := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if length < 4 || (m.maxLen > 0 && length > m.maxLen) {
		return message{}, &lengthError{typ: typ, length: length, max: m.maxLen}
	}
	total := 1 + length
	// A message that fits in the reader's buffer is returned in place,
	// sparing a copy on the hot path; it stays valid until the next call.
	if total <= m.r.Size() {
		raw, err := m.r.peek(total)
		if err != nil {
			return message{}, unexpected(err)
		}
		m.r.discard(total)
		return message{typ: typ, raw: raw}, nil
	}
	if m.stream != nil && m.stream[typ] > 0 && length-4 > m.stream[typ] {
		// Too big to hold: what fits in the buffer now, the rest as
		// it is relayed.
		raw, err := m.r.peek(m.r.Size())
		if err != nil {
			return message{}, unexpected(err)
		}
		m.r.discard(len(raw))
		m.pending = total - len(raw)
		return message{typ: typ, raw: raw, rest: m.pending}, nil
	}
	buf := m.pool.message(total)
	m.held = buf
	if _, err := io.ReadFull(m.r, *buf); err != nil {
		return message{}, unexpected(err)
	}
	return message{typ: typ, raw: *buf}, nil
}

// takeRun consumes the whole messages of type typ buffered right after the
// one next returned last, and returns their raw bytes as one slice, valid
// until the next read; nil when the next buffered message is not one. A
// run of DataRows is relayed with one copy, not one per row.
func (m *messageReader) takeRun(typ byte) []byte {
	if m.pending > 0 {
		return nil
	}
	b := m.r.buffered()
	n := 0
	for len(b)-n >= 5 && b[n] == typ {
		length := int(int32(binary.BigEndian.Uint32(b[n+1:])))
		if length < 4 || (m.maxLen > 0 && length > m.maxLen) || len(b)-n < 1+length {
			break
		}
		n += 1 + length
	}
	if n == 0 {
		return nil
	}
	m.r.discard(n)
	return b[:n]
}

// A run is messages consumed in place one after the other (by next,
// nextWhole and takeRun, with no read in between), so that their raw bytes
// lie together in the reader's buffer: relayed with one write. The buffer
// is reused by the next read, so a run's bytes are written before it.

// runMark returns where msg, which next just returned, begins in the
// reader's buffer, and false when it is not there: held in a buffer of its
// own, only its first part, or a message the caller made.
func (m *messageReader) runMark(msg message) (int, bool) {
	if m.held != nil || m.pending > 0 || msg.rest > 0 || len(msg.raw) == 0 {
		return 0, false
	}
	mark := m.r.r - len(msg.raw)
	if mark < 0 || &m.r.buf[mark] != &msg.raw[0] {
		return 0, false // not the message next returned last
	}
	return mark, true
}

// runAfter returns msg, which next just returned, as it lies in the
// reader's buffer, joined to prev when prev (messages taken before it from
// the same buffer) lies just before it; joined reports that. ok is false
// when msg is not in the buffer (runMark).
func (m *messageReader) runAfter(prev []byte, msg message) (run []byte, joined, ok bool) {
	mark, ok := m.runMark(msg)
	if !ok {
		return nil, false, false
	}
	if n := len(prev); n > 0 && n <= mark && &m.r.buf[mark-n] == &prev[0] {
		return m.r.buf[mark-n : m.r.r], true, true
	}
	return m.r.buf[mark:m.r.r], false, true
}

// nextWholeBuffered reports whether the next message is whole in the
// buffer, so that next returns it without reading.
func (m *messageReader) nextWholeBuffered() bool {
	b := m.r.buffered()
	if m.pending > 0 || len(b) < 5 {
		return false
	}
	length := int(int32(binary.BigEndian.Uint32(b[1:5])))
	return length >= 4 && len(b) >= 1+length
}

// runEnd is where the messages consumed so far end in the buffer.
func (m *messageReader) runEnd() int { return m.r.r }

// runBytes returns the bytes of the messages consumed in place from mark
// to end, which runMark and runEnd gave since the last read.
func (m *messageReader) runBytes(mark, end int) []byte { return m.r.buf[mark:end] }

// takeWhole consumes and returns the next message, which the caller found
// whole in the buffer, total bytes long: what next would return, without
// looking at it again.
func (m *messageReader) takeWhole(total int) message {
	if m.held != nil {
		m.pool.putMessage(m.held)
		m.held = nil
	}
	raw := m.r.buf[m.r.r : m.r.r+total]
	m.r.discard(total)
	return message{typ: raw[0], raw: raw}
}

// nextWhole consumes and returns the next message when it is whole in the
// buffer and of one of the types marked; otherwise it consumes nothing and
// returns false. It never reads.
func (m *messageReader) nextWhole(types *[256]bool) (message, bool) {
	if m.pending > 0 || m.held != nil {
		return message{}, false
	}
	b := m.r.buffered()
	if len(b) < 5 || !types[b[0]] {
		return message{}, false
	}
	length := int(int32(binary.BigEndian.Uint32(b[1:5])))
	if length < 4 || (m.maxLen > 0 && length > m.maxLen) || len(b) < 1+length {
		return message{}, false
	}
	return m.takeWhole(1 + length), true
}

// relayRest copies the unread rest of the last message to w. The message's
// raw part must have been written before: the reader's buffer is reused.
func (m *messageReader) relayRest(w io.Writer) error {
	n := m.pending
	m.pending = 0
	return m.r.copyTo(w, n)
}

// skipRest reads past the unread rest of the last message.
func (m *messageReader) skipRest() error {
	n := m.pending
	m.pending = 0
	return m.r.copyTo(nil, n)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readStartupPacket reads the untyped first packet of a connection: its code
// and the bytes after it.
func readStartupPacket(r io.Reader) (code uint32, body []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	length := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if (length < 8 || length > maxStartupPacketLen) && isProxyHeaderStart(hdr[:4]) {
		return 0, nil, errUntrustedProxyHeader
	}
	if length < 8 || length > maxStartupPacketLen {
		return 0, nil, newError(severityFatal, sqlstate.ProtocolViolation, "invalid length of startup packet")
	}
	if _, err := io.ReadFull(r, hdr[4:8]); err != nil {
		return 0, nil, unexpected(err)
	}
	code = binary.BigEndian.Uint32(hdr[4:8])
	body = make([]byte, length-8)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, unexpected(err)
	}
	return code, body, nil
}

// parseStartupParameters decodes the name/value pairs of a 3.0 StartupMessage.
func parseStartupParameters(body []byte) (map[string]string, error) {
	params := make(map[string]string)
	for {
		name, rest, ok := cutCString(body)
		if !ok {
			return nil, newError(severityFatal, sqlstate.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if name == "" {
			if len(rest) != 0 {
				return nil, newError(severityFatal, sqlstate.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
			}
			return params, nil
		}
		value, rest2, ok := cutCString(rest)
		if !ok {
			return nil, newError(severityFatal, sqlstate.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		params[name] = value
		body = rest2
	}
}

// startupMessage encodes a StartupMessage with params.
func startupMessage(params map[string]string) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, protocolVersion30)
	for name, value := range params {
		body = appendCString(body, name)
		body = appendCString(body, value)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// parameterStatus decodes a ParameterStatus body.
func parameterStatus(body []byte) (name, value string, ok bool) {
	name, rest, ok := cutCString(body)
	if !ok {
		return "", "", false
	}
	value, _, ok = cutCString(rest)
	return name, value, ok
}

// cutCString splits a NUL-terminated string off the front of b.
func cutCString(b []byte) (s string, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// cutCStringBytes is cutCString without the copy.
func cutCStringBytes(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// appendMessage appends a typed message with its length to dst.
func appendMessage(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+4))
	return append(dst, body...)
}

// appendCString appends s and its terminating NUL.
func appendCString(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, 0)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// maxLocalBind is the largest Bind the proxy decodes to answer a statement
// itself; a portal with more in its values is the warehouse's.
const maxLocalBind = 1 << 20

// clientStreamPolicy says which client messages are relayed as they are
// read: those the proxy cannot need whole. A Query whose text is beyond
// the parse limits is never parsed, and a Parse with more than that plus
// room for its name and parameter types neither; a Bind too big to decode
// goes to the warehouse; COPY data and function calls are only relayed.
func clientStreamPolicy(limits parselimit.Limits) *streamPolicy {
	var p streamPolicy
	p['Q'] = limits.MaxBytes + 1
	p['P'] = limits.MaxBytes + 512<<10
	p['B'] = maxLocalBind
	p['d'] = bufferSize
	p['F'] = bufferSize
	return &p
}

// upstreamStreamPolicy says which warehouse messages are relayed as they
// are read: rows, COPY data, function results and notices, none of which
// the proxy reads beyond its own small queries' rows.
func upstreamStreamPolicy() *streamPolicy {
	var p streamPolicy
	for _, typ := range []byte{'D', 'd', 'V', 'N'} {
		p[typ] = bufferSize
	}
	return &p
}
