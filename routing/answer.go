package routing

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// rollupAnswer answers a statement from a rollup.
type rollupAnswer struct {
	decision rewrite.Decision
	exec     Executor
	hits     prometheus.Counter
}

func (a *rollupAnswer) Columns() []proxy.Column { return columns(a.decision.Columns) }

// ParamTypes is nil: statements with parameters are decided with their
// values, which a prepared statement does not have yet, so they pass through.
func (a *rollupAnswer) ParamTypes() []uint32 { return nil }

func (a *rollupAnswer) Run(ctx context.Context, _ *proxy.Session, _ []proxy.Param) (*proxy.Result, error) {
	if a.exec == nil {
		return nil, fmt.Errorf("no executor for rollup %s", a.decision.Rollup)
	}
	rows, err := a.exec.Query(ctx, &a.decision)
	if err != nil {
		return nil, fmt.Errorf("rollup %s: %w", a.decision.Rollup, err)
	}
	for _, row := range rows {
		if len(row) != len(a.decision.Columns) {
			return nil, fmt.Errorf("rollup %s: %d values for %d columns", a.decision.Rollup, len(row), len(a.decision.Columns))
		}
		for i, v := range row {
			if row[i], err = convert(v, a.decision.Columns[i].Type.OID); err != nil {
				return nil, fmt.Errorf("rollup %s: column %s: %w", a.decision.Rollup, a.decision.Columns[i].Name, err)
			}
		}
	}
	a.hits.Inc()
	return &proxy.Result{Rows: rows, Tag: "SELECT " + strconv.Itoa(len(rows))}, nil
}

// columns describes result columns as RowDescription does.
func columns(cols []rewrite.ResultColumn) []proxy.Column {
	out := make([]proxy.Column, len(cols))
	for i, c := range cols {
		out[i] = proxy.Column{
			Name:     c.Name,
			TableOID: c.TableOID,
			Attnum:   c.AttNum,
			TypeOID:  c.Type.OID,
			TypeSize: typeSize(c.Type.OID),
			Typmod:   c.Type.Typmod,
		}
	}
	return out
}

// typeSize is pg_type.typlen, which RowDescription carries.
func typeSize(oid uint32) int16 {
	switch oid {
	case rewrite.OIDBool:
		return 1
	case rewrite.OIDInt2:
		return 2
	case rewrite.OIDInt4, rewrite.OIDFloat4, rewrite.OIDDate:
		return 4
	case rewrite.OIDInt8, rewrite.OIDFloat8, rewrite.OIDTimestamp, rewrite.OIDTimestamptz, rewrite.OIDTime:
		return 8
	case rewrite.OIDInterval, rewrite.OIDUUID:
		return 16
	case rewrite.OIDName:
		return 64
	default:
		return -1
	}
}
