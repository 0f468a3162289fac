package routing

import (
	"context"
	"errors"
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Top-N joins (rewrite/topn.go): the subquery is answered from a rollup,
// and its keys filter the statement without the join, answered from a
// rollup too. Both run in DuckDB, with no warehouse round trip.

// modeTopN is EXPLAIN (ROLLUP)'s decision for a top-N join.
const modeTopN = "top_n"

// topNAnswer answers a statement with a top-N join.
type topNAnswer struct {
	router *Router
	join   *rewrite.TopNJoin
	inner  rewrite.Decision // the subquery's, as decided when the statement arrived
	outer  rewrite.Decision // the filtered statement's, decided with sample keys
}

// topN finds a statement's top-N join whose subquery a rollup answers, and
// whose statement without the join a rollup answers once filtered to the
// keys; nil otherwise.
func (r *Router) topN(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) *topNAnswer {
	j := r.topNJoin(sql, tree)
	if j == nil {
		return nil
	}
	rs := r.session(ctx, snap, sess, false)
	inner, outer, ok := j.Decide(func(sql string, tree *pg_query.ParseResult) rewrite.Decision {
		return r.engine.Decide(sql, tree, rs, snap.cat)
	})
	if !ok {
		return nil
	}
	return &topNAnswer{router: r, join: j, inner: inner, outer: outer}
}

// topNJoin returns the top-N join of the statement of text sql ("" when
// it has no text of its own, as in EXPLAIN), kept by text.
func (r *Router) topNJoin(sql string, tree *pg_query.ParseResult) *rewrite.TopNJoin {
	if sql == "" || len(sql) > finishCacheText {
		return rewrite.FindTopNJoin(tree)
	}
	if j, ok := r.topNJoins.Get(sql); ok {
		return j
	}
	j := rewrite.FindTopNJoin(tree)
	r.topNJoins.Add(sql, j)
	return j
}

func (a *topNAnswer) Columns() []proxy.Column { return columns(a.outer.Columns) }

// ParamTypes is nil: statements with parameters are not answered this way.
func (a *topNAnswer) ParamTypes() []uint32 { return nil }

// RollupName names the rollup the statement is answered from.
func (a *topNAnswer) RollupName() string { return a.outer.Rollup }

// Run answers the subquery, then the statement filtered to its keys, each
// decided again for the session as it is now.
func (a *topNAnswer) Run(ctx context.Context, sess *proxy.SessionInfo, params []proxy.Param) (*proxy.Result, error) {
	exec := a.router.opts.Executor
	if exec == nil {
		return nil, fmt.Errorf("no executor for rollup %s", a.outer.Rollup)
	}
	if len(params) > 0 {
		return nil, errors.New("a top-N join with parameters is not answered from rollups")
	}
	inner, err := a.router.decideBound(ctx, a.join.InnerSQL, a.join.InnerTree, sess, nil, true)
	if err != nil {
		return nil, err
	}
	if inner.Outcome != rewrite.OutcomeRollup {
		return nil, redecided{inner.Reason}
	}
	if !sameColumns(inner.Columns, a.inner.Columns) {
		return nil, fmt.Errorf("rollup %s now describes the top-N subquery differently", inner.Rollup)
	}
	keys, err := rowsAsText(ctx, exec, &inner, finishSettings(), 0, nil)
	if err != nil {
		return nil, err
	}
	sql, tree, empty, err := a.join.Filtered(inner.Columns, keys)
	if err != nil {
		return nil, fmt.Errorf("rollup %s: %w", inner.Rollup, err)
	}
	if empty {
		// No group can join: a grouped statement has no rows.
		a.router.hits.WithLabelValues(inner.Rollup, modeDuckDB).Inc()
		return &proxy.Result{Rows: proxy.SliceRows(nil), Tag: "SELECT"}, nil
	}
	outer, err := a.router.decideBound(ctx, sql, tree, sess, nil, true)
	if err != nil {
		return nil, err
	}
	if outer.Outcome != rewrite.OutcomeRollup {
		return nil, redecided{outer.Reason}
	}
	if !sameColumns(outer.Columns, a.outer.Columns) {
		return nil, fmt.Errorf("rollup %s now describes the result differently", outer.Rollup)
	}
	rows, err := exec.Query(ctx, executorQuery(&outer))
	if err != nil {
		return nil, fmt.Errorf("rollup %s: %w", outer.Rollup, err)
	}
	return &proxy.Result{Rows: &convertedRows{Rows: rows, cols: outer.Columns, rollup: outer.Rollup, hit: a.router.hits.WithLabelValues(outer.Rollup, modeDuckDB)}, Tag: "SELECT"}, nil
}
