package routing

import (
	"context"
	"fmt"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Exact edges (rewrite/edges.go): a statement whose time range cuts through
// buckets takes the whole buckets from a rollup and the edges from the
// warehouse, in the client's session, which also finishes the statement.

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
}

// edgeFinishable finds a split of the statement at bucket edges whose whole
// buckets a rollup answers; nil otherwise.
func (r *Router) edgeFinishable(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) *edgeAnswer {
	if r.opts.FinishMaxRows <= 0 || !finishSession(sess) || len(snap.cat.Rollups) == 0 {
		return nil
	}
	rs := r.session(ctx, snap, sess, false)
	for _, c := range r.partialCores(sql, tree) {
		if s, d := r.decideEdges(c, rs, snap); s != nil {
			return &edgeAnswer{router: r, core: c, split: s, decision: d, maxRows: r.opts.FinishMaxRows}
		}
	}
	return nil
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
// buckets a rollup answers, with its decision.
func (r *Router) decideEdges(c *rewrite.LambdaCore, rs rewrite.Session, snap *snapshot) (*rewrite.EdgeSplit, rewrite.Decision) {
	if rs.Now.IsZero() {
		rs.Now = time.Now()
	}
	for _, s := range c.EdgeSplits(snap.cat, rs) {
		d := r.engine.Decide(s.SQL, s.Tree, rs, snap.cat)
		if d.Outcome != rewrite.OutcomeRollup {
			continue
		}
		if _, err := s.Statement(d.Columns, nil); err == nil {
			return s, d
		}
	}
	return nil, rewrite.Decision{}
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
	s, d := a.router.decideEdges(a.core, a.router.session(ctx, snap, sess, true), snap)
	if s == nil {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonUnalignedRange, Message: "no rollup answers the whole buckets of the range now"}}
	}
	if !sameColumns(d.Columns, a.decision.Columns) {
		return "", nil, fmt.Errorf("rollup %s now describes the core differently", d.Rollup)
	}
	text, err := a.router.coreRows(ctx, &d, a.maxRows)
	if err != nil {
		return "", nil, err
	}
	sql, err := s.Statement(d.Columns, text)
	if err != nil {
		return "", nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	a.router.hits.WithLabelValues(d.Rollup, modeEdges).Inc()
	return sql, finishOrigins(a.core.Origins, d.Columns), nil
}

// explainEdges is EXPLAIN (ROLLUP)'s row for a split at bucket edges.
func explainEdges(whole rewrite.Reason, e *edgeAnswer) []any {
	bound := func(t time.Time, none string) string {
		if t.IsZero() {
			return none
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return []any{nil, modeEdges, fmt.Sprintf(
		"%s; rollup %s answers the whole %s buckets of %s in [%s, %s), the warehouse reads the rows of the partial buckets at the edges of the range and finishes the statement; sql is the whole buckets' partial core",
		whole.String(), e.decision.Rollup, e.split.Grain, e.split.Column, bound(e.split.From, "-infinity"), bound(e.split.To, "infinity")), e.split.SQL}
}
