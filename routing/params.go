package routing

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
	"github.com/pgrollup/pgrollup/rewrite"
)

// rewriteParams gives the rewrite engine the bound values in text form.
// Binary values of the types a filter can use are decoded and printed as
// Postgres prints them; any other binary value is an error, and the
// statement goes to the warehouse.
func rewriteParams(params []proxy.Param) ([]rewrite.Param, error) {
	out := make([]rewrite.Param, len(params))
	for i, p := range params {
		out[i] = rewrite.Param{Type: p.TypeOID, Null: p.Value == nil}
		if p.Value == nil {
			continue
		}
		if p.Format == 0 {
			out[i].Value = string(p.Value)
			continue
		}
		text, err := binaryToText(p.TypeOID, p.Value)
		if err != nil {
			return nil, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		out[i].Value = text
	}
	return out, nil
}

// typeMap decodes binary parameters; pgtype.Map is safe for concurrent
// decoding once built, so one serves every session.
var typeMap = pgtype.NewMap()

func binaryToText(oid uint32, b []byte) (string, error) {
	var v any
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		var n int64
		if err := typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &n); err != nil {
			return "", err
		}
		v = n
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		v = string(b)
	case pgtype.BoolOID:
		var x bool
		if err := typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &x); err != nil {
			return "", err
		}
		v = x
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		var t pgtype.Timestamptz
		var err error
		switch oid {
		case pgtype.DateOID:
			var d pgtype.Date
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &d)
			t = pgtype.Timestamptz(d)
		case pgtype.TimestampOID:
			var ts pgtype.Timestamp
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &ts)
			t = pgtype.Timestamptz(ts)
		default:
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &t)
		}
		if err != nil {
			return "", err
		}
		if t.InfinityModifier != pgtype.Finite {
			return "", fmt.Errorf("infinite time values are not decided on")
		}
		v = t.Time
		if oid == pgtype.DateOID || oid == pgtype.TimestampOID {
			v = wallClock(t.Time)
		}
	default:
		return "", fmt.Errorf("binary values of type %d are not decided on", oid)
	}
	// ISO output in UTC carries an explicit offset for timestamptz, so the
	// text means the same instant whatever the session's zone.
	settings := pgfmt.DefaultSettings()
	out, err := pgfmt.AppendText(nil, oid, v, &settings)
	return string(out), err
}

// wallClock keeps a date's or timestamp's clock reading, in UTC, as pgfmt
// expects for types without a zone.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
