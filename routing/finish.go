package routing

import (
	"context"
	"fmt"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Statements the warehouse finishes (rewrite/finish.go): the aggregate
// core is answered from a rollup, and the warehouse runs the statement
// with the core replaced by its rows.

// Hit modes, the mode label of pgrollup_rollup_hits_total.
const (
	modeDuckDB   = "duckdb"                // answered whole from a rollup
	modeFinished = "finished_by_warehouse" // the core from a rollup, the rest by the warehouse
)

// finishAnswer answers a statement's aggregate core from a rollup and gives
// the statement for the warehouse to finish.
type finishAnswer struct {
	router   *Router
	core     *rewrite.FinishCore
	decision rewrite.Decision // the core's, as decided when the statement arrived
	maxRows  int
}

// finishable finds the core of a statement no rollup answers whole that a
// rollup answers, when the warehouse can finish the rest exactly in this
// session; nil otherwise.
func (r *Router) finishable(ctx context.Context, snap *snapshot, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo) *finishAnswer {
	if r.opts.FinishMaxRows <= 0 || !finishSession(sess) {
		return nil
	}
	c, d := rewrite.AnsweredCore(r.cores(sql, tree), func(c *rewrite.FinishCore) rewrite.Decision {
		return r.engine.Decide(c.SQL, c.Tree, r.session(ctx, snap, sess, false), snap.cat)
	})
	if c == nil {
		return nil
	}
	return &finishAnswer{router: r, core: c, decision: d, maxRows: r.opts.FinishMaxRows}
}

// finishableBound is what finishes a statement with parameters, with
// their values written in: its core from a rollup (finishable), from a
// lambda rollup, or its whole buckets with the edges from the warehouse;
// nil when none does. The warehouse runs it without parameters. Its text
// is that of these values only, so its cores are not kept.
func (r *Router) finishableBound(ctx context.Context, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo, params []proxy.Param) proxy.Finisher {
	if r.opts.FinishMaxRows <= 0 || !finishSession(sess) {
		return nil
	}
	values, err := rewriteParams(params)
	if err != nil {
		return nil
	}
	_, ltree, ok := allLiterals(sql, tree, values)
	if !ok {
		return nil
	}
	snap := r.catalog.Load()
	if f := r.finishable(ctx, snap, "", ltree, sess); f != nil {
		return f
	}
	if f := r.lambdaFinishable(ctx, snap, "", ltree, sess); f != nil {
		return f
	}
	if f, _ := r.edgeFinishable(ctx, snap, "", ltree, sess); f != nil {
		return f
	}
	return nil
}

// finishCacheEntries bounds the statements whose cores the router keeps.
const finishCacheEntries = 1024

// finishCacheText is the longest text whose cores are kept: they hold the
// core's parse tree.
const finishCacheText = 32 << 10

// cores returns the aggregate cores of the statement of text sql ("" when
// it has no text of its own, as in EXPLAIN), kept by text.
func (r *Router) cores(sql string, tree *pg_query.ParseResult) []*rewrite.FinishCore {
	if sql == "" || len(sql) > finishCacheText {
		return rewrite.FinishCores(tree)
	}
	if cs, ok := r.finishCores.Get(sql); ok {
		return cs
	}
	cs := rewrite.FinishCores(tree)
	r.finishCores.Add(sql, cs)
	return cs
}

// finishSession reports whether the warehouse reads a statement pgrollup
// writes as pgrollup means it in this session: text in UTF-8, and string
// literals with standard_conforming_strings, as the parser reads the
// client's own text. Otherwise the statement passes through.
func finishSession(sess *proxy.SessionInfo) bool {
	return sess.Parameters["client_encoding"] == "UTF8" && sess.Parameters["standard_conforming_strings"] == "on"
}

// finishTooLarge is a core with more rows than routing.finish_max_rows:
// the statement passes through unchanged.
type finishTooLarge struct{ max int }

func (e finishTooLarge) Error() string {
	return fmt.Sprintf("the aggregate core has more than %d rows (routing.finish_max_rows)", e.max)
}

// FallbackReason labels the fallback in pgrollup_rollup_fallbacks_total.
func (finishTooLarge) FallbackReason() string { return "finish_too_large" }

// ExpectedFallback keeps it out of the warnings about failed answers.
func (finishTooLarge) ExpectedFallback() bool { return true }

// RollupName names the rollup the core was decided on, for the statement log.
func (a *finishAnswer) RollupName() string { return a.decision.Rollup }

// finishSettings write the core's values as text that Postgres reads back
// exactly whatever the session's settings: ISO dates, timestamps with their
// offset, ISO 8601 intervals, floats with every digit they need.
func finishSettings() pgfmt.Settings {
	return pgfmt.Settings{DateStyle: pgfmt.DateStyleISO, IntervalStyle: pgfmt.IntervalStyleISO8601, TimeZone: time.UTC, ExtraFloatDigits: 3}
}

// Finish implements proxy.Finisher: it decides the core again for the
// session as it is now (as rollupAnswer.Run does), runs it, and writes its
// rows into the statement.
func (a *finishAnswer) Finish(ctx context.Context, sess *proxy.SessionInfo) (string, []proxy.ColumnOrigin, error) {
	if !finishSession(sess) {
		return "", nil, redecided{rewrite.Reason{Code: rewrite.ReasonContext, Message: "the session's client_encoding or standard_conforming_strings changed"}}
	}
	d, err := a.router.decideBound(ctx, a.core.SQL, a.core.Tree, sess, nil, true)
	if err != nil {
		return "", nil, err
	}
	text, err := a.router.coreRows(ctx, &d, a.decision.Columns, a.maxRows)
	if err != nil {
		return "", nil, err
	}
	sql, err := a.core.FinishStatement(d.Columns, text)
	if err != nil {
		return "", nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	a.router.hits.WithLabelValues(d.Rollup, modeFinished).Inc()
	// The rollup's part of the answer is the core's rows: checked as a hit
	// of the core itself would be.
	a.router.verify(&d, a.core.SQL, a.core.Tree, sess, nil)
	return sql, finishOrigins(a.core.Origins, d.Columns), nil
}

// coreRows runs a core's decision, decided again as the statement runs, on
// the executor and returns its rows as Postgres's text of each value (nil
// is NULL), at most maxRows of them. The decision must still answer from a
// rollup, with the columns decided when the statement arrived.
func (r *Router) coreRows(ctx context.Context, d *rewrite.Decision, decided []rewrite.ResultColumn, maxRows int) ([][]*string, error) {
	if d.Outcome != rewrite.OutcomeRollup {
		return nil, redecided{d.Reason}
	}
	if !sameColumns(d.Columns, decided) {
		return nil, fmt.Errorf("rollup %s now describes the core differently", d.Rollup)
	}
	exec := r.opts.Executor
	if exec == nil {
		return nil, fmt.Errorf("no executor for rollup %s", d.Rollup)
	}
	return rowsAsText(ctx, exec, d, finishSettings(), maxRows, func() error { return finishTooLarge{maxRows} })
}

// rowsAsText runs a rollup decision and returns its rows as Postgres's
// text of each value (nil is NULL) under set; more than maxRows rows (0:
// no bound) is the error over gives.
func rowsAsText(ctx context.Context, exec executor.Executor, d *rewrite.Decision, set pgfmt.Settings, maxRows int, over func() error) ([][]*string, error) {
	rows, err := exec.Query(ctx, executorQuery(d))
	if err != nil {
		return nil, fmt.Errorf("rollup %s: %w", d.Rollup, err)
	}
	conv := &convertedRows{Rows: rows, cols: d.Columns, rollup: d.Rollup, hit: prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})}
	defer conv.Close()
	var text [][]*string
	var buf []byte
	for conv.Next() {
		if maxRows > 0 && len(text) >= maxRows {
			return nil, over()
		}
		vals := conv.Values()
		row := make([]*string, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			if buf, err = pgfmt.AppendText(buf[:0], d.Columns[i].Type.OID, v, &set); err != nil {
				return nil, fmt.Errorf("rollup %s: column %s: %w", d.Rollup, d.Columns[i].Name, err)
			}
			s := string(buf)
			row[i] = &s
		}
		text = append(text, row)
	}
	if err := conv.Err(); err != nil {
		return nil, err
	}
	return text, nil
}

// finishOrigins gives each result column of the client's statement the
// origin of the core column it is, as the engine computed it for the
// core; nil when none has one.
func finishOrigins(origins []int, cols []rewrite.ResultColumn) []proxy.ColumnOrigin {
	var out []proxy.ColumnOrigin
	for i, o := range origins {
		if o < 0 || o >= len(cols) || cols[o].TableOID == 0 {
			continue
		}
		if out == nil {
			out = make([]proxy.ColumnOrigin, len(origins))
		}
		out[i] = proxy.ColumnOrigin{TableOID: cols[o].TableOID, Attnum: cols[o].AttNum}
	}
	return out
}
