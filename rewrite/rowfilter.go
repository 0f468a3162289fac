package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// rowFilter converts a row-level security predicate of table (SQL over the
// table's bare column names, the session's settings already substituted as
// constants) into a filter on the range entry named alias. Postgres applies
// a policy to the rows the table yields, before any of the statement's own
// conditions; for the fact table and inner joins that is one more conjunct
// of WHERE. Anything but columns, constants, operators and immutable
// functions makes the rollup unfit: it would have to be evaluated per row
// as the session sees it.
func rowFilter(sql, table, alias string) (*expr, *Reason) {
	if sql == "" {
		return nil, reason(ReasonContext, "a row-level security policy on %s reads more than rollup columns and session settings", table)
	}
	text := "SELECT 1 WHERE " + sql
	if err := (parselimit.Limits{}).Check(text); err != nil {
		return nil, reason(ReasonContext, "the row-level security policy on %s is beyond the parse limits", table)
	}
	tree, err := pg_query.Parse(text)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt().GetWhereClause() == nil {
		return nil, reason(ReasonContext, "the row-level security policy on %s cannot be read", table)
	}
	e, err := convert(tree.Stmts[0].Stmt.GetSelectStmt().GetWhereClause())
	if err != nil {
		return nil, reason(ReasonContext, "row-level security on %s: %v", table, err)
	}
	var bad *Reason
	walk(e, func(x *expr) bool {
		switch {
		case bad != nil:
			return false
		case x.kind == kCol && len(x.qual) > 0:
			bad = reason(ReasonContext, "row-level security on %s names column %s of another relation", table, dotted(x))
		case x.kind == kCol:
			x.qual = []string{alias}
		case x.kind == kParam, x.kind == kSVF, x.kind == kStar:
			bad = reason(ReasonContext, "row-level security on %s depends on the moment it is evaluated", table)
		case x.kind == kFunc && (volatileFuncs[x.name] || x.star || x.distinct || x.filter != nil):
			bad = reason(ReasonContext, "row-level security on %s calls %s", table, x.name)
		}
		x.private = true
		return bad == nil
	})
	if bad != nil {
		return nil, bad
	}
	return e, nil
}
