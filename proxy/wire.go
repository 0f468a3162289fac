package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
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
// body is the part after the length.
type message struct {
	typ  byte
	raw  []byte
	body []byte
}

// messageReader frames protocol messages from a buffered stream. The returned
// message aliases buffers that the next call reuses.
type messageReader struct {
	r      *bufio.Reader
	maxLen int // 0: no limit
	buf    []byte
}

func newMessageReader(r *bufio.Reader, maxLen int) *messageReader {
	return &messageReader{r: r, maxLen: maxLen}
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
	hdr, err := m.r.Peek(5)
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
	// A message that fits in bufio's buffer is returned in place, sparing a
	// copy on the hot path; it stays valid until the next call.
	if total <= m.r.Size() {
		raw, err := m.r.Peek(total)
		if err != nil {
			return message{}, unexpected(err)
		}
		if _, err := m.r.Discard(total); err != nil {
			return message{}, unexpected(err)
		}
		return message{typ: typ, raw: raw, body: raw[5:]}, nil
	}
	buf := m.buf
	if cap(buf) < total {
		buf = make([]byte, total)
		// Keep moderate buffers for reuse, but let one huge COPY row or
		// result row go rather than pin its memory for the whole session.
		if total <= 1<<20 {
			m.buf = buf
		}
	}
	buf = buf[:total]
	if _, err := io.ReadFull(m.r, buf); err != nil {
		return message{}, unexpected(err)
	}
	return message{typ: typ, raw: buf, body: buf[5:]}, nil
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
	if length < 8 || length > maxStartupPacketLen {
		return 0, nil, newError(severityFatal, codeProtocolViolation, "invalid length of startup packet")
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
			return nil, newError(severityFatal, codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if name == "" {
			if len(rest) != 0 {
				return nil, newError(severityFatal, codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
			}
			return params, nil
		}
		value, rest2, ok := cutCString(rest)
		if !ok {
			return nil, newError(severityFatal, codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		params[name] = value
		body = rest2
	}
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
