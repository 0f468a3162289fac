package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// rollupAnswer answers a statement from a rollup.
type rollupAnswer struct {
	router   *Router
	sql      string
	tree     *pg_query.ParseResult
	decision rewrite.Decision // as decided when the statement arrived
}

func (a *rollupAnswer) Columns() []proxy.Column { return columns(a.decision.Columns) }

// ParamTypes is nil: statements with parameters are decided with their
// values, which a prepared statement does not have yet, so they pass through.
func (a *rollupAnswer) ParamTypes() []uint32 { return nil }

// RollupName names the rollup the statement was decided on, for the
// statement log.
func (a *rollupAnswer) RollupName() string { return a.decision.Rollup }

// Run decides the statement again, because a prepared statement runs long
// after it was decided: now() has moved, the session may have changed its
// time zone, and a new version may have replaced the one decided on. The
// answer must still be the rollup route with the same result columns;
// anything else fails, and the warehouse answers instead.
func (a *rollupAnswer) Run(ctx context.Context, sess *proxy.SessionInfo, params []proxy.Param) (*proxy.Result, error) {
	exec := a.router.opts.Executor
	if exec == nil {
		return nil, fmt.Errorf("no executor for rollup %s", a.decision.Rollup)
	}
	d, err := a.router.decideBound(ctx, a.sql, a.tree, sess, params, true)
	if err != nil {
		return nil, err
	}
	if d.Outcome != rewrite.OutcomeRollup {
		if a.router.staleContext(sess) {
			// Not the session's change but the watch's new Probe: read
			// the context again rather than pass through.
			return nil, proxy.ErrStaleContext
		}
		return nil, redecided{d.Reason}
	}
	if !sameColumns(d.Columns, a.decision.Columns) {
		return nil, fmt.Errorf("rollup %s now describes the result differently", d.Rollup)
	}
	rows, err := exec.Query(ctx, executorQuery(&d))
	if err != nil {
		return nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	a.router.verify(&d, a.sql, a.tree, sess, params)
	return &proxy.Result{Rows: &convertedRows{Rows: rows, cols: d.Columns, rollup: d.Rollup, hit: a.router.hits.WithLabelValues(d.Rollup, modeDuckDB)}, Tag: "SELECT"}, nil
}

// redecided is a statement decided for a rollup that, decided again as it
// runs, goes to the warehouse: the session changed its context or time zone
// since, or the rollup changed. That is a decision, not a failure.
type redecided struct{ reason rewrite.Reason }

func (e redecided) Error() string { return "no longer answerable from a rollup: " + e.reason.String() }

// FallbackReason labels the fallback in pgrollup_rollup_fallbacks_total.
func (redecided) FallbackReason() string { return "redecided" }

// ExpectedFallback keeps it out of the warnings about failed answers.
func (redecided) ExpectedFallback() bool { return true }

// convertedRows turns DuckDB's values into the proxy's as they stream by.
type convertedRows struct {
	proxy.Rows
	cols   []rewrite.ResultColumn
	rollup string
	vals   []any
	err    error
	// hit counts the answer once, when its rows ran out without an error,
	// or when it is closed without an error after rows were sent (a portal
	// a client executed with a row limit and closed, as asyncpg's fetchrow
	// does): an answer that failed and fell back to the warehouse is no hit.
	hit  prometheus.Counter
	sent bool
	done bool
}

func (r *convertedRows) Next() bool {
	if r.err != nil || r.done {
		return false
	}
	if !r.Rows.Next() {
		r.done = true
		if r.Rows.Err() == nil {
			r.hit.Inc()
		}
		return false
	}
	in := r.Rows.Values()
	if len(in) != len(r.cols) {
		r.err = fmt.Errorf("rollup %s: %d values for %d columns", r.rollup, len(in), len(r.cols))
		return false
	}
	if r.vals == nil {
		r.vals = make([]any, len(in))
	}
	for i, v := range in {
		var err error
		if r.vals[i], err = convert(v, r.cols[i].Type); err != nil {
			r.err = fmt.Errorf("rollup %s: column %s: %w", r.rollup, r.cols[i].Name, err)
			return false
		}
	}
	r.sent = true
	return true
}

// Close counts a hit whose rows did not run out: see hit.
func (r *convertedRows) Close() error {
	if !r.done && r.sent && r.err == nil && r.Rows.Err() == nil {
		r.done = true
		r.hit.Inc()
	}
	return r.Rows.Close()
}

func (r *convertedRows) Values() []any { return r.vals }

func (r *convertedRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// executorQuery is what an executor needs of a rollup decision.
func executorQuery(d *rewrite.Decision) *executor.Query {
	q := &executor.Query{Rollup: d.Rollup, Version: d.Version, SQL: d.SQL, Files: d.Files, Columns: make([]executor.Column, len(d.Columns))}
	for i, c := range d.Columns {
		q.Columns[i] = executor.Column{Name: c.Name, DuckType: c.DuckType}
	}
	return q
}

func sameColumns(a, b []rewrite.ResultColumn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Type != b[i].Type || a[i].TableOID != b[i].TableOID || a[i].AttNum != b[i].AttNum {
			return false
		}
	}
	return true
}

// deferredAnswer is a statement that only its parameter values can decide:
// each Bind decides it again with the values it carries.
type deferredAnswer struct {
	router *Router
	sql    string
	tree   *pg_query.ParseResult
	// passed is the reason of the last Bind that left its portal to the
	// warehouse, for Relayed, which the session calls right after it.
	passed string
}

// Columns is unknown until values are bound; the proxy asks the warehouse
// to describe the statement.
func (a *deferredAnswer) Columns() []proxy.Column { return nil }
func (a *deferredAnswer) ParamTypes() []uint32    { return nil }

// Bind decides with the bound values: a rollup answers the portal, or its
// aggregate core with the warehouse finishing the rest, or the warehouse
// answers it.
func (a *deferredAnswer) Bind(ctx context.Context, sess *proxy.SessionInfo, params []proxy.Param) (proxy.Answer, proxy.Finisher) {
	d, err := a.router.decideBound(ctx, a.sql, a.tree, sess, params, false)
	if err == nil && d.Outcome == rewrite.OutcomeRollup {
		return &rollupAnswer{router: a.router, sql: a.sql, tree: a.tree, decision: d}, nil
	}
	if f := a.router.finishableBound(ctx, a.sql, a.tree, sess, params); f != nil {
		return nil, f
	}
	reason := string(rewrite.ReasonParameter)
	if err == nil {
		reason = string(d.Reason.Code)
	}
	a.router.misses.WithLabelValues(reason).Inc()
	if a.router.rollupOnly.Load() {
		return refusal{rewrite.Reason{Code: rewrite.ReasonCode(reason), Message: fmt.Sprint(err, d.Reason)}}, nil
	}
	a.passed = reason
	return nil, nil
}

// Relayed implements proxy.RelayBinder: a portal left to the warehouse is
// recorded (Options.Misses) as its statement with the bound values of its
// WHERE written in, which advise can replay; one whose values cannot be
// written in is not.
func (a *deferredAnswer) Relayed(params []proxy.Param) (string, func(time.Duration)) {
	m := a.router.opts.Misses
	if m == nil {
		return a.passed, nil
	}
	rp, err := rewriteParams(params)
	if err != nil {
		return a.passed, nil
	}
	lsql, ltree, ok := withLiterals(a.sql, a.tree, rp)
	if !ok {
		return a.passed, nil
	}
	return a.passed, m.relayed(lsql, ltree, a.passed, a.router.catalog.Load().cat)
}

// Run serves a simple Query, which has no values to bind: the statement
// cannot be answered here.
func (a *deferredAnswer) Run(context.Context, *proxy.SessionInfo, []proxy.Param) (*proxy.Result, error) {
	return nil, errors.New("a statement with parameters needs bound values")
}

// columns describes result columns as RowDescription does.
func columns(cols []rewrite.ResultColumn) []proxy.Column {
	out := make([]proxy.Column, len(cols))
	for i, c := range cols {
		out[i] = proxy.Column{
			Name:     c.Name,
			TableOID: c.TableOID,
			Attnum:   c.AttNum,
			TypeOID:  c.Type.OID,
			TypeSize: typeSize(c.Type.OID),
			Typmod:   c.Type.Typmod,
		}
	}
	return out
}

// typeSize is pg_type.typlen, which RowDescription carries.
func typeSize(oid uint32) int16 {
	switch oid {
	case pgtype.BoolOID:
		return 1
	case pgtype.Int2OID:
		return 2
	case pgtype.Int4OID, pgtype.Float4OID, pgtype.DateOID:
		return 4
	case pgtype.Int8OID, pgtype.Float8OID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.TimeOID:
		return 8
	case pgtype.IntervalOID, pgtype.UUIDOID:
		return 16
	case pgtype.NameOID:
		return 64
	default:
		return -1
	}
}
