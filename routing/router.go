package routing

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/internal/ascii"
	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Options configure a Router.
type Options struct {
	// Executor runs the DuckDB SQL of rollup hits; convert.go turns the
	// values of its rows into the proxy's.
	Executor executor.Executor
	// RollupOnly answers every SELECT over a table that has rollups from a
	// rollup, or with an error saying why none could; never by the warehouse.
	RollupOnly bool
	// Context follows what each session's statements mean and may read
	// (its database, search_path, temp tables, current role, privileges
	// and row-level security); nil trusts every session to resolve names
	// as the catalog does and to read everything (tests and offline use).
	Context *ContextWatch
	// Statuses lists the rollups for SHOW ROLLUPS; nil reports them from
	// the catalog snapshot.
	Statuses func() []RollupStatus
	// FinishMaxRows bounds the rows of an aggregate core answered from a
	// rollup for a statement the warehouse finishes (finish.go); 0
	// finishes none.
	FinishMaxRows int
	// Misses, when set, records the statements over the catalog's tables
	// that the warehouse answers, for GET /api/misses and pgrollup advise.
	Misses *Misses
	// Registerer receives pgrollup_rollup_hits_total and
	// pgrollup_rollup_misses_total; nil uses a private registry.
	Registerer prometheus.Registerer
	// Verify checks a sample of hits against the warehouse (verify.go);
	// nil checks none.
	Verify *Verifier
}

// Router decides statements against the current catalog snapshot.
type Router struct {
	opts       Options
	rollupOnly atomic.Bool // opts.RollupOnly, changed by SetRollupOnly
	engine     *rewrite.Engine
	catalog    atomic.Pointer[snapshot]
	hits       *prometheus.CounterVec
	misses     *prometheus.CounterVec
	// finishCores keeps, by text, the aggregate cores of statements no
	// rollup answers whole (finish.go): finding them parses and deparses
	// the statement several times, about a millisecond.
	finishCores *lru.Cache[string, []*rewrite.FinishCore]
	// topNJoins keeps, by text, the top-N join of statements refused for
	// their join (nil for none): finding it deparses and parses.
	topNJoins *lru.Cache[string, *rewrite.TopNJoin]
	lambda    *lambdaRouting // lambda rollups' engine and partial cores (lambda.go)
}

// snapshot is a catalog with the words that let the router skip statements
// that cannot concern any rollup without parsing them.
type snapshot struct {
	// cat holds the rollups that answer on their own; lambda the lambda
	// rollups (lambda.go), nil when there are none; all both, as configured.
	cat, lambda, all *rewrite.Catalog
	// cuts are the lambda rollups' cutoffs, by rollup (lambda.go).
	cuts map[string]lambdaCut
	// words are the lower-case unqualified names of the tables that have
	// rollups; a statement mentioning none of them passes through unparsed.
	// concern finds them, and "rollup" (SHOW ROLLUPS, EXPLAIN (ROLLUP)).
	words   []string
	concern *ascii.Matcher
	// sources lists, per rollup, the tables its build reads: the fact table
	// and every declared join.
	sources map[string][]string
	// tableWords are the lower-case unqualified names of every table in the
	// catalog: a statement mentioning one of them, but no table with
	// rollups, is parsed only when Options.Misses records it.
	tableWords []string
	tables     *ascii.Matcher // finds tableWords
}

// splitSnapshot is the snapshot of cat split for its lambda rollups
// (lambda.go): all is cat, cat the rollups that answer on their own, lambda
// the lambda rollups and cuts their cutoffs. Every snapshot, the router's
// (SetCatalog) and the offline explain's, is made here, so that the two
// split a catalog alike; SetCatalog adds the words for skipping statements.
func splitSnapshot(cat *rewrite.Catalog) *snapshot {
	s := &snapshot{all: cat}
	s.cat, s.lambda = splitLambda(cat)
	s.cuts = lambdaCuts(s.lambda)
	return s
}

// NewRouter returns a Router over cat; SetCatalog replaces it later.
func NewRouter(cat *rewrite.Catalog, opts Options) *Router {
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	r := &Router{
		opts:   opts,
		engine: rewrite.NewEngine(0),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_hits_total",
			Help: "Statements answered from a rollup, by rollup and mode: duckdb (whole), finished_by_warehouse (the aggregate core, the rest by the warehouse), lambda (a lambda rollup's rows below its cutoff, the newer ones and the rest by the warehouse, also at a range's edges), edges (the whole buckets of a range, its edges and the rest by the warehouse).",
		}, []string{"rollup", "mode"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_rollup_misses_total",
			Help: "Statements over a table with rollups that no rollup could answer, by reason.",
		}, []string{"reason"}),
	}
	opts.Registerer.MustRegister(r.hits, r.misses)
	r.finishCores, _ = lru.New[string, []*rewrite.FinishCore](finishCacheEntries) // fails only for a size below 1
	r.topNJoins, _ = lru.New[string, *rewrite.TopNJoin](finishCacheEntries)
	r.lambda = newLambdaRouting()
	r.rollupOnly.Store(opts.RollupOnly)
	r.SetCatalog(cat)
	return r
}

// SetRollupOnly switches rollup-only mode (routing.rollup_only) for the
// statements decided from now on.
func (r *Router) SetRollupOnly(on bool) { r.rollupOnly.Store(on) }

// SetCatalog switches to a new catalog snapshot; statements already decided
// keep the one they were decided with.
func (r *Router) SetCatalog(cat *rewrite.Catalog) {
	s := splitSnapshot(cat)
	s.sources = map[string][]string{}
	seen := map[string]bool{}
	seenTable := map[string]bool{}
	var tables []*rewrite.Table
	for _, rs := range cat.Rollups {
		src := []string{rs.Def.Table}
		for _, j := range rs.Joins {
			src = append(src, j.Table)
		}
		s.sources[rs.Def.Name] = src
		// Every rollup's hit series exists from the start, at 0, so that a
		// rate over it is defined before its first hit.
		r.hits.WithLabelValues(rs.Def.Name, modeDuckDB)
		r.opts.Verify.Series(rs.Def.Name)
		if r.opts.FinishMaxRows > 0 {
			r.hits.WithLabelValues(rs.Def.Name, modeFinished)
			if rs.Def.Lambda != nil {
				r.hits.WithLabelValues(rs.Def.Name, modeLambda)
			} else if rs.Def.TimeDimension != "" {
				r.hits.WithLabelValues(rs.Def.Name, modeEdges)
			}
		}
		for _, t := range src {
			if tb := cat.Tables[qualified(t)]; tb != nil && !seenTable[tb.Name] {
				seenTable[tb.Name] = true
				tables = append(tables, tb)
			}
		}
		name := rs.Def.Table
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		name = strings.ToLower(strings.Trim(name, `"`))
		if !seen[name] {
			seen[name] = true
			s.words = append(s.words, name)
		}
	}
	for q := range cat.Tables {
		s.tableWords = append(s.tableWords, strings.ToLower(q[strings.LastIndexByte(q, '.')+1:]))
	}
	s.concern = ascii.NewMatcher(append([]string{"rollup"}, s.words...))
	s.tables = ascii.NewMatcher(s.tableWords)
	r.catalog.Store(s)
	r.opts.Misses.newCatalog()
	if r.opts.Context != nil {
		sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
		r.opts.Context.SetTables(tables)
	}
}

// reasonParseLimit is the reason of a statement over a table with rollups
// that is beyond the parse limits (limits.parse_max_*), and so passes
// through unparsed.
const reasonParseLimit = "parse_limit"

// RouteQuick implements the proxy's quick routing: the decision on a
// statement that names no table with a rollup and none whose misses are
// recorded, which Route gives at a glance; false for the others.
func (r *Router) RouteQuick(st *proxy.Statement) (proxy.RouteDecision, bool) {
	snap := r.catalog.Load()
	if snap.mayConcern(st.SQL) || r.opts.Misses != nil && snap.tables.Any(st.SQL) {
		return proxy.RouteDecision{}, false
	}
	return noRollup(), true
}

// noRollup is the decision on a statement that names no table with a rollup.
func noRollup() proxy.RouteDecision {
	return proxy.RouteDecision{Route: proxy.RoutePassthrough, Reason: string(rewrite.ReasonNoRollup)}
}

// Route implements proxy.Router.
func (r *Router) Route(ctx context.Context, st *proxy.Statement, sess *proxy.SessionInfo) proxy.RouteDecision {
	snap := r.catalog.Load()
	if !snap.mayConcern(st.SQL) {
		d := noRollup()
		if r.opts.Misses != nil && snap.tables.Any(st.SQL) {
			if tree, err := st.Parse(); err == nil {
				d.Relayed = r.opts.Misses.relayed(st.SQL, tree, d.Reason, snap.cat)
			}
		}
		return d
	}
	tree, err := st.Parse()
	var unparsed *parselimit.Error
	switch {
	case errors.As(err, &unparsed):
		// The warehouse answers it as Postgres does (54001 for a
		// statement too deep for its stack); no rollup could.
		r.misses.WithLabelValues(reasonParseLimit).Inc()
		return proxy.RouteDecision{Route: proxy.RoutePassthrough, Reason: reasonParseLimit, ReasonMessage: unparsed.Error()}
	case err != nil:
		return proxy.RouteDecision{Route: proxy.RoutePassthrough, Reason: "parse_error"}
	}
	if inner, ok := explainRollup(tree); ok {
		return r.explain(inner)
	}
	if isShowRollups(tree) {
		statuses := r.opts.Statuses
		if statuses == nil {
			statuses = snap.statuses
		}
		return proxy.RouteDecision{Route: proxy.RouteAdmin, Answer: showRollupsAnswer{router: r, statuses: statuses}}
	}
	d := r.decide(ctx, snap, st.SQL, tree, sess)
	if d.Outcome == rewrite.OutcomeRollup {
		if f := r.lambdaWhileUnknown(ctx, snap, st.SQL, tree, sess); f != nil {
			return proxy.RouteDecision{Route: proxy.RouteRollup, Finish: f}
		}
		return proxy.RouteDecision{
			Route:    proxy.RouteRollup,
			Answer:   &rollupAnswer{router: r, sql: st.SQL, tree: tree, decision: d},
			Fallback: !r.rollupOnly.Load(),
		}
	}
	if d.Reason.Code == rewrite.ReasonJoin && !mayHaveParams(st.SQL, tree) {
		if a := r.topN(ctx, snap, st.SQL, tree, sess); a != nil {
			return proxy.RouteDecision{Route: proxy.RouteRollup, Answer: a, Fallback: !r.rollupOnly.Load()}
		}
	}
	if (len(d.Candidates) > 0 || snap.lambda != nil) && (d.Reason.Code == rewrite.ReasonParameter || mayHaveParams(st.SQL, tree)) {
		// Only the bound values can decide, whether a rollup answers the
		// statement or its core; Bind will.
		return proxy.RouteDecision{
			Route:    proxy.RouteRollup,
			Answer:   &deferredAnswer{router: r, sql: st.SQL, tree: tree},
			Fallback: !r.rollupOnly.Load(),
		}
	}
	if f := r.finishable(ctx, snap, st.SQL, tree, sess); f != nil {
		return proxy.RouteDecision{Route: proxy.RouteRollup, Finish: f}
	}
	if f := r.lambdaFinishable(ctx, snap, st.SQL, tree, sess); f != nil {
		return proxy.RouteDecision{Route: proxy.RouteRollup, Finish: f}
	}
	if f, _ := r.edgeFinishable(ctx, snap, st.SQL, tree, sess); f != nil {
		return proxy.RouteDecision{Route: proxy.RouteRollup, Finish: f}
	}
	if len(d.Candidates) > 0 || d.Reason.Code != rewrite.ReasonNoRollup {
		r.misses.WithLabelValues(string(d.Reason.Code)).Inc()
	}
	if r.rollupOnly.Load() && len(d.Candidates) > 0 {
		return proxy.RouteDecision{Route: proxy.RouteError, Reason: string(d.Reason.Code), Answer: refusal{d.Reason}}
	}
	return proxy.RouteDecision{Route: proxy.RoutePassthrough, Reason: string(d.Reason.Code), ReasonMessage: d.Reason.String(),
		Relayed: r.opts.Misses.relayed(st.SQL, tree, string(d.Reason.Code), snap.cat)}
}

// decide runs the rewrite engine with what it needs to know of the session.
func (r *Router) decide(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) rewrite.Decision {
	return r.engine.Decide(sql, tree, r.session(ctx, snap, sess, false), snap.cat)
}

// decideBound decides a statement with its bound parameter values, against
// the current catalog and session. strict: the session's context must be
// known (an answer about to run); otherwise a statement decided before the
// context was read is decided as if it resolved as the catalog does, and
// decided again when it runs.
func (r *Router) decideBound(ctx context.Context, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo, params []proxy.Param, strict bool) (rewrite.Decision, error) {
	snap := r.catalog.Load()
	rs := r.session(ctx, snap, sess, strict)
	var err error
	if rs.Params, err = rewriteParams(params); err != nil {
		return rewrite.Decision{}, err
	}
	d := r.engine.Decide(sql, tree, rs, snap.cat)
	if d.Outcome == rewrite.OutcomeRollup {
		return d, nil
	}
	// A filter the bound values satisfy only as the literals they stand
	// for: decide the statement with them written in. Its text carries the
	// values, so nothing decided for one set of values serves another.
	if lsql, ltree, ok := withLiterals(sql, tree, rs.Params); ok {
		if ld := r.engine.Decide(lsql, ltree, rs, snap.cat); ld.Outcome == rewrite.OutcomeRollup {
			return ld, nil
		}
	}
	return d, nil
}

// session is what the rewrite engine needs to know of the client's session.
func (r *Router) session(_ context.Context, snap *snapshot, sess *proxy.SessionInfo, strict bool) rewrite.Session {
	rs := rewrite.Session{
		TimeZone: sess.Parameters["TimeZone"],
		Now:      sess.Now,
		TxFailed: sess.TxStatus == 'E',
		// The proxy tracks both what a block may have written and when it
		// began (sess.Now), so a block that only read is answered too.
		TxWrote: sess.TxWrote,
	}
	if r.opts.Context == nil {
		return rs
	}
	v := r.opts.Context.view(sess)
	if v == nil && !strict {
		return rs
	}
	if v == nil {
		v = unknownView
	}
	rs.Tables, rs.RowFilters, rs.ContextKey = v.tables, v.rowFilters, v.key
	rs.Staleness = v.staleness
	rs.CanRead = func(rollup string) bool {
		for _, t := range snap.sources[rollup] {
			if !v.readable[qualified(t)] {
				return false
			}
		}
		return true
	}
	return rs
}

// visibility says which rollups a session may learn of: those whose every
// source table its current role may read, and whether it may see file
// paths (superusers only). Without a context watch (tests, offline use)
// everything is visible.
func (r *Router) visibility(snap *snapshot, sess *proxy.SessionInfo) (visible func(rollup string) bool, paths bool) {
	if r.opts.Context == nil {
		return func(string) bool { return true }, true
	}
	v := r.opts.Context.view(sess)
	if v == nil {
		v = unknownView
	}
	return func(rollup string) bool {
		src, ok := snap.sources[rollup]
		if !ok {
			return false
		}
		for _, t := range src {
			if !v.readable[qualified(t)] {
				return false
			}
		}
		return true
	}, v.superuser
}

// staleContext reports whether the session's context was read for a Probe
// the watch has replaced since: its values tell nothing now, and an answer
// decided with them decided as if the context were unknown. Probes are
// never reused, so a session whose Probe is still current after an answer
// was decided had it current all along.
func (r *Router) staleContext(sess *proxy.SessionInfo) bool {
	if r.opts.Context == nil || sess.Probe == nil {
		return false
	}
	cur := r.opts.Context.Probe()
	return cur != nil && cur != sess.Probe
}

// Probe implements proxy.Prober: the session context the router needs.
func (r *Router) Probe() *proxy.Probe {
	if r.opts.Context == nil {
		return nil
	}
	return r.opts.Context.Probe()
}

// statuses reports the rollups as the catalog snapshot has them.
func (s *snapshot) statuses() []RollupStatus {
	out := make([]RollupStatus, 0, len(s.all.Rollups))
	for _, r := range s.all.Rollups {
		var window []string
		for _, w := range r.Windows {
			window = append(window, w.SQL)
		}
		out = append(out, RollupStatus{Name: r.Def.Name, Status: string(r.Status), Version: r.Version, Rows: r.Rows, Bytes: r.Bytes, BuiltAt: r.BuiltAt,
			Window: strings.Join(window, " AND ")})
	}
	return out
}

// mayConcern reports whether sql could be a statement a rollup or an admin
// command answers. It errs on the side of yes: it only has to be cheap
// enough to spare most statements a parse.
func (s *snapshot) mayConcern(sql string) bool { return s.concern.Any(sql) }

// refusal answers a statement in rollup-only mode that no rollup can answer.
type refusal struct{ reason rewrite.Reason }

func (refusal) Columns() []proxy.Column { return nil }

func (refusal) ParamTypes() []uint32 { return nil }
func (f refusal) Run(context.Context, *proxy.SessionInfo, []proxy.Param) (*proxy.Result, error) {
	return nil, proxy.Error(sqlstate.FeatureNotSupported, "pgrollup: rollup-only mode: no rollup can answer this statement: "+f.reason.String())
}
