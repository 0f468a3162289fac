package routing

import (
	"time"

	"github.com/pgrollup/pgrollup/rewrite"
)

// Far bounds of the time ranges a lambda rollup on an id column covers
// beyond its partitions: earlier and later than any time Postgres holds,
// yet not unbounded, so a statement without a time bound is still checked
// against the rows without a time, which no partition holds.
var (
	farPast   = time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// idLambdaPartitions is the coverage of a lambda rollup on an id column:
// its partitions, and, without build_range, the times before and after
// them. Every row below the id cutoff that the build's snapshot held lies
// in a partition (a full build's partitions span them; an incremental one
// rebuilds from the earliest new row), and the warehouse part reads the
// rows from the cutoff on whatever their time. Rows with a NULL time below
// the cutoff are in no partition: a version that had some does not cover
// all time (AllTime), and the far bounds keep unbounded statements out.
func idLambdaPartitions(rs *rewrite.RollupState) []rewrite.Partition {
	parts := append([]rewrite.Partition(nil), rs.Partitions...)
	if rs.AllTime || rs.Def.BuildRange != nil || len(parts) == 0 {
		return parts
	}
	first, last := parts[0], parts[len(parts)-1]
	for _, p := range parts {
		if p.Start.Before(first.Start) {
			first = p
		}
		if p.End.After(last.End) {
			last = p
		}
	}
	if first.Start.IsZero() || last.End.IsZero() {
		return parts
	}
	return append(parts, rewrite.Partition{Start: farPast, End: first.Start}, rewrite.Partition{Start: last.End, End: farFuture})
}
