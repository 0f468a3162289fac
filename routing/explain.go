package routing

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// explainRollup recognises EXPLAIN (ROLLUP) <statement>, which Postgres
// itself would reject as an unknown EXPLAIN option, and returns the
// statement explained.
func explainRollup(tree *pg_query.ParseResult) (*pg_query.ParseResult, bool) {
	if len(tree.Stmts) != 1 {
		return nil, false
	}
	ex := tree.Stmts[0].Stmt.GetExplainStmt()
	if ex == nil || len(ex.Options) != 1 {
		return nil, false
	}
	opt := ex.Options[0].GetDefElem()
	if opt == nil || opt.Defname != "rollup" {
		return nil, false
	}
	return &pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: ex.Query}}}, true
}

// isShowRollups recognises SHOW ROLLUPS.
func isShowRollups(tree *pg_query.ParseResult) bool {
	if len(tree.Stmts) != 1 {
		return false
	}
	show := tree.Stmts[0].Stmt.GetVariableShowStmt()
	return show != nil && show.Name == "rollups"
}

func (r *Router) explain(inner *pg_query.ParseResult) proxy.RouteDecision {
	return proxy.RouteDecision{Route: proxy.RouteAdmin, Answer: explainAnswer{router: r, inner: inner}}
}

// explainAnswer is EXPLAIN (ROLLUP)'s result: a row per candidate rollup
// with its decision and reason, the chosen one first with the rewritten SQL;
// a single row with the reason when no rollup was a candidate. It decides
// when it runs, against the catalog and session of that moment, so that a
// prepared EXPLAIN (ROLLUP) executed again sees rollups built since.
type explainAnswer struct {
	router *Router
	inner  *pg_query.ParseResult
}

func textColumn(name string) proxy.Column {
	return proxy.Column{Name: name, TypeOID: pgtype.TextOID, TypeSize: -1, Typmod: -1}
}

func (explainAnswer) Columns() []proxy.Column {
	return []proxy.Column{textColumn("rollup"), textColumn("decision"), textColumn("reason"), textColumn("sql")}
}

func (explainAnswer) ParamTypes() []uint32 { return nil }

func (a explainAnswer) Run(ctx context.Context, sess *proxy.SessionInfo, _ []proxy.Param) (*proxy.Result, error) {
	snap := a.router.catalog.Load()
	d := rewrite.DecideAnalysis(rewrite.Analyze(a.inner), a.router.session(ctx, snap, sess, true), snap.cat)
	visible, paths := a.router.visibility(snap, sess)
	var rows [][]any
	if d.Outcome != rewrite.OutcomeRollup {
		if f := a.router.finishable(ctx, snap, "", a.inner, sess); f != nil && visible(f.decision.Rollup) {
			// The split: the core from a rollup, the rest by the warehouse.
			rows = append(rows, []any{nil, modeFinished, fmt.Sprintf(
				"%s; the warehouse finishes the statement around its aggregate core (%s), which rollup %s answers; sql is the core",
				d.Reason.String(), f.core.Kind, f.decision.Rollup), f.core.SQL})
			d = f.decision
		} else if t := a.router.topN(ctx, snap, "", a.inner, sess); t != nil && visible(t.inner.Rollup) && visible(t.outer.Rollup) {
			// Two answers: the subquery's keys, then the statement
			// filtered to them.
			rows = append(rows, []any{nil, modeTopN, fmt.Sprintf(
				"%s; the top-N subquery is answered by rollup %s, and the statement without the join, filtered to the subquery's keys, by rollup %s; sql is the subquery",
				d.Reason.String(), t.inner.Rollup, t.outer.Rollup), t.join.InnerSQL})
			d = t.outer
		} else if l := a.router.lambdaFinishable(ctx, snap, "", a.inner, sess); l != nil && visible(l.decision.Rollup) {
			rows = append(rows, a.router.explainLambda(snap, d.Reason, l))
			d = l.decision
		} else if e, note := a.router.edgeFinishable(ctx, snap, "", a.inner, sess); e != nil && visible(e.decision.Rollup) {
			rows = append(rows, explainEdges(d.Reason, e))
			d = e.decision
		} else if note != "" {
			rows = append(rows, []any{nil, "passthrough", d.Reason.String() + "; a split at bucket edges does not pay: " + note, nil})
		}
	}
	for _, c := range d.Candidates {
		if !visible(c.Rollup) {
			// A role learns nothing of rollups over tables it may not read.
			continue
		}
		decision, sql := "reject", any(nil)
		if c.Match {
			decision = "match"
			if d.Outcome == rewrite.OutcomeRollup && c.Rollup == d.Rollup {
				decision, sql = "chosen", d.SQL
				if !paths {
					sql = redactSQL(d.SQL)
				}
			}
		}
		rows = append(rows, []any{c.Rollup, decision, c.Reason.String(), sql})
	}
	if len(rows) == 0 {
		reason := d.Reason.String()
		if len(d.Candidates) > 0 {
			// The reason would name a rollup the role may not know of.
			reason = rewrite.Reason{Code: rewrite.ReasonNoRollup, Message: "no rollup over tables the current role may read answers it"}.String()
		}
		rows = append(rows, []any{nil, "passthrough", reason, nil})
	}
	if a.router.staleContext(sess) {
		// Decided, in part, as if nothing were readable: the proxy reads
		// the context again and asks once more.
		return nil, proxy.ErrStaleContext
	}
	return &proxy.Result{Rows: proxy.SliceRows(rows), Tag: "EXPLAIN"}, nil
}

// RollupStatus is one row of SHOW ROLLUPS.
type RollupStatus struct {
	Name, Status, Version string
	Rows, Bytes           int64
	BuiltAt               time.Time // zero: never built
	LastError             string
	// Window is the active version's built window (its clock-relative
	// filters as folded); "" without one.
	Window string
}

// showRollupsAnswer is SHOW ROLLUPS: one row per rollup the session's
// current role may read every source table of.
type showRollupsAnswer struct {
	router   *Router
	statuses func() []RollupStatus
}

// parquetFiles matches the file list of generated SQL, and filePaths
// absolute paths and storage URLs in messages: what names a file on the
// server.
var (
	parquetFiles = regexp.MustCompile(`read_parquet\(\[[^\]]*\]`)
	filePaths    = regexp.MustCompile(`(?:file|s3|gs)://[^\s'"]+|(^|[\s'"(=:])/[^\s'")]*[^\s'"):,;.]|[^\s'"(=:]+\.parquet`)
)

// redactSQL hides the files of generated SQL from roles that are not
// superusers.
func redactSQL(s string) string { return parquetFiles.ReplaceAllString(s, "read_parquet([<files>]") }

// redactPaths hides file paths in a message from roles that are not
// superusers.
func redactPaths(s string) string { return filePaths.ReplaceAllString(s, "${1}<path>") }

func (showRollupsAnswer) Columns() []proxy.Column {
	int8Column := func(name string) proxy.Column {
		return proxy.Column{Name: name, TypeOID: pgtype.Int8OID, TypeSize: 8, Typmod: -1}
	}
	return []proxy.Column{
		textColumn("name"), textColumn("status"), textColumn("version"),
		int8Column("rows"), int8Column("bytes"),
		{Name: "built_at", TypeOID: pgtype.TimestamptzOID, TypeSize: 8, Typmod: -1},
		textColumn("last_error"), textColumn("window"),
	}
}

func (showRollupsAnswer) ParamTypes() []uint32 { return nil }

func (a showRollupsAnswer) Run(_ context.Context, sess *proxy.SessionInfo, _ []proxy.Param) (*proxy.Result, error) {
	visible, paths := a.router.visibility(a.router.catalog.Load(), sess)
	var rows [][]any
	for _, r := range a.statuses() {
		if !visible(r.Name) {
			continue
		}
		if !paths {
			r.LastError = redactPaths(r.LastError)
		}
		row := []any{r.Name, r.Status, nil, r.Rows, r.Bytes, nil, nil, nil}
		if r.Version != "" {
			row[2] = r.Version
		}
		if !r.BuiltAt.IsZero() {
			row[5] = r.BuiltAt.Truncate(time.Microsecond)
		}
		if r.LastError != "" {
			row[6] = r.LastError
		}
		if r.Window != "" {
			row[7] = r.Window
		}
		rows = append(rows, row)
	}
	if a.router.staleContext(sess) {
		return nil, proxy.ErrStaleContext
	}
	return &proxy.Result{Rows: proxy.SliceRows(rows), Tag: "SHOW"}, nil
}
