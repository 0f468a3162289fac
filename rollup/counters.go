package rollup

import (
	"context"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
)

// countersQuery sums the modification counters of the statistics collector
// (inserts, updates and deletes) of one table and, for a partitioned table,
// of its partitions (pg_partition_tree lists nothing for a plain table,
// which is not in a partition tree). NULL when the name resolves to nothing with counters (a
// view, a foreign table, a dropped table).
const countersQuery = `SELECT sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::bigint
FROM pg_catalog.pg_stat_user_tables s
WHERE s.relid = to_regclass($1)
   OR s.relid IN (SELECT relid FROM pg_catalog.pg_partition_tree(to_regclass($1)))`

// Rower is the part of a connection that reads one row (*pgx.Conn, a pool,
// a transaction).
type Rower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Counters reads the modification counters of every table in tables, by
// name as given. ok is false when one of them has none, so that nothing can
// be concluded from them.
//
// The counters only ever grow while the statistics are not reset, and count
// every row a statement changed (TRUNCATE aside), so equal counters at two
// moments mean no row of the table changed in between, up to the collector's
// delay in publishing them (about a second, at most ten).
func Counters(ctx context.Context, db Rower, tables []string) (counters map[string]int64, ok bool, err error) {
	counters = make(map[string]int64, len(tables))
	for _, t := range tables {
		var n *int64
		if err := db.QueryRow(ctx, countersQuery, t).Scan(&n); err != nil {
			return nil, false, fmt.Errorf("modification counters of %s: %w", t, err)
		}
		if n == nil {
			return nil, false, nil
		}
		counters[t] = *n
	}
	return counters, true, nil
}

// SourceTables lists the tables a build of def reads: its table and the
// tables of the joins it uses.
func (d *Definition) SourceTables() []string {
	out := []string{d.Table}
	for _, j := range d.Joins {
		out = append(out, j.Table)
	}
	return out
}

// SameCounters reports whether two readings of Counters are of the same
// tables with the same values.
func SameCounters(a, b map[string]int64) bool { return len(a) > 0 && maps.Equal(a, b) }
