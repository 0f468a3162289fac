package proxy

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Type OIDs the proxy's own answers use.
const (
	oidBool        = 16
	oidInt8        = 20
	oidText        = 25
	oidTimestamptz = 1184
)

// encodeValue appends v in the wire format of type oid.
func encodeValue(dst []byte, oid uint32, format int16, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if oid == oidText || format == 0 {
			return append(dst, x...), nil
		}
	case int64:
		if format == 0 {
			return strconv.AppendInt(dst, x, 10), nil
		}
		if oid == oidInt8 {
			return binary.BigEndian.AppendUint64(dst, uint64(x)), nil
		}
	case bool:
		if oid == oidBool {
			b := byte(0)
			if x {
				b = 1
			}
			if format == 0 {
				return append(dst, "ft"[b]), nil
			}
			return append(dst, b), nil
		}
	}
	return nil, fmt.Errorf("cannot encode %T as type %d in format %d", v, oid, format)
}
