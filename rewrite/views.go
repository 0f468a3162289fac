package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// An inline view is a subquery in FROM that only picks rows and columns of
// one table: Superset's virtual datasets, SELECT ... FROM (SELECT * FROM
// orders WHERE ...) AS virtual_table, and simple CTEs. Such a statement
// equals the same statement over the table itself, with the view's alias
// naming the table, the view's WHERE added to the outer one, and only the
// view's columns visible.

// inlineView is one such subquery.
type inlineView struct {
	table *tableRef
	where *expr
	// names are the columns the view selects; nil when it selects *.
	names map[string]bool
}

// inlineViewOf recognises an inline view; ok is false when rs is another
// subquery (an aggregate: a wrapper).
func inlineViewOf(rs *pg_query.RangeSubselect) (*inlineView, bool, error) {
	inner := rs.Subquery.GetSelectStmt()
	if inner == nil || len(inner.FromClause) != 1 || inner.FromClause[0].GetRangeVar() == nil {
		return nil, false, nil
	}
	for _, t := range inner.TargetList {
		if rt := t.GetResTarget(); rt == nil || rt.Val.GetColumnRef() == nil {
			return nil, false, nil // computed columns or aggregates
		}
	}
	if len(inner.GroupClause) > 0 || inner.HavingClause != nil || len(inner.DistinctClause) > 0 {
		return nil, false, nil
	}
	if err := checkPlain(inner); err != nil {
		return nil, true, err
	}
	switch {
	case rs.Lateral:
		return nil, true, unsupported(ReasonSubquery, "LATERAL subqueries are not answered from rollups")
	case rs.Alias == nil:
		return nil, true, unsupported(ReasonShape, "a subquery in FROM must have an alias")
	case len(rs.Alias.Colnames) > 0:
		return nil, true, unsupported(ReasonShape, "column aliases on a subquery are not supported")
	case len(inner.SortClause) > 0 || inner.LimitCount != nil || inner.LimitOffset != nil:
		return nil, true, unsupported(ReasonShape, "ORDER BY, LIMIT and OFFSET inside a subquery in FROM are not answered from rollups")
	}
	rv := inner.FromClause[0].GetRangeVar()
	if rv.Catalogname != "" {
		return nil, true, unsupported(ReasonShape, "database-qualified table names are passed through")
	}
	if !rv.Inh {
		return nil, true, unsupported(ReasonShape, "FROM ONLY is passed through")
	}
	// The names the view's own clauses may qualify the table's columns with.
	own := func(q []string) bool {
		switch len(q) {
		case 0:
			return true
		case 1:
			if rv.Alias != nil {
				return q[0] == rv.Alias.Aliasname
			}
			return q[0] == rv.Relname
		case 2:
			return rv.Alias == nil && rv.Schemaname != "" && q[0] == rv.Schemaname && q[1] == rv.Relname
		}
		return false
	}
	if rv.Alias != nil && len(rv.Alias.Colnames) > 0 {
		return nil, true, unsupported(ReasonShape, "column aliases on a table are not supported")
	}
	v := &inlineView{table: &tableRef{schema: rv.Schemaname, name: rv.Relname, alias: rs.Alias.Aliasname, view: true}}
	for _, t := range inner.TargetList {
		rt := t.GetResTarget()
		e, err := convert(rt.Val)
		if err != nil {
			return nil, true, err
		}
		if !own(e.qual) {
			return nil, true, unsupported(ReasonUnknownColumn, "missing FROM-clause entry in the subquery for %s", dotted(e))
		}
		if e.kind == kStar {
			if len(inner.TargetList) != 1 {
				return nil, true, unsupported(ReasonShape, "a subquery selecting * and more columns is not answered from rollups")
			}
			continue
		}
		if rt.Name != "" && rt.Name != e.name {
			return nil, true, unsupported(ReasonShape, "a subquery renaming columns is not answered from rollups")
		}
		if v.names == nil {
			v.names = map[string]bool{}
		}
		if v.names[e.name] {
			return nil, true, unsupported(ReasonShape, "a subquery selecting column %s twice is not answered from rollups", e.name)
		}
		v.names[e.name] = true
		v.table.viewCols = append(v.table.viewCols, &expr{kind: kCol, name: e.name})
	}
	if inner.WhereClause != nil {
		w, err := convert(inner.WhereClause)
		if err != nil {
			return nil, true, err
		}
		var bad *expr
		walk(w, func(x *expr) bool {
			if x.kind == kCol && bad == nil {
				if !own(x.qual) {
					bad = x
				}
				x.qual = nil // one table: unqualified names are its columns
			}
			return bad == nil
		})
		if bad != nil {
			return nil, true, unsupported(ReasonUnknownColumn, "missing FROM-clause entry in the subquery for %s", dotted(bad))
		}
		v.where = w
	}
	return v, true, nil
}

// apply checks the outer statement's column references against the view's
// columns, and adds the view's WHERE.
func (v *inlineView) apply(core *selectCore) error {
	if v.names != nil {
		visible := func(e *expr) error {
			var err error
			walk(e, func(x *expr) bool {
				if x.kind == kCol && err == nil && (len(x.qual) == 0 || (len(x.qual) == 1 && x.qual[0] == v.table.alias)) && !v.names[x.name] {
					err = unsupported(ReasonUnknownColumn, "column %s does not exist", dotted(x))
				}
				return err == nil
			})
			return err
		}
		for _, t := range core.targets {
			if err := visible(t.expr); err != nil {
				return err
			}
		}
		for _, e := range []*expr{core.where, core.having} {
			if err := visible(e); err != nil {
				return err
			}
		}
		// GROUP BY a name: the view's column, else an output column (by
		// position, so that it does not find a column the view hides).
		for i, g := range core.groupBy {
			if g.kind == kCol && len(g.qual) == 0 && !v.names[g.name] {
				if n := outputIndex(core.targets, g.name); n >= 0 {
					core.groupBy[i] = &expr{kind: kConst, lit: litInt, str: itoa(n + 1)}
					continue
				}
			}
			if err := visible(g); err != nil {
				return err
			}
		}
		// ORDER BY a name: an output column, else the view's column.
		for _, o := range core.orderBy {
			if o.expr.kind == kCol && len(o.expr.qual) == 0 && outputIndex(core.targets, o.expr.name) != -1 {
				continue
			}
			if err := visible(o.expr); err != nil {
				return err
			}
		}
	}
	if v.where != nil {
		if core.where == nil {
			core.where = v.where
		} else {
			core.where = &expr{kind: kAnd, args: []*expr{core.where, v.where}}
		}
	}
	return nil
}

// inlineCTE turns WITH t AS (SELECT ...) SELECT ... FROM t into the same
// statement with the CTE as a subquery in FROM. Only one non-recursive CTE,
// referenced once as the only FROM item, is inlined: Postgres analyses a CTE
// even when nothing reads it, so an unread one may hold an error Postgres
// must report.
func inlineCTE(s *pg_query.SelectStmt) (*pg_query.SelectStmt, error) {
	w := s.WithClause
	if w.Recursive {
		return nil, unsupported(ReasonCTE, "WITH RECURSIVE is not answered from rollups")
	}
	if len(w.Ctes) != 1 {
		return nil, unsupported(ReasonCTE, "only a single WITH query is inlined")
	}
	cte := w.Ctes[0].GetCommonTableExpr()
	if cte == nil || len(cte.Aliascolnames) > 0 || cte.SearchClause != nil || cte.CycleClause != nil {
		return nil, unsupported(ReasonCTE, "WITH queries with column lists, SEARCH or CYCLE are not inlined")
	}
	if cte.Ctequery.GetSelectStmt() == nil {
		return nil, unsupported(ReasonCTE, "only SELECT queries in WITH are inlined")
	}
	if s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		return nil, unsupported(ReasonSetOp, "UNION, INTERSECT and EXCEPT are not answered from rollups")
	}
	if len(s.FromClause) != 1 || s.FromClause[0].GetRangeVar() == nil {
		return nil, unsupported(ReasonCTE, "a WITH query is inlined only when it is the statement's only FROM item")
	}
	rv := s.FromClause[0].GetRangeVar()
	if rv.Schemaname != "" || rv.Catalogname != "" || rv.Relname != cte.Ctename || !rv.Inh {
		return nil, unsupported(ReasonCTE, "a WITH query is inlined only when it is the statement's only FROM item")
	}
	alias := rv.Alias
	if alias == nil {
		alias = &pg_query.Alias{Aliasname: cte.Ctename}
	}
	// The parse tree is shared (the proxy caches it): change a copy.
	out := proto.Clone(s).(*pg_query.SelectStmt)
	out.WithClause = nil
	out.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: proto.Clone(cte.Ctequery).(*pg_query.Node), Alias: alias,
	}}}}
	return out, nil
}
