package routing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Lambda rollups (rewrite/lambda.go, docs/freshness.md) answer only through
// the warehouse: the rollup gives its partial aggregates below its
// version's cutoff, and the warehouse, in the client's session, adds those
// of the rows at or above it and finishes the statement. They are kept out
// of the catalog the other paths decide with (a lambda rollup's files alone
// are older than the warehouse by design), in a catalog of their own.

// modeLambda is the hit mode of an answer from a lambda rollup.
const modeLambda = "lambda"

// lambdaRouting is what the router keeps for lambda rollups.
type lambdaRouting struct {
	// engine decides partial cores against the lambda catalog, so that its
	// prepared statements never mix with the main engine's.
	engine *rewrite.Engine
	// cores keeps, by text, a statement's partial cores.
	cores *lru.Cache[string, []*rewrite.LambdaCore]
}

func newLambdaRouting() *lambdaRouting {
	cores, _ := lru.New[string, []*rewrite.LambdaCore](finishCacheEntries) // fails only for a size below 1
	return &lambdaRouting{engine: rewrite.NewEngine(0), cores: cores}
}

// splitLambda separates a catalog's lambda rollups into a catalog of their
// own; both share the tables and settings. Each lambda rollup's coverage
// gains the open range above its stored partitions, which the warehouse
// part covers; a lambda rollup whose version recorded no cutoff is in
// neither. lambda is nil when there are none.
func splitLambda(cat *rewrite.Catalog) (main, lambda *rewrite.Catalog) {
	var plain, lam []*rewrite.RollupState
	for _, rs := range cat.Rollups {
		switch {
		case rs.Def.Lambda == nil:
			plain = append(plain, rs)
		case rs.LambdaCutoffID != nil && rs.Version != "":
			c := *rs
			c.Partitions = idLambdaPartitions(rs)
			lam = append(lam, &c)
		case !rs.LambdaCutoff.IsZero() && rs.Version != "":
			c := *rs
			start := rs.LambdaCutoff
			if n := len(rs.Partitions); n > 0 && rs.Def.BuildRange == nil && !rs.Partitions[n-1].End.IsZero() && rs.Partitions[n-1].End.Before(start) {
				// Without build_range the partitions reach the newest row
				// below the cutoff: no row lay between the last partition
				// and the cutoff at the build; later ones there are rows
				// changed below the cutoff, which the version does not see
				// (docs/freshness.md). With build_range such a gap is left
				// uncovered, and statements reaching into it pass through.
				start = rs.Partitions[n-1].End
			}
			c.Partitions = append(append([]rewrite.Partition(nil), rs.Partitions...), rewrite.Partition{Start: start})
			lam = append(lam, &c)
		}
	}
	if len(lam) == 0 && len(plain) == len(cat.Rollups) {
		return cat, nil
	}
	main = &rewrite.Catalog{BuildTimezone: cat.BuildTimezone, MaxStaleness: cat.MaxStaleness, TextSortsBytewise: cat.TextSortsBytewise,
		Tables: cat.Tables, PartialColumns: cat.PartialColumns, Rollups: plain}
	if len(lam) > 0 {
		// A lambda answer is as fresh as the warehouse: no staleness bound applies.
		lambda = &rewrite.Catalog{BuildTimezone: cat.BuildTimezone, TextSortsBytewise: cat.TextSortsBytewise,
			Tables: cat.Tables, PartialColumns: cat.PartialColumns, Rollups: lam}
	}
	return main, lambda
}

// lambdaAnswer answers a statement's partial core from a lambda rollup and
// gives the statement for the warehouse to finish, adding its own rows.
type lambdaAnswer struct {
	router   *Router
	core     *rewrite.LambdaCore
	decision rewrite.Decision // the partial core's, as decided when the statement arrived
	maxRows  int
}

// lambdaFinishable finds a partial core of the statement that a lambda
// rollup answers, when the warehouse can finish the statement exactly in
// this session; nil otherwise.
func (r *Router) lambdaFinishable(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) *lambdaAnswer {
	if snap.lambda == nil || r.opts.FinishMaxRows <= 0 || !finishSession(sess) {
		return nil
	}
	rs := r.lambdaSession(ctx, snap, sess, false)
	for _, c := range r.partialCores(sql, tree) {
		d := r.lambda.engine.Decide(c.SQL, c.Tree, rs, snap.lambda)
		if d.Outcome != rewrite.OutcomeRollup {
			continue
		}
		if _, err := lambdaStatement(snap, c, &d, nil); err == nil {
			return &lambdaAnswer{router: r, core: c, decision: d, maxRows: r.opts.FinishMaxRows}
		}
	}
	return nil
}

// lambdaWhileUnknown is the lambda answer of a statement an ordinary rollup
// answers, when the session's context, and with it its
// pgrollup.max_staleness, is not known as the statement arrives: its first
// statements, and one each routing.privilege_cache_ttl, when its context
// is read again. The ordinary rollup would be decided again as it runs,
// and with a bound it does not meet (0: only lambda rollups answer) the
// statement would go to the warehouse whole; a lambda rollup answers
// whatever the bound. nil when the context is known or no lambda rollup
// answers.
func (r *Router) lambdaWhileUnknown(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) *lambdaAnswer {
	if snap.lambda == nil || !r.contextUnknown(sess) {
		return nil
	}
	return r.lambdaFinishable(ctx, snap, sql, tree, sess)
}

// contextUnknown reports whether the session's context is watched but not
// known yet: its first statements, and one each routing.privilege_cache_ttl.
func (r *Router) contextUnknown(sess *proxy.SessionInfo) bool {
	return r.opts.Context != nil && r.opts.Context.view(sess) == nil
}

// lambdaSession is the session as the lambda engine sees it: no staleness
// bound, since the warehouse part makes the answer as fresh as the warehouse.
func (r *Router) lambdaSession(ctx context.Context, snap *snapshot, sess *proxy.SessionInfo, strict bool) rewrite.Session {
	rs := r.session(ctx, snap, sess, strict)
	rs.Staleness = rewrite.StalenessSetting{}
	return rs
}

// lambdaCut is a lambda rollup's cutoff as its warehouse part reads it
// (rewrite.Catalog.LambdaCutoff), found once per catalog snapshot rather
// than at every statement.
type lambdaCut struct {
	table, column, literal string
	notNull                bool
}

// lambdaCuts are the cutoffs of the lambda rollups of cat (nil: none) by
// rollup name; a rollup without one is left out.
func lambdaCuts(cat *rewrite.Catalog) map[string]lambdaCut {
	if cat == nil {
		return nil
	}
	cuts := map[string]lambdaCut{}
	for _, st := range cat.Rollups {
		if column, literal, notNull, ok := cat.LambdaCutoff(st); ok {
			cuts[st.Def.Name] = lambdaCut{table: st.Def.Table, column: column, literal: literal, notNull: notNull}
		}
	}
	return cuts
}

// lambdaStatement writes the statement for the warehouse with the rollup's
// rows of decision d.
func lambdaStatement(snap *snapshot, c *rewrite.LambdaCore, d *rewrite.Decision, rows [][]*string) (string, error) {
	cut, err := snap.cutOf(d.Rollup)
	if err != nil {
		return "", err
	}
	return c.LambdaStatement(d.Columns, rows, cut.table, cut.column, cut.literal, cut.notNull)
}

// cutOf is the cutoff of the lambda rollup named name in this snapshot.
func (s *snapshot) cutOf(name string) (lambdaCut, error) {
	if s.lambdaState(name) == nil {
		return lambdaCut{}, fmt.Errorf("rollup %s is not a lambda rollup of this catalog", name)
	}
	cut, ok := s.cuts[name]
	if !ok {
		return lambdaCut{}, fmt.Errorf("rollup %s: no cutoff of its column", name)
	}
	return cut, nil
}

// lambdaState is the lambda rollup named name, or nil.
func (s *snapshot) lambdaState(name string) *rewrite.RollupState {
	if s.lambda == nil {
		return nil
	}
	for _, rs := range s.lambda.Rollups {
		if rs.Def.Name == name {
			return rs
		}
	}
	return nil
}

// cutoffOf is the cutoff of the lambda rollup named name, for EXPLAIN.
func (s *snapshot) cutoffOf(name string) string {
	st := s.lambdaState(name)
	switch {
	case st == nil:
		return ""
	case st.LambdaCutoffID != nil:
		return "id " + strconv.FormatInt(*st.LambdaCutoffID, 10)
	}
	return st.LambdaCutoff.UTC().Format(time.RFC3339Nano)
}

// RollupName names the rollup the partial core was decided on, for the statement log.
func (a *lambdaAnswer) RollupName() string { return a.decision.Rollup }

// Finish implements proxy.Finisher: it decides the partial core again for
// the session as it is now, runs it, and writes the statement with the
// rollup's rows and the warehouse part above the cutoff of the version
// that gave them.
func (a *lambdaAnswer) Finish(ctx context.Context, sess *proxy.SessionInfo) (string, []proxy.ColumnOrigin, error) {
	if !finishSession(sess) {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonContext, Message: "the session's client_encoding or standard_conforming_strings changed"}}
	}
	snap := a.router.catalog.Load()
	if snap.lambda == nil {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonNotBuilt, Message: "no lambda rollup is active"}}
	}
	d := a.router.lambda.engine.Decide(a.core.SQL, a.core.Tree, a.router.lambdaSession(ctx, snap, sess, true), snap.lambda)
	text, err := a.router.coreRows(ctx, &d, a.decision.Columns, a.maxRows)
	if err != nil {
		return "", nil, err
	}
	sql, err := lambdaStatement(snap, a.core, &d, text)
	if err != nil {
		return "", nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	a.router.hits.WithLabelValues(d.Rollup, modeLambda).Inc()
	a.router.verifyLambda(snap, a.core.SQL, &d, sess, a.core.BelowCutoff)
	return sql, finishOrigins(a.core.Origins, d.Columns), nil
}

// explainLambda is EXPLAIN (ROLLUP)'s row for a lambda answer: the split at
// the cutoff, and the partial core as sql.
func (r *Router) explainLambda(snap *snapshot, whole rewrite.Reason, l *lambdaAnswer) []any {
	return []any{nil, modeLambda, lambdaExplanation(whole, l.decision.Rollup, snap.cutoffOf(l.decision.Rollup)), l.core.SQL}
}

// lambdaExplanation is the reason EXPLAIN (ROLLUP) and pgrollup explain
// give a lambda answer from rollup with its cutoff.
func lambdaExplanation(whole rewrite.Reason, rollup, cutoff string) string {
	return fmt.Sprintf(
		"%s; rollup %s (lambda) answers the partial aggregates of the rows below its cutoff %s, the warehouse adds those of the rows at or above it and finishes the statement; sql is the partial core",
		whole.String(), rollup, cutoff)
}
