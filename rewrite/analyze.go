package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Analysis is the catalog- and session-independent part of a decision: the
// statement's shape checked (rule 1) and its parts converted to the
// rewriter's expression tree. It is immutable once built and may be cached by
// statement text and shared between sessions.
type Analysis struct {
	reason *Reason // non-nil: the statement passes through whatever the catalog
	core   *selectCore
	wraps  []*wrapLayer // outer SELECT ... FROM (core) layers, innermost first
}

// Reason returns the statement-level passthrough reason, or nil when the
// statement has an answerable shape and the decision depends on the catalog.
func (a *Analysis) Reason() *Reason { return a.reason }

// tableRef is one table in FROM.
type tableRef struct {
	schema   string // as written; "" when unqualified
	name     string
	alias    string // the name columns are qualified with: alias, or the relation name
	joinType string // "" for the first table, else config.JoinInner or config.JoinLeft
	on       *expr  // explicit ON condition; nil for FROM a, b
	item     int    // the FROM list item (comma-separated) the table is in
	view     bool   // the table read through an inline view named alias
	// viewCols are the columns the inline view selects, which must exist
	// even when nothing reads them (Postgres reports them otherwise).
	viewCols []*expr
}

type target struct {
	expr *expr
	name string // the column name Postgres gives the result
}

// Null ordering in ORDER BY.
const (
	nullsDefault = iota
	nullsFirst
	nullsLast
)

type sortItem struct {
	expr  *expr
	desc  bool
	nulls int
}

// selectCore is the aggregate SELECT that a rollup may answer.
type selectCore struct {
	from     []*tableRef
	targets  []target
	where    *expr
	groupBy  []*expr
	having   *expr
	orderBy  []sortItem
	limit    *expr
	offset   *expr
	distinct bool
}

// wrapLayer is SELECT targets FROM (inner) alias ORDER BY ... LIMIT ..., the
// wrapping BI tools put around their aggregate (Metabase "source", Evidence,
// Power BI's nested levels).
type wrapLayer struct {
	alias   string
	targets []target // kStar or kCol naming inner output columns
	orderBy []sortItem
	limit   *expr
	offset  *expr
}

// Analyze checks a parsed statement's shape and converts it. It never fails:
// a statement that cannot be answered from any rollup gets an Analysis whose
// Reason says why.
func Analyze(tree *pg_query.ParseResult) *Analysis {
	if tree == nil || len(tree.Stmts) == 0 {
		return &Analysis{reason: reason(ReasonEmpty, "an empty or comment-only query is passed through")}
	}
	if len(tree.Stmts) > 1 {
		return &Analysis{reason: reason(ReasonMultiple, "a query string with %d statements is passed through whole", len(tree.Stmts))}
	}
	n := tree.Stmts[0].Stmt
	if n == nil {
		return &Analysis{reason: reason(ReasonEmpty, "an empty query is passed through")}
	}
	sel := n.GetSelectStmt()
	if sel == nil {
		switch {
		case n.GetDeclareCursorStmt() != nil, n.GetFetchStmt() != nil, n.GetClosePortalStmt() != nil:
			return &Analysis{reason: reason(ReasonCursor, "cursors are passed through whole")}
		}
		return &Analysis{reason: reason(ReasonNotSelect, "only SELECT statements are answered from rollups")}
	}
	a := &Analysis{}
	if sel.WithClause != nil {
		inlined, err := inlineCTE(sel)
		if err != nil {
			a.reason = asReason(err)
			return a
		}
		sel = inlined
	}
	core, wraps, err := analyzeSelect(sel)
	if err != nil {
		a.reason = asReason(err)
		return a
	}
	a.core, a.wraps = core, wraps
	return a
}

// checkPlain rejects the parts of a SELECT no rollup answers.
func checkPlain(s *pg_query.SelectStmt) error {
	switch {
	case s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		return unsupported(ReasonSetOp, "UNION, INTERSECT and EXCEPT are not answered from rollups")
	case s.IntoClause != nil:
		return unsupported(ReasonNotSelect, "SELECT INTO creates a table and is passed through")
	case len(s.ValuesLists) > 0:
		return unsupported(ReasonShape, "VALUES lists are not answered from rollups")
	case s.WithClause != nil:
		return unsupported(ReasonCTE, "WITH queries are not inlined yet; rewrite the CTE as a subquery in FROM")
	case len(s.LockingClause) > 0:
		return unsupported(ReasonLocking, "FOR UPDATE/SHARE is passed through")
	case len(s.WindowClause) > 0:
		return unsupported(ReasonWindow, "window clauses are not answered from rollups")
	case s.LimitOption == pg_query.LimitOption_LIMIT_OPTION_WITH_TIES:
		return unsupported(ReasonShape, "FETCH ... WITH TIES is not answered from rollups")
	case s.GroupDistinct:
		return unsupported(ReasonShape, "GROUP BY DISTINCT is not answered from rollups")
	}
	if len(s.DistinctClause) > 0 && !(len(s.DistinctClause) == 1 && s.DistinctClause[0] == nil) {
		for _, d := range s.DistinctClause {
			if d != nil && d.GetNode() != nil {
				return unsupported(ReasonShape, "SELECT DISTINCT ON is not answered from rollups")
			}
		}
	}
	return nil
}

func analyzeSelect(s *pg_query.SelectStmt) (*selectCore, []*wrapLayer, error) {
	if err := checkPlain(s); err != nil {
		return nil, nil, err
	}
	if len(s.FromClause) == 0 {
		return nil, nil, unsupported(ReasonNoTable, "a SELECT without FROM does not read a table")
	}
	if len(s.TargetList) == 0 {
		// Postgres returns rows of no columns; DuckDB has no such result.
		return nil, nil, unsupported(ReasonShape, "a SELECT with an empty select list is passed through")
	}
	// SELECT ... FROM (SELECT cols FROM table WHERE ...) alias: an inline
	// view; SELECT cols FROM (<aggregate>) alias [ORDER BY] [LIMIT]: a wrapper.
	var view *inlineView
	if len(s.FromClause) == 1 {
		if rs := s.FromClause[0].GetRangeSubselect(); rs != nil {
			v, ok, err := inlineViewOf(rs)
			switch {
			case err != nil:
				return nil, nil, err
			case !ok:
				return analyzeWrapper(s, rs)
			}
			view = v
		}
	}
	core := &selectCore{distinct: len(s.DistinctClause) > 0}
	if view != nil {
		core.from = []*tableRef{view.table}
	} else if err := flattenFrom(s.FromClause, core); err != nil {
		return nil, nil, err
	}
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 {
			return nil, nil, unsupported(ReasonShape, "unsupported select-list item")
		}
		e, err := convert(rt.Val)
		if err != nil {
			return nil, nil, err
		}
		if e.kind == kStar {
			return nil, nil, unsupported(ReasonNoAggregate, "SELECT * reads raw rows; only aggregates are answered from rollups")
		}
		core.targets = append(core.targets, target{expr: e, name: figureColname(e, rt.Name)})
	}
	var err error
	if s.WhereClause != nil {
		if core.where, err = convert(s.WhereClause); err != nil {
			return nil, nil, err
		}
	}
	for _, g := range s.GroupClause {
		if g.GetGroupingSet() != nil {
			return nil, nil, unsupported(ReasonShape, "GROUPING SETS, ROLLUP and CUBE are not answered from rollups")
		}
		e, err := convert(g)
		if err != nil {
			return nil, nil, err
		}
		core.groupBy = append(core.groupBy, e)
	}
	if s.HavingClause != nil {
		if core.having, err = convert(s.HavingClause); err != nil {
			return nil, nil, err
		}
	}
	if core.orderBy, err = convertSort(s.SortClause); err != nil {
		return nil, nil, err
	}
	if core.limit, core.offset, err = convertLimit(s); err != nil {
		return nil, nil, err
	}
	if view != nil {
		if err := view.apply(core); err != nil {
			return nil, nil, err
		}
	}
	if !core.distinct && len(core.groupBy) == 0 && core.having == nil && !hasAggregate(core) {
		return nil, nil, unsupported(ReasonNoAggregate, "the query reads raw rows; only aggregates, GROUP BY and SELECT DISTINCT are answered from rollups")
	}
	return core, nil, nil
}

func hasAggregate(c *selectCore) bool {
	found := false
	for _, t := range c.targets {
		walk(t.expr, func(e *expr) bool {
			if e.kind == kFunc && aggregateFuncs[e.name] {
				found = true
			}
			return !found
		})
	}
	return found
}

func analyzeWrapper(s *pg_query.SelectStmt, rs *pg_query.RangeSubselect) (*selectCore, []*wrapLayer, error) {
	if rs.Lateral {
		return nil, nil, unsupported(ReasonSubquery, "LATERAL subqueries are not answered from rollups")
	}
	if s.WhereClause != nil || len(s.GroupClause) > 0 || s.HavingClause != nil || len(s.DistinctClause) > 0 {
		return nil, nil, unsupported(ReasonShape, "only ORDER BY and LIMIT are supported around a subquery in FROM")
	}
	inner := rs.Subquery.GetSelectStmt()
	if inner == nil {
		return nil, nil, unsupported(ReasonShape, "unsupported subquery in FROM")
	}
	if rs.Alias != nil && len(rs.Alias.Colnames) > 0 {
		return nil, nil, unsupported(ReasonShape, "column aliases on a subquery are not supported")
	}
	core, wraps, err := analyzeSelect(inner)
	if err != nil {
		return nil, nil, err
	}
	w := &wrapLayer{}
	if rs.Alias != nil {
		w.alias = rs.Alias.Aliasname
	}
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 {
			return nil, nil, unsupported(ReasonShape, "unsupported select-list item")
		}
		e, err := convert(rt.Val)
		if err != nil {
			return nil, nil, err
		}
		if e.kind != kStar && e.kind != kCol {
			return nil, nil, unsupported(ReasonExpression, "only plain columns may be selected from a subquery")
		}
		w.targets = append(w.targets, target{expr: e, name: figureColname(e, rt.Name)})
	}
	if w.orderBy, err = convertSort(s.SortClause); err != nil {
		return nil, nil, err
	}
	if w.limit, w.offset, err = convertLimit(s); err != nil {
		return nil, nil, err
	}
	return core, append(wraps, w), nil
}

// flattenFrom reads FROM into a list of tables: the first one plus joins.
func flattenFrom(items []*pg_query.Node, core *selectCore) error {
	for i, it := range items {
		n := len(core.from)
		if err := flattenItem(it, core, i > 0); err != nil {
			return err
		}
		for _, t := range core.from[n:] {
			t.item = i
		}
	}
	return nil
}

func flattenItem(n *pg_query.Node, core *selectCore, implicit bool) error {
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		if rv.Catalogname != "" {
			return unsupported(ReasonShape, "database-qualified table names are passed through")
		}
		if !rv.Inh {
			return unsupported(ReasonShape, "FROM ONLY is passed through")
		}
		t := &tableRef{schema: rv.Schemaname, name: rv.Relname, alias: rv.Relname}
		if rv.Alias != nil {
			if len(rv.Alias.Colnames) > 0 {
				return unsupported(ReasonShape, "column aliases on a table are not supported")
			}
			t.alias = rv.Alias.Aliasname
		}
		if implicit {
			t.joinType = "inner"
		}
		core.from = append(core.from, t)
		return nil
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		if j.IsNatural || len(j.UsingClause) > 0 || j.Alias != nil || j.JoinUsingAlias != nil {
			return unsupported(ReasonJoin, "NATURAL, USING and aliased joins are not answered from rollups; write JOIN ... ON")
		}
		var jt string
		switch j.Jointype {
		case pg_query.JoinType_JOIN_INNER:
			jt = "inner"
		case pg_query.JoinType_JOIN_LEFT:
			jt = "left"
		default:
			return unsupported(ReasonJoin, "only INNER and LEFT joins are answered from rollups")
		}
		if j.Quals == nil {
			return unsupported(ReasonJoin, "CROSS JOIN is not answered from rollups")
		}
		if err := flattenItem(j.Larg, core, implicit); err != nil {
			return err
		}
		if j.Rarg.GetRangeVar() == nil {
			return unsupported(ReasonJoin, "only joins of plain tables are answered from rollups")
		}
		if err := flattenItem(j.Rarg, core, false); err != nil {
			return err
		}
		on, err := convert(j.Quals)
		if err != nil {
			return err
		}
		last := core.from[len(core.from)-1]
		last.joinType, last.on = jt, on
		return nil
	case n.GetRangeSubselect() != nil:
		return unsupported(ReasonSubquery, "a subquery joined with other tables is not answered from rollups")
	case n.GetRangeFunction() != nil:
		return unsupported(ReasonShape, "set-returning functions in FROM are not answered from rollups")
	}
	return unsupported(ReasonShape, "unsupported FROM item")
}

func convertSort(items []*pg_query.Node) ([]sortItem, error) {
	var out []sortItem
	for _, it := range items {
		sb := it.GetSortBy()
		if sb == nil || sb.SortbyDir == pg_query.SortByDir_SORTBY_USING {
			return nil, unsupported(ReasonShape, "ORDER BY ... USING is not supported")
		}
		e, err := convert(sb.Node)
		if err != nil {
			return nil, err
		}
		s := sortItem{expr: e, desc: sb.SortbyDir == pg_query.SortByDir_SORTBY_DESC}
		switch sb.SortbyNulls {
		case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
			s.nulls = nullsFirst
		case pg_query.SortByNulls_SORTBY_NULLS_LAST:
			s.nulls = nullsLast
		}
		out = append(out, s)
	}
	return out, nil
}

func convertLimit(s *pg_query.SelectStmt) (limit, offset *expr, err error) {
	if s.LimitCount != nil {
		if limit, err = convert(s.LimitCount); err != nil {
			return nil, nil, err
		}
	}
	if s.LimitOffset != nil {
		if offset, err = convert(s.LimitOffset); err != nil {
			return nil, nil, err
		}
	}
	return limit, offset, nil
}

// figureColname names a result column the way Postgres's FigureColname does.
func figureColname(e *expr, explicit string) string {
	if explicit != "" {
		return explicit
	}
	name, _ := figureColnameInternal(e)
	if name == "" {
		return "?column?"
	}
	return name
}

// figureColnameInternal returns a name and its strength (0 none, 1 weak, 2 strong).
func figureColnameInternal(e *expr) (string, int) {
	switch e.kind {
	case kCol:
		return e.name, 2
	case kFunc:
		return e.name, 2
	case kCast:
		if e.name != "" {
			return e.name, 2 // written as a call: date(x)
		}
		name, s := figureColnameInternal(e.args[0])
		if s <= 1 {
			return e.typName, 1
		}
		return name, s
	case kCase:
		if e.args[len(e.args)-1] != nil {
			// Postgres prefers a name found in ELSE, with strength 2.
			if n, s := figureColnameInternal(e.args[len(e.args)-1]); s == 2 {
				return n, s
			}
		}
		return "case", 1
	case kCoalesce:
		return "coalesce", 2
	case kNullIf:
		return "nullif", 2
	case kMinMax:
		return e.name, 2
	case kSVF:
		return e.name, 2
	case kCollate:
		return figureColnameInternal(e.args[0])
	}
	return "", 0
}
