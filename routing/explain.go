package routing

import (
	"context"
	"time"

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
	return &pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: ex.Query}}}, true
}

// isShowRollups recognises SHOW ROLLUPS.
func isShowRollups(tree *pg_query.ParseResult) bool {
	if len(tree.Stmts) != 1 {
		return false
	}
	show := tree.Stmts[0].Stmt.GetVariableShowStmt()
	return show != nil && show.Name == "rollups"
}

func (r *Router) explain(snap *snapshot, inner *pg_query.ParseResult, sess *proxy.Session) proxy.Decision {
	d := rewrite.DecideAnalysis(rewrite.Analyze(inner), r.session(context.Background(), snap, sess), snap.cat)
	return proxy.Decision{Route: proxy.RouteAdmin, Answer: explainAnswer{d}}
}

// explainAnswer is EXPLAIN (ROLLUP)'s result: a row per candidate rollup
// with its decision and reason, the chosen one first with the rewritten SQL;
// a single row with the reason when no rollup was a candidate.
type explainAnswer struct{ d rewrite.Decision }

func textColumn(name string) proxy.Column {
	return proxy.Column{Name: name, TypeOID: rewrite.OIDText, TypeSize: -1, Typmod: -1}
}

func (explainAnswer) Columns() []proxy.Column {
	return []proxy.Column{textColumn("rollup"), textColumn("decision"), textColumn("reason"), textColumn("sql")}
}

func (explainAnswer) ParamTypes() []uint32 { return nil }

func (a explainAnswer) Run(context.Context, *proxy.Session, []proxy.Param) (*proxy.Result, error) {
	var rows [][]any
	for _, c := range a.d.Candidates {
		decision, sql := "reject", any(nil)
		if c.Match {
			decision = "match"
			if a.d.Route == rewrite.RouteRollup && c.Rollup == a.d.Rollup {
				decision, sql = "chosen", a.d.SQL
			}
		}
		rows = append(rows, []any{c.Rollup, decision, c.Reason.String(), sql})
	}
	if len(rows) == 0 {
		rows = append(rows, []any{nil, "passthrough", a.d.Reason.String(), nil})
	}
	return &proxy.Result{Rows: proxy.SliceRows(rows), Tag: "EXPLAIN"}, nil
}

// RollupStatus is one row of SHOW ROLLUPS.
type RollupStatus struct {
	Name, Status, Version string
	Rows, Bytes           int64
	BuiltAt               time.Time // zero: never built
	LastError             string
}

// showRollupsAnswer is SHOW ROLLUPS: one row per rollup.
type showRollupsAnswer struct{ statuses func() []RollupStatus }

func (showRollupsAnswer) Columns() []proxy.Column {
	int8Column := func(name string) proxy.Column {
		return proxy.Column{Name: name, TypeOID: rewrite.OIDInt8, TypeSize: 8, Typmod: -1}
	}
	return []proxy.Column{
		textColumn("name"), textColumn("status"), textColumn("version"),
		int8Column("rows"), int8Column("bytes"),
		{Name: "built_at", TypeOID: rewrite.OIDTimestamptz, TypeSize: 8, Typmod: -1},
		textColumn("last_error"),
	}
}

func (showRollupsAnswer) ParamTypes() []uint32 { return nil }

func (a showRollupsAnswer) Run(context.Context, *proxy.Session, []proxy.Param) (*proxy.Result, error) {
	var rows [][]any
	for _, r := range a.statuses() {
		row := []any{r.Name, r.Status, nil, r.Rows, r.Bytes, nil, nil}
		if r.Version != "" {
			row[2] = r.Version
		}
		if !r.BuiltAt.IsZero() {
			row[5] = r.BuiltAt.Truncate(time.Microsecond)
		}
		if r.LastError != "" {
			row[6] = r.LastError
		}
		rows = append(rows, row)
	}
	return &proxy.Result{Rows: proxy.SliceRows(rows), Tag: "SHOW"}, nil
}
