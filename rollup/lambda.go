package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// A lambda rollup's build holds exactly the rows whose time dimension lies
// below a cutoff: the build's start minus late_window, cut down to the edge
// of a bucket in build_timezone. Every bucket it stores is then whole, and an
// answer adds the warehouse's aggregate of the rows at or above the cutoff
// (package routing), which is as fresh as the warehouse.

// Lambda is a lambda rollup's definition: its column (the time dimension, or
// an increasing id column) and how far behind the newest rows may still arrive.
type Lambda struct {
	Column     string        `json:"column"`
	LateWindow time.Duration `json:"late_window"`
	// IDs: Column is an increasing integer column, not the time dimension
	// (lambda_ids.go); LateIDs is then the margin of ids below the largest.
	IDs     bool  `json:"ids,omitempty"`
	LateIDs int64 `json:"late_ids,omitempty"`
}

// foldLambda computes the cutoff in the build's snapshot, where now() is the
// build's start and the session's TimeZone is build_timezone, and restricts
// the build to the rows below it.
func (p *Plan) foldLambda(ctx context.Context, conn *pgx.Conn, ids *idCutoff) error {
	if p.Def.Lambda == nil {
		return nil
	}
	if p.Def.Lambda.IDs {
		return p.foldIDCutoff(ids)
	}
	if p.TimeType == nil {
		return permanent(fmt.Errorf("lambda: needs a time dimension"))
	}
	g := sqlquote.Literal(string(p.Def.Granularity))
	back := fmt.Sprintf("now() - CAST(%d AS bigint) * interval '1 microsecond'", p.Def.Lambda.LateWindow.Microseconds())
	var q string
	switch p.TimeType.OID {
	case pgtype.TimestamptzOID:
		q = "SELECT date_trunc(" + g + ", " + back + ")"
	case pgtype.TimestampOID:
		q = "SELECT date_trunc(" + g + ", CAST(" + back + " AS timestamp))"
	case pgtype.DateOID:
		q = "SELECT CAST(date_trunc(" + g + ", CAST(" + back + " AS timestamp)) AS date)"
	default:
		return permanent(fmt.Errorf("lambda: the time dimension has type %s", p.TimeType.Name))
	}
	var cutoff time.Time
	if err := conn.QueryRow(ctx, q).Scan(&cutoff); err != nil {
		return fmt.Errorf("lambda cutoff: %w", err)
	}
	cutoff = cutoff.UTC()
	p.LambdaCutoff = &cutoff
	p.where = append(p.where, "("+p.timeCol+" < "+p.timeLiteral(cutoff)+")")
	return nil
}

// lambdaFloor lowers the start of an incremental build's range to the
// partition holding the previous version's cutoff: the partitions carried
// over must hold every row below the new version's cutoff, and those of the
// previous version stop at its own.
func (p *Plan) lambdaFloor(ctx context.Context, conn *pgx.Conn, unit config.Granularity, tt string, lo time.Time) (time.Time, error) {
	if p.previousCutoffID != nil {
		return p.idFloor(ctx, conn, unit, tt, lo)
	}
	if p.previousCutoff == nil {
		return lo, nil
	}
	var floor time.Time
	q := fmt.Sprintf("SELECT date_trunc(%s, CAST($1 AS %s))", sqlquote.Literal(string(unit)), tt)
	if err := conn.QueryRow(ctx, q, timeText(*p.previousCutoff, tt)).Scan(&floor); err != nil {
		return lo, fmt.Errorf("lambda: previous cutoff: %w", err)
	}
	if floor.Before(lo) {
		return floor, nil
	}
	return lo, nil
}
