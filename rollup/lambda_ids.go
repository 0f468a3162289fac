package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// A lambda rollup on an increasing id column (docs/freshness.md, "An id
// column") holds the rows whose id lies below a cutoff: the largest id
// committed before the build, plus one, minus late_ids.
//
// Ids are taken from a sequence when a row is inserted, but committed in
// any order: a transaction that took id 100 may commit after another
// committed 101. A cutoff of 102 read in a snapshot that misses 100 would
// lose that row for good: below the cutoff for the warehouse part, and not
// in the build. So the build reads the largest id first, then waits for
// every transaction that holds a write lock on the table at that moment to
// end, and only then takes its snapshot. A transaction inserting with the
// sequence's default locks the table before it takes its id, so every row
// with an id up to the largest one read is either committed in the
// snapshot or never will be. What a lock cannot show, ids handed out
// before the insert (a sequence's CACHE, nextval called first), late_ids
// covers.

// lambdaWriterWait bounds how long a build waits for the transactions
// writing to a lambda rollup's table when it reads the id cutoff.
const lambdaWriterWait = time.Minute

// idCutoff is a lambda rollup's id cutoff, read before the build's snapshot.
type idCutoff struct {
	col    string // the id column, qualified by the table
	cutoff int64
}

// lambdaIDCutoff reads the cutoff of a lambda rollup on an id column, and
// waits for the transactions that hold a write lock on its table to end;
// nil for other rollups. conn must not be in a transaction.
func lambdaIDCutoff(ctx context.Context, conn *pgx.Conn, def *Definition, log *slog.Logger) (*idCutoff, error) {
	if def.Lambda == nil || !def.Lambda.IDs {
		return nil, nil
	}
	table, err := quoteRelation(def.Table)
	if err != nil {
		return nil, permanent(err)
	}
	q, err := newQualifier(def.Table)
	if err != nil {
		return nil, permanent(err)
	}
	col, err := q.expr(def.Lambda.Column)
	if err != nil {
		return nil, permanent(fmt.Errorf("lambda.column: %w", err))
	}
	types, err := describe(ctx, conn.PgConn(), "SELECT "+col+" FROM "+table+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("lambda.column: %w", err)
	}
	switch types[0].OID {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
	default:
		return nil, permanent(fmt.Errorf("lambda.column %s has type %s: an id column must be smallint, integer or bigint", def.Lambda.Column, types[0].Name))
	}
	var newest *int64
	if err := conn.QueryRow(ctx, "SELECT CAST(max("+col+") AS bigint) FROM "+table).Scan(&newest); err != nil {
		return nil, fmt.Errorf("lambda: largest id: %w", err)
	}
	// The writers are read after the largest id: whoever took an id below
	// it with the table locked still holds the lock, or has ended.
	writers, err := tableWriters(ctx, conn, table)
	if err != nil {
		return nil, err
	}
	if len(writers) > 0 {
		log.Debug("lambda: waiting for the transactions writing to the table", "table", def.Table, "transactions", len(writers))
		if err := awaitWriters(ctx, conn, table, writers); err != nil {
			return nil, err
		}
	}
	return &idCutoff{col: col, cutoff: cutoffAbove(newest, def.Lambda.LateIDs)}, nil
}

// cutoffAbove is the cutoff after the largest id newest (nil: none, and
// every row is the warehouse's), less late ids, without overflow.
func cutoffAbove(newest *int64, late int64) int64 {
	if newest == nil {
		return math.MinInt64
	}
	n := *newest
	if n < math.MaxInt64 {
		n++
	}
	if late > 0 {
		if n < math.MinInt64+late {
			return math.MinInt64
		}
		n -= late
	}
	return n
}

// writersSQL lists the transactions other than this one that hold a lock
// writing rows to the table $1 or its partitions, by virtual transaction
// id (a prepared transaction's too), with their process ids.
const writersSQL = `SELECT l.virtualtransaction, COALESCE(l.pid, 0) FROM pg_catalog.pg_locks l
WHERE l.locktype = 'relation' AND l.granted AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
  AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  AND l.relation IN (SELECT relid FROM pg_catalog.pg_partition_tree(CAST($1 AS regclass)) UNION SELECT CAST($1 AS regclass))`

// writer is a transaction writing to a table.
type writer struct {
	vxid string
	pid  int32
}

func tableWriters(ctx context.Context, conn *pgx.Conn, table string) ([]writer, error) {
	rows, err := conn.Query(ctx, writersSQL, table)
	if err != nil {
		return nil, fmt.Errorf("lambda: transactions writing to %s: %w", table, err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (writer, error) {
		var w writer
		return w, r.Scan(&w.vxid, &w.pid)
	})
	if err != nil {
		return nil, fmt.Errorf("lambda: transactions writing to %s: %w", table, err)
	}
	return ws, nil
}

// awaitWriters waits until none of writers still writes to the table, at
// most lambdaWriterWait.
func awaitWriters(ctx context.Context, conn *pgx.Conn, table string, writers []writer) error {
	deadline := time.Now().Add(lambdaWriterWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		now, err := tableWriters(ctx, conn, table)
		if err != nil {
			return err
		}
		var open []writer
		for _, w := range writers {
			if slices.ContainsFunc(now, func(n writer) bool { return n.vxid == w.vxid }) {
				open = append(open, w)
			}
		}
		if len(open) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids := make([]string, len(open))
			for i, w := range open {
				pids[i] = strconv.Itoa(int(w.pid))
			}
			return fmt.Errorf("lambda: %d transaction(s) writing to %s (pid %v) stayed open more than %s: ids they commit could lie below the cutoff",
				len(open), table, pids, lambdaWriterWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// foldIDCutoff restricts the build to the rows below the id cutoff.
func (p *Plan) foldIDCutoff(ids *idCutoff) error {
	if ids == nil {
		return permanent(fmt.Errorf("lambda: no id cutoff was read"))
	}
	c := ids.cutoff
	p.LambdaCutoffID = &c
	p.lambdaCol = ids.col
	p.where = append(p.where, "("+ids.col+" < "+idLiteral(c)+")")
	return nil
}

// idLiteral is an id cutoff as a bigint literal.
func idLiteral(c int64) string {
	return "CAST(" + sqlquote.Literal(strconv.FormatInt(c, 10)) + " AS bigint)"
}

// idFloor lowers the start of an incremental build's range to the
// partition holding the earliest time among the rows with ids from the
// previous version's cutoff on: they were not in the previous version, and
// may lie in any of its partitions.
func (p *Plan) idFloor(ctx context.Context, conn *pgx.Conn, unit config.Granularity, tt string, lo time.Time) (time.Time, error) {
	var floor *time.Time
	q := fmt.Sprintf("SELECT date_trunc(%s, CAST(min(%s) AS %s)) FROM %s%s AND %s >= %s",
		sqlquote.Literal(string(unit)), p.timeCol, tt, p.from, p.whereClause(), p.lambdaCol, idLiteral(*p.previousCutoffID))
	if err := conn.QueryRow(ctx, q).Scan(&floor); err != nil {
		return lo, fmt.Errorf("lambda: earliest new row: %w", err)
	}
	if floor != nil && floor.Before(lo) {
		return *floor, nil
	}
	return lo, nil
}
