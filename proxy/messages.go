package proxy

import (
	"encoding/binary"
	"fmt"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// parseParse returns the statement name and query text of a Parse body.
func parseParse(body []byte) (name, query string, ok bool) {
	name, rest, ok := cutCString(body)
	if !ok {
		return "", "", false
	}
	query, _, ok = cutCString(rest)
	return name, query, ok
}

// parseBind returns the portal and statement names of a Bind body. The
// statement's name is only looked up, so it is not copied out of the
// message: each Bind of a prepared statement would allocate it again.
func parseBind(body []byte) (portal string, stmt []byte, ok bool) {
	portal, rest, ok := cutCString(body)
	if !ok {
		return "", nil, false
	}
	stmt, _, ok = cutCStringBytes(rest)
	return portal, stmt, ok
}

// parseParamOIDs returns the parameter types a Parse body declares.
func parseParamOIDs(body []byte, name, query string) ([]uint32, bool) {
	rest := body[len(name)+1+len(query)+1:]
	if len(rest) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 4*n {
		return nil, false
	}
	oids := make([]uint32, n)
	for i := range oids {
		oids[i] = binary.BigEndian.Uint32(rest[4*i:])
	}
	return oids, true
}

// decodeBind returns the parameters and result format codes of a Bind body
// whose statement declared the parameter types oids.
func decodeBind(body []byte, oids []uint32) ([]Param, []int16, error) {
	bad := newError(severityFatal, sqlstate.ProtocolViolation, "invalid Bind message")
	_, rest, _ := cutCString(body)  // portal
	_, rest, ok := cutCString(rest) // statement
	if !ok {
		return nil, nil, bad
	}
	formats, rest, ok := readInt16s(rest)
	if !ok {
		return nil, nil, bad
	}
	if len(rest) < 2 {
		return nil, nil, bad
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n != len(oids) && len(oids) > 0 || (len(formats) > 1 && len(formats) != n) {
		return nil, nil, newError(severityError, sqlstate.ProtocolViolation,
			fmt.Sprintf("bind message supplies %d parameters, but prepared statement requires %d", n, len(oids)))
	}
	params := make([]Param, n)
	for i := range params {
		if len(rest) < 4 {
			return nil, nil, bad
		}
		size := int(int32(binary.BigEndian.Uint32(rest)))
		rest = rest[4:]
		if i < len(oids) {
			params[i].TypeOID = oids[i]
		}
		switch len(formats) {
		case 0:
		case 1:
			params[i].Format = formats[0]
		default:
			params[i].Format = formats[i]
		}
		if size < 0 {
			continue
		}
		if len(rest) < size {
			return nil, nil, bad
		}
		params[i].Value = rest[:size:size]
		rest = rest[size:]
	}
	resultFormats, rest, ok := readInt16s(rest)
	if !ok || len(rest) != 0 {
		return nil, nil, bad
	}
	// The params alias the message buffer, which the next read reuses.
	for i := range params {
		if params[i].Value != nil {
			params[i].Value = clone(params[i].Value)
		}
	}
	return params, resultFormats, nil
}

func readInt16s(b []byte) ([]int16, []byte, bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < 2*n {
		return nil, nil, false
	}
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(binary.BigEndian.Uint16(b[2*i:]))
	}
	return out, b[2*n:], true
}

// formatFor picks a column's format from Bind's result format codes: none
// means text, one applies to every column.
func formatFor(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	default:
		if i < len(formats) {
			return formats[i]
		}
		return 0
	}
}

func appendRowDescription(dst []byte, cols []Column, formats []int16) []byte {
	start := len(dst)
	dst = append(dst, 'T', 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cols)))
	for i, c := range cols {
		dst = appendCString(dst, c.Name)
		dst = binary.BigEndian.AppendUint32(dst, c.TableOID)
		dst = binary.BigEndian.AppendUint16(dst, uint16(c.Attnum))
		dst = binary.BigEndian.AppendUint32(dst, c.TypeOID)
		dst = binary.BigEndian.AppendUint16(dst, uint16(c.TypeSize))
		dst = binary.BigEndian.AppendUint32(dst, uint32(c.Typmod))
		dst = binary.BigEndian.AppendUint16(dst, uint16(formatFor(formats, i)))
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendResultDescription is Describe's answer about rows: RowDescription,
// or NoData for a statement without a result.
func appendResultDescription(dst []byte, cols []Column, formats []int16) []byte {
	if cols == nil {
		return append(dst, 'n', 0, 0, 0, 4)
	}
	return appendRowDescription(dst, cols, formats)
}

func appendParameterDescription(dst []byte, oids []uint32) []byte {
	body := binary.BigEndian.AppendUint16(nil, uint16(len(oids)))
	for _, oid := range oids {
		body = binary.BigEndian.AppendUint32(body, oid)
	}
	return appendMessage(dst, 't', body)
}

// decodeParameterDescription returns the parameter types a
// ParameterDescription body gives.
func decodeParameterDescription(body []byte) ([]uint32, bool) {
	if len(body) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) != 2+4*n {
		return nil, false
	}
	oids := make([]uint32, n)
	for i := range oids {
		oids[i] = binary.BigEndian.Uint32(body[2+4*i:])
	}
	return oids, true
}

func appendCommandComplete(dst []byte, tag string) []byte {
	return appendMessage(dst, 'C', appendCString(nil, tag))
}

// appendRow appends a DataRow, each value in its column's format.
func appendRow(dst []byte, enc *encoder, cols []Column, formats []int16, row []any) ([]byte, error) {
	if len(row) != len(cols) {
		return dst, fmt.Errorf("answer row has %d values for %d columns", len(row), len(cols))
	}
	start := len(dst)
	dst = append(dst, 'D', 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(row)))
	for i, v := range row {
		if v == nil {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			continue
		}
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		// The row so far stays in dst whatever the encoder returns with
		// its error, so that the half row can be cut off.
		out, err := enc.appendValue(dst, cols[i].TypeOID, formatFor(formats, i), v)
		if err != nil {
			return dst[:start], fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
		dst = out
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}
