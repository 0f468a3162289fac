package routing

import (
	"context"
	"fmt"
	"slices"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Exact edges (rewrite/edges.go): a statement whose time range cuts through
// buckets takes the whole buckets from a rollup and the edges from the
// warehouse, in the client's session, which also finishes the statement.
// The whole buckets come from an ordinary rollup fresh enough for the
// session, else from a lambda rollup, whose rows below its version's cutoff
// they are: the warehouse then reads the whole buckets' rows at or above
// the cutoff as well, so the answer is as fresh as the warehouse.

// modeEdges is the hit mode of an answer split at bucket edges.
const modeEdges = "edges"

// edgeAnswer answers the whole buckets of a statement's partial core from a
// rollup and gives the statement for the warehouse, which adds the edges.
type edgeAnswer struct {
	router   *Router
	core     *rewrite.LambdaCore
	split    *rewrite.EdgeSplit
	decision rewrite.Decision // the split's, as decided when the statement arrived
	maxRows  int
	note     string // why the split pays without an index, for EXPLAIN
	// lambda: the whole buckets are a lambda rollup's below its cutoff,
	// which EXPLAIN names (cutoff).
	lambda bool
	cutoff string
}

// edgeFinishable finds a split of the statement at bucket edges whose whole
// buckets a rollup answers, when reading the edges pays; nil otherwise, with
// why a split that would answer does not pay. Ordinary rollups are tried
// first, then lambda rollups; while the session's context (and with it its
// pgrollup.max_staleness) is not known, lambda rollups first, as
// lambdaWhileUnknown prefers them: an ordinary rollup's split would be
// decided again as it runs, and under a bound it does not meet the
// statement would go to the warehouse whole.
func (r *Router) edgeFinishable(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) (*edgeAnswer, string) {
	if r.opts.FinishMaxRows <= 0 || !finishSession(sess) || (len(snap.cat.Rollups) == 0 && snap.lambda == nil) {
		return nil, ""
	}
	rs := r.session(ctx, snap, sess, false)
	order := []bool{false, true}
	if r.contextUnknown(sess) {
		order = []bool{true, false}
	}
	cores := r.partialCores(sql, tree)
	refused := ""
	for _, lambda := range order {
		for _, c := range cores {
			s, d, note := r.decideEdges(c, rs, snap, lambda)
			if s != nil {
				a := &edgeAnswer{router: r, core: c, split: s, decision: d, maxRows: r.opts.FinishMaxRows, note: note, lambda: lambda}
				if lambda {
					a.cutoff = snap.cutoffOf(d.Rollup)
				}
				return a, ""
			}
			if refused == "" {
				refused = note
			}
		}
	}
	return nil, refused
}

// partialCores are the statement's cores rewritten into partial aggregates,
// kept by text.
func (r *Router) partialCores(sql string, tree *pg_query.ParseResult) []*rewrite.LambdaCore {
	if sql != "" {
		if cs, ok := r.lambda.cores.Get(sql); ok {
			return cs
		}
	}
	cores := rewrite.LambdaCores(r.cores(sql, tree))
	if sql != "" && len(sql) <= finishCacheText {
		r.lambda.cores.Add(sql, cores)
	}
	return cores
}

// decideEdges returns the first split of c, finest grain first, whose whole
// buckets a rollup answers and whose edges pay to read, with its decision
// and edgesPay's note; without a split, the note of one that does not pay.
// lambda: the whole buckets from a lambda rollup, whatever the session's
// staleness bound (its answer is as fresh as the warehouse).
func (r *Router) decideEdges(c *rewrite.LambdaCore, rs rewrite.Session, snap *snapshot, lambda bool) (*rewrite.EdgeSplit, rewrite.Decision, string) {
	if rs.Now.IsZero() {
		rs.Now = time.Now()
	}
	engine, cat, splits := r.engine, snap.cat, c.EdgeSplits
	if lambda {
		if snap.lambda == nil {
			return nil, rewrite.Decision{}, ""
		}
		rs.Staleness = rewrite.StalenessSetting{}
		engine, cat, splits = r.lambda.engine, snap.lambda, c.LambdaEdgeSplits
	}
	refused := ""
	for _, s := range splits(cat, rs) {
		d := engine.Decide(s.SQL, s.Tree, rs, cat)
		if d.Outcome != rewrite.OutcomeRollup {
			continue
		}
		pays, note := edgesPay(snap, d.Rollup, s)
		if !pays {
			if refused == "" {
				refused = note
			}
			continue
		}
		if _, err := edgeStatement(snap, s, &d, nil); err == nil {
			return s, d, note
		}
	}
	return nil, rewrite.Decision{}, refused
}

// edgeStatement writes the statement for the warehouse with the rollup's
// rows of decision d: for a lambda split, with the cutoff of the version
// of d's rollup.
func edgeStatement(snap *snapshot, s *rewrite.EdgeSplit, d *rewrite.Decision, rows [][]*string) (string, error) {
	if s.LambdaColumn == "" {
		return s.Statement(d.Columns, rows)
	}
	cut, err := snap.cutOf(d.Rollup)
	if err != nil {
		return "", err
	}
	return s.LambdaStatement(d.Columns, rows, cut.column, cut.literal)
}

// RollupName names the rollup the whole buckets were decided on, for the statement log.
func (a *edgeAnswer) RollupName() string { return a.decision.Rollup }

// Finish implements proxy.Finisher: it splits and decides again for the
// session as it is now (its clock moves the bounds of a relative range),
// runs the whole buckets on the rollup, and writes the statement.
func (a *edgeAnswer) Finish(ctx context.Context, sess *proxy.SessionInfo) (string, []proxy.ColumnOrigin, error) {
	if !finishSession(sess) {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonContext, Message: "the session's client_encoding or standard_conforming_strings changed"}}
	}
	snap := a.router.catalog.Load()
	s, d, _ := a.router.decideEdges(a.core, a.router.session(ctx, snap, sess, true), snap, a.lambda)
	if s == nil {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonUnalignedRange, Message: "no rollup answers the whole buckets of the range now"}}
	}
	text, err := a.router.coreRows(ctx, &d, a.decision.Columns, a.maxRows)
	if err != nil {
		return "", nil, err
	}
	sql, err := edgeStatement(snap, s, &d, text)
	if err != nil {
		return "", nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	if a.lambda {
		// A lambda rollup's answers all count, and are verified, as lambda
		// hits: below the cutoff, within the whole buckets.
		a.router.hits.WithLabelValues(d.Rollup, modeLambda).Inc()
		a.router.verifyLambda(snap, s.SQL, &d, sess, s.BelowCutoff)
	} else {
		a.router.hits.WithLabelValues(d.Rollup, modeEdges).Inc()
		// The rollup's part is the partial core over the whole buckets,
		// its bounds written as literals.
		a.router.verify(&d, s.SQL, s.Tree, sess, nil)
	}
	return sql, finishOrigins(a.core.Origins, d.Columns), nil
}

// explainEdges is EXPLAIN (ROLLUP)'s row for a split at bucket edges:
// decision edges, or lambda for a lambda rollup's.
func explainEdges(whole rewrite.Reason, e *edgeAnswer) []any {
	return []any{nil, e.mode(), edgesExplanation(whole, e), e.split.SQL}
}

// mode is the hit mode and EXPLAIN's decision of the split.
func (e *edgeAnswer) mode() string {
	if e.lambda {
		return modeLambda
	}
	return modeEdges
}

// edgesExplanation is the reason EXPLAIN (ROLLUP) and pgrollup explain
// give a split at bucket edges.
func edgesExplanation(whole rewrite.Reason, e *edgeAnswer) string {
	bound := func(t time.Time, none string) string {
		if t.IsZero() {
			return none
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	note := ""
	if e.note != "" {
		note = " (" + e.note + ")"
	}
	if e.lambda {
		return fmt.Sprintf(
			"%s; rollup %s (lambda) answers the partial aggregates of the rows below its cutoff %s in the whole %s buckets of %s in [%s, %s), the warehouse reads the rows of the partial buckets at the edges of the range and those of the whole buckets at or above the cutoff%s and finishes the statement; sql is the whole buckets' partial core",
			whole.String(), e.decision.Rollup, e.cutoff, e.split.Grain, e.split.Column, bound(e.split.From, "-infinity"), bound(e.split.To, "infinity"), note)
	}
	return fmt.Sprintf(
		"%s; rollup %s answers the whole %s buckets of %s in [%s, %s), the warehouse reads the rows of the partial buckets at the edges of the range%s and finishes the statement; sql is the whole buckets' partial core",
		whole.String(), e.decision.Rollup, e.split.Grain, e.split.Column, bound(e.split.From, "-infinity"), bound(e.split.To, "infinity"), note)
}

// tableIndexesQuery reads a table's estimated rows, the columns its valid
// indexes lead with, and its NOT NULL columns.
const tableIndexesQuery = `SELECT greatest(c.reltuples, 0)::float8,
       coalesce(array_agg(DISTINCT a.attname::text) FILTER (WHERE a.attname IS NOT NULL), '{}'),
       coalesce((SELECT array_agg(n.attname::text) FROM pg_catalog.pg_attribute n
                 WHERE n.attrelid = c.oid AND n.attnum > 0 AND NOT n.attisdropped AND n.attnotnull), '{}')
FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisvalid AND i.indkey[0] <> 0
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE c.oid = $1
GROUP BY c.oid, c.reltuples`

// loadIndexes records the table's estimated rows, which columns lead an
// index, and which are NOT NULL: exact edges read a range of the time column from the warehouse,
// which pays only when an index serves it, or the table is small.
func loadIndexes(ctx context.Context, db Warehouse, t *rewrite.Table) error {
	var indexed, notNull []string
	if err := db.QueryRow(ctx, tableIndexesQuery, t.OID).Scan(&t.Rows, &indexed, &notNull); err != nil {
		return fmt.Errorf("indexes of %s: %w", t.Name, err)
	}
	for i := range t.Columns {
		t.Columns[i].Indexed = slices.Contains(indexed, t.Columns[i].Name)
		t.Columns[i].NotNull = slices.Contains(notNull, t.Columns[i].Name)
	}
	return nil
}

// edgeScanRows is the largest table whose edges are read without an index
// on the time column: a larger one would be scanned whole for them, which
// costs about what the warehouse's own answer costs.
const edgeScanRows = 100_000

// edgesPay reports whether reading a split's edges from the warehouse pays:
// an index leads with the time column, or the table is small. note says
// why, for EXPLAIN (ROLLUP); "" when the column is indexed.
func edgesPay(snap *snapshot, rollup string, s *rewrite.EdgeSplit) (bool, string) {
	var table *rewrite.Table
	for _, cat := range []*rewrite.Catalog{snap.cat, snap.lambda} {
		if cat == nil {
			continue
		}
		for _, rs := range cat.Rollups {
			if rs.Def.Name == rollup {
				table = cat.Tables[qualified(rs.Def.Table)]
			}
		}
	}
	if table == nil {
		return false, "the rollup's table is unknown"
	}
	for _, c := range table.Columns {
		if c.Name == s.Column && c.Indexed {
			return true, ""
		}
	}
	if table.Rows < edgeScanRows {
		return true, fmt.Sprintf("the warehouse has no index on %s.%s, but the table is small (about %.0f rows)", table.Name, s.Column, table.Rows)
	}
	return false, fmt.Sprintf("the warehouse has no index on %s.%s and the table has about %.0f rows: reading the edges would scan it whole, so the statement passes through", table.Name, s.Column, table.Rows)
}
