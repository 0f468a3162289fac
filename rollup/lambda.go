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
// below a cutoff: the build's start minus late_window, cut down to the second
// (to the day, in build_timezone, for a date column). The cutoff may fall
// inside a bucket, whose rows below it the rollup then holds: a partial
// bucket. An answer adds the warehouse's aggregate of the rows at or above
// the cutoff (package routing), grouped by the same keys, so the two parts
// of that bucket combine into the whole; the warehouse part reads at most
// late_window plus the time since the build, however coarse the buckets.

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
	q, ok := lambdaCutoffSQL(p.TimeType.OID, "now()", p.Def.Lambda.LateWindow)
	if !ok {
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

// lambdaCutoffSQL is the query of a lambda cutoff for a time column of
// type oid: start (the build's start, now() in its snapshot) minus late,
// cut down to the second, which the catalog and a literal hold exactly; a
// date column is cut down to its day in the session's TimeZone
// (build_timezone), since a date cannot be cut within one.
func lambdaCutoffSQL(oid uint32, start string, late time.Duration) (string, bool) {
	back := fmt.Sprintf("%s - CAST(%d AS bigint) * interval '1 microsecond'", start, late.Microseconds())
	switch oid {
	case pgtype.TimestamptzOID:
		return "SELECT date_trunc('second', " + back + ")", true
	case pgtype.TimestampOID:
		return "SELECT date_trunc('second', CAST(" + back + " AS timestamp))", true
	case pgtype.DateOID:
		return "SELECT CAST(CAST(" + back + " AS timestamp) AS date)", true
	}
	return "", false
}

// lambdaFloor lowers the start of an incremental build's range to the
// partition holding the previous version's cutoff, or the new one's when it
// is earlier: the partitions carried over must hold every row below the new
// version's cutoff and none at or above it, and those of the previous
// version stop at its own cutoff, which may lie inside a partition. (A
// timestamp column's cutoff is a wall clock in build_timezone, which goes
// back when daylight saving time ends.)
func (p *Plan) lambdaFloor(ctx context.Context, conn *pgx.Conn, unit config.Granularity, tt string, lo time.Time) (time.Time, error) {
	if p.previousCutoffID != nil {
		return p.idFloor(ctx, conn, unit, tt, lo)
	}
	if p.previousCutoff == nil {
		return lo, nil
	}
	from := *p.previousCutoff
	if p.LambdaCutoff != nil && p.LambdaCutoff.Before(from) {
		from = *p.LambdaCutoff
	}
	var floor time.Time
	q := fmt.Sprintf("SELECT date_trunc(%s, CAST($1 AS %s))", sqlquote.Literal(string(unit)), tt)
	if err := conn.QueryRow(ctx, q, timeText(from, tt)).Scan(&floor); err != nil {
		return lo, fmt.Errorf("lambda: previous cutoff: %w", err)
	}
	if floor.Before(lo) {
		return floor, nil
	}
	return lo, nil
}
