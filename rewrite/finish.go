package rewrite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// The warehouse finishes what DuckDB cannot: a statement whose aggregate
// core a rollup answers exactly, wrapped in what DuckDB cannot reproduce
// (a CTE or subquery around it, row_to_json, window functions over the
// aggregate, to_char, HAVING, ORDER BY text under the warehouse's
// collation), is sent to the warehouse with the core replaced by its rows,
// written as a typed VALUES list. Everything outside the core is then
// Postgres's own.
//
// A core is one of:
//   - a CTE body or a subquery in FROM, as it is (Malloy's __stage0,
//     Metabase's "source", Superset's virtual datasets);
//   - a SELECT with GROUP BY or aggregates split in two: the core selects
//     the grouping expressions and the aggregate calls, and the SELECT
//     around it computes the rest from their values, row by row, since each
//     of the core's rows is one group.

// FinishCore is an aggregate core of a statement and the statement around it.
type FinishCore struct {
	// SQL is the core's text, which is decided like any statement.
	SQL string
	// Tree is its parse tree.
	Tree *pg_query.ParseResult
	// Kind says where the core sits: "cte", "subquery" or "split".
	Kind string
	// Origins maps each of the statement's output columns to the core
	// column whose origin (table and column, as RowDescription names them)
	// Postgres reports for it, or -1 when it reports none. The finished
	// statement reads the core from a VALUES list, which has no origin, so
	// the proxy sets them as Postgres would.
	Origins []int
	// outer is the statement with the core's place marked by
	// finishPlaceholder.
	outer string
}

// finishPlaceholder marks the core's place in the deparsed statement; a
// statement that itself contains the word is not finished.
const finishPlaceholder = "pgrollup_finish_core_7c2e9a"

// Core output columns of a split, named so no statement's own names meet them.
const (
	finishKey = "pgrollup_k"
	finishAgg = "pgrollup_a"
)

// AnsweredCore is the first of cores that decide answers from a rollup and
// whose columns can all be written back to the warehouse with their exact
// types, with that decision; nil when there is none.
func AnsweredCore(cores []*FinishCore, decide func(*FinishCore) Decision) (*FinishCore, Decision) {
	for _, c := range cores {
		d := decide(c)
		if d.Outcome != OutcomeRollup {
			continue
		}
		if _, err := c.FinishStatement(d.Columns, nil); err == nil {
			return c, d
		}
	}
	return nil, Decision{}
}

// FinishCores lists the aggregate cores of a SELECT that the warehouse could
// finish, outermost first; nil when the statement has none, or has
// parameters (its core would need their values, which come only at Bind).
func FinishCores(tree *pg_query.ParseResult) []*FinishCore {
	if tree == nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return nil
	}
	tree = proto.Clone(tree).(*pg_query.ParseResult)
	top := tree.Stmts[0].Stmt
	ctes := map[string]bool{}
	locks, params := false, false
	WalkMessages(tree.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.CommonTableExpr:
			ctes[x.Ctename] = true
		case *pg_query.LockingClause, *pg_query.IntoClause:
			locks = true
		case *pg_query.ParamRef:
			params = true
		}
	})
	if locks || params {
		// FOR UPDATE and SELECT INTO do what a VALUES list cannot; a
		// core with parameters is decided only at Bind.
		return nil
	}
	for _, sl := range finishSlots(top, "") {
		if badOrdinal(sl.node.GetSelectStmt()) {
			// Postgres's error would point into the finished statement's
			// text, not the client's.
			return nil
		}
	}
	// Outside a split of the statement itself, its output columns must be
	// expressions that Postgres gives no origin, whatever they read.
	topSel := top.GetSelectStmt()
	nested, ok := outputOrigins(topSel.TargetList, nil)
	var out []*FinishCore
	for _, sl := range finishSlots(top, "") {
		if c := asIsCore(tree, sl, ctes); c != nil && sl.kind != "" {
			if origins, direct := subqueryOrigins(topSel, sl); direct {
				c.Origins = origins
				out = append(out, c)
			} else if ok {
				c.Origins = nested
				out = append(out, c)
			}
		}
		c := splitCore(tree, sl, ctes)
		switch {
		case c == nil:
		case sl.kind == "":
			out = append(out, c)
		default:
			// Through a subquery, the statement's column is the split
			// SELECT's, whose origin is its core column's.
			if through, direct := subqueryOrigins(topSel, sl); direct && c.Origins != nil {
				for i, j := range through {
					if j >= 0 {
						through[i] = c.Origins[j]
					}
				}
				c.Origins = through
				out = append(out, c)
			} else if ok {
				c.Origins = nested
				out = append(out, c)
			}
		}
	}
	return out
}

// subqueryOrigins maps the output columns of a statement that reads only
// the subquery of sl (Metabase's "source", Superset's virtual table) to
// the subquery's columns they name, which Postgres describes with the
// subquery's origins. direct is false for any other statement, or an
// output column it cannot map.
func subqueryOrigins(top *pg_query.SelectStmt, sl slot) ([]int, bool) {
	if sl.kind != "subquery" || len(top.FromClause) != 1 {
		return nil, false
	}
	rs := top.FromClause[0].GetRangeSubselect()
	if rs == nil || rs.Subquery != sl.node || rs.Alias == nil || len(rs.Alias.Colnames) > 0 {
		return nil, false
	}
	var names []string
	for _, t := range sl.node.GetSelectStmt().TargetList {
		rt := t.GetResTarget()
		name := rt.GetName()
		if name == "" {
			var ok bool
			if name, ok = targetColname(rt.GetVal()); !ok {
				return nil, false
			}
		}
		names = append(names, name)
	}
	column := func(cr *pg_query.ColumnRef) (int, bool) {
		var parts []string
		for _, f := range cr.Fields {
			if f.GetString_() == nil {
				return 0, false // a star
			}
			parts = append(parts, f.GetString_().Sval)
		}
		if len(parts) == 2 && parts[0] == rs.Alias.Aliasname {
			parts = parts[1:]
		}
		if len(parts) != 1 {
			return 0, false
		}
		found := -1
		for i, n := range names {
			if n == parts[0] {
				if found >= 0 {
					return 0, false // ambiguous: Postgres says so
				}
				found = i
			}
		}
		return found, found >= 0
	}
	return outputOrigins(top.TargetList, column)
}

// badOrdinal reports an ORDER BY position beyond a SELECT's select-list.
func badOrdinal(sel *pg_query.SelectStmt) bool {
	for _, s := range sel.SortClause {
		if c := s.GetSortBy().GetNode().GetAConst(); c != nil {
			if iv := c.GetIval(); iv != nil && (iv.Ival < 1 || int(iv.Ival) > len(sel.TargetList)) {
				return true
			}
		}
	}
	return false
}

// outputOrigins maps the output columns of a select-list to the split
// core's columns they are (a grouping expression the core selects as
// pgrollup_kN is its column N-1), or -1 for an expression Postgres gives no
// origin. ok is false when an output column may be a column of a table
// through anything else: a column reference, a star, or a cast or COLLATE
// of one, which Postgres may see through.
func outputOrigins(targets []*pg_query.Node, column func(*pg_query.ColumnRef) (int, bool)) ([]int, bool) {
	out := make([]int, len(targets))
	for i, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			return nil, false
		}
		o, ok := outputOrigin(rt.Val, column)
		if !ok {
			return nil, false
		}
		out[i] = o
	}
	return out, true
}

func outputOrigin(n *pg_query.Node, column func(*pg_query.ColumnRef) (int, bool)) (int, bool) {
	switch x := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		if column != nil {
			return column(x.ColumnRef)
		}
		name, ok := bareName(n)
		var k int
		switch {
		case !ok:
			return 0, false
		case strings.HasPrefix(name, finishAgg):
			return -1, true
		case strings.HasPrefix(name, finishKey):
			if _, err := fmt.Sscanf(name[len(finishKey):], "%d", &k); err != nil || k < 1 {
				return 0, false
			}
			return k - 1, true
		}
		return 0, false
	case *pg_query.Node_TypeCast:
		if o, ok := outputOrigin(x.TypeCast.Arg, column); !ok || o >= 0 {
			// A cast to the column's own type keeps its origin; another
			// does not: only Postgres knows which this is.
			return 0, false
		}
		return -1, true
	case *pg_query.Node_CollateClause, *pg_query.Node_AIndirection:
		return 0, false
	}
	return -1, true
}

// slot is a node holding a SELECT that may be, or hold, a core.
type slot struct {
	node *pg_query.Node
	kind string // "cte", "subquery"; "" for the statement itself
}

// finishSlots lists the SELECTs in n (itself, its CTE bodies, subqueries in
// its FROM, and theirs), outermost first.
func finishSlots(n *pg_query.Node, kind string) []slot {
	sel := n.GetSelectStmt()
	if sel == nil {
		return nil
	}
	out := []slot{{node: n, kind: kind}}
	if sel.WithClause != nil {
		if sel.WithClause.Recursive {
			return out
		}
		for _, c := range sel.WithClause.Ctes {
			if cte := c.GetCommonTableExpr(); cte != nil {
				out = append(out, finishSlots(cte.Ctequery, "cte")...)
			}
		}
	}
	var from func(items []*pg_query.Node)
	from = func(items []*pg_query.Node) {
		for _, it := range items {
			switch {
			case it.GetRangeSubselect() != nil:
				if !it.GetRangeSubselect().Lateral {
					out = append(out, finishSlots(it.GetRangeSubselect().Subquery, "subquery")...)
				}
			case it.GetJoinExpr() != nil:
				from([]*pg_query.Node{it.GetJoinExpr().Larg, it.GetJoinExpr().Rarg})
			}
		}
	}
	from(sel.FromClause)
	return out
}

// placeholderSelect is the SELECT that stands for the core in the outer text.
func placeholderSelect() *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{resTarget(columnRef(finishPlaceholder), "")},
		Op:         pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}}}
}

func columnRef(name string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{
		Fields: []*pg_query.Node{{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: name}}}}}}}
}

func resTarget(val *pg_query.Node, name string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: name, Val: val, Location: -1}}}
}

// deparseSelect deparses a statement made of one SELECT node.
func deparseSelect(version int32, n *pg_query.Node) (string, error) {
	return pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: n}}})
}

// outerText deparses tree with sl's node replaced by repl for the time of
// the call, and checks that the placeholder occurs in it once.
func outerText(tree *pg_query.ParseResult, sl slot, repl *pg_query.Node) (string, bool) {
	saved := sl.node.Node
	sl.node.Node = repl.Node
	text, err := pg_query.Deparse(tree)
	sl.node.Node = saved
	if err != nil || strings.Count(text, finishPlaceholder) != 1 || !strings.Contains(text, "SELECT "+finishPlaceholder) {
		return "", false
	}
	return text, true
}

// finishedCore makes a FinishCore of a core SELECT node, or nil when its
// text does not parse back or reads a name a CTE of the statement may
// shadow.
func finishedCore(version int32, core *pg_query.Node, kind, outer string, ctes map[string]bool) *FinishCore {
	sql, err := deparseSelect(version, core)
	if err != nil || strings.Contains(sql, finishPlaceholder) {
		return nil
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil
	}
	shadowed := false
	WalkMessages(tree.ProtoReflect(), func(m protoreflect.Message) {
		if rv, ok := m.Interface().(*pg_query.RangeVar); ok && rv.Schemaname == "" && ctes[rv.Relname] {
			shadowed = true
		}
	})
	if shadowed {
		return nil
	}
	return &FinishCore{SQL: sql, Tree: tree, Kind: kind, outer: outer}
}

// asIsCore is a CTE body or subquery taken whole as the core.
func asIsCore(tree *pg_query.ParseResult, sl slot, ctes map[string]bool) *FinishCore {
	sel := sl.node.GetSelectStmt()
	if sel.WithClause != nil || !groupsOrAggregates(sel) {
		return nil
	}
	outer, ok := outerText(tree, sl, placeholderSelect())
	if !ok {
		return nil
	}
	return finishedCore(tree.Version, sl.node, sl.kind, outer, ctes)
}

// groupsOrAggregates reports whether a SELECT groups or calls an aggregate in its
// select-list: only such a SELECT can be a core.
func groupsOrAggregates(sel *pg_query.SelectStmt) bool {
	if len(sel.GroupClause) > 0 {
		return true
	}
	found := false
	for _, t := range sel.TargetList {
		WalkMessages(t.ProtoReflect(), func(m protoreflect.Message) {
			if f, ok := m.Interface().(*pg_query.FuncCall); ok && isAggregateCall(f) {
				found = true
			}
		})
	}
	return found
}

// callName is a call's function name, lower-case, when it is unqualified or
// in pg_catalog; "" otherwise.
func callName(f *pg_query.FuncCall) string {
	var parts []string
	for _, n := range f.Funcname {
		parts = append(parts, n.GetString_().GetSval())
	}
	switch {
	case len(parts) == 1:
		return strings.ToLower(parts[0])
	case len(parts) == 2 && parts[0] == "pg_catalog":
		return strings.ToLower(parts[1])
	}
	return ""
}

// isAggregateCall reports whether f is an aggregate call (not a window one).
func isAggregateCall(f *pg_query.FuncCall) bool {
	if f.Over != nil {
		return false
	}
	return aggregateFuncs[callName(f)] || f.AggStar || f.AggDistinct || f.AggFilter != nil || len(f.AggOrder) > 0 || f.AggWithinGroup
}

// finishScalarFuncs are the functions the SELECT around a split core may
// call on its values: built-in functions of one row, none of them an
// aggregate or volatile. Any other function may be an aggregate of the
// user's and is refused.
var finishScalarFuncs = map[string]bool{
	"to_char": true, "row_to_json": true, "to_json": true, "to_jsonb": true, "json_build_object": true,
	"jsonb_build_object": true, "lower": true, "upper": true, "initcap": true, "concat": true,
	"concat_ws": true, "substr": true, "substring": true, "left": true, "right": true, "length": true,
	"char_length": true, "replace": true, "btrim": true, "ltrim": true, "rtrim": true, "lpad": true,
	"rpad": true, "round": true, "trunc": true, "abs": true, "ceil": true, "ceiling": true, "floor": true,
	"sign": true, "date_trunc": true, "date_part": true, "extract": true, "format": true,
	"split_part": true, "strpos": true, "position": true, "to_date": true, "nullif": true,
	"sqrt": true, "power": true, "ln": true, "log": true, "exp": true, "mod": true, "div": true,
}

// splitCore splits the SELECT of sl into its aggregate core and the SELECT
// around it.
func splitCore(tree *pg_query.ParseResult, sl slot, ctes map[string]bool) *FinishCore {
	sel := sl.node.GetSelectStmt()
	core, outer, err := splitSelect(tree.Version, sel)
	if err != nil {
		return nil
	}
	text, ok := outerText(tree, sl, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: outer}})
	if !ok {
		return nil
	}
	c := finishedCore(tree.Version, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: core}}, "split", text, ctes)
	if c == nil {
		return nil
	}
	c.Origins, ok = outputOrigins(outer.TargetList, nil)
	if sl.kind != "" {
		c.Kind = sl.kind + " split"
		if !ok {
			c.Origins = nil
		}
		return c
	}
	if !ok {
		return nil
	}
	return c
}

var errNoSplit = errors.New("no split")

// splitSelect splits a grouped SELECT into the core (the grouping
// expressions and the aggregate calls, over the same FROM and WHERE) and
// the SELECT around it, which reads the core's rows from the placeholder.
func splitSelect(version int32, sel *pg_query.SelectStmt) (*pg_query.SelectStmt, *pg_query.SelectStmt, error) {
	if (sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED) ||
		len(sel.LockingClause) > 0 || sel.IntoClause != nil || len(sel.FromClause) == 0 || len(sel.ValuesLists) > 0 ||
		sel.GroupDistinct || !groupsOrAggregates(sel) {
		return nil, nil, errNoSplit
	}
	for _, f := range sel.FromClause {
		if !plainFrom(f) {
			return nil, nil, errNoSplit
		}
	}
	sel = proto.Clone(sel).(*pg_query.SelectStmt)
	// Grouping keys and aggregates are compared with the one table's
	// qualifier dropped.
	keyOf := func(n *pg_query.Node) (string, error) { return unqualifiedKey(version, n, sel.FromClause) }
	aliases := map[string]bool{}
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil || isStar(rt.Val) {
			return nil, nil, errNoSplit
		}
		if rt.Name != "" {
			aliases[rt.Name] = true
		}
	}
	// The grouping expressions, with GROUP BY 1 and GROUP BY alias resolved
	// to the select-list's expressions.
	var keys []*pg_query.Node
	keyIndex := map[string]int{}
	for _, g := range sel.GroupClause {
		e := g
		if c := g.GetAConst(); c != nil {
			iv := c.GetIval()
			if iv == nil || iv.Ival < 1 || int(iv.Ival) > len(sel.TargetList) {
				return nil, nil, errNoSplit
			}
			e = sel.TargetList[iv.Ival-1].GetResTarget().Val
		} else if name, ok := bareName(g); ok && aliases[name] {
			// Postgres takes an input column of that name first; the
			// core cannot tell, unless the alias names that very column.
			for _, t := range sel.TargetList {
				if rt := t.GetResTarget(); rt.Name == name {
					if n2, ok := bareName(rt.Val); !ok || n2 != name {
						return nil, nil, errNoSplit
					}
				}
			}
		}
		if g.GetGroupingSet() != nil || e.GetAConst() != nil {
			return nil, nil, errNoSplit
		}
		k, err := keyOf(e)
		if err != nil {
			return nil, nil, errNoSplit
		}
		if _, dup := keyIndex[k]; dup {
			continue
		}
		keyIndex[k] = len(keys)
		keys = append(keys, proto.Clone(e).(*pg_query.Node))
	}
	var aggs []*pg_query.Node
	aggIndex := map[string]int{}
	replace := func(n *pg_query.Node) *pg_query.Node {
		if f := n.GetFuncCall(); f != nil && isAggregateCall(f) {
			k, err := keyOf(n)
			if err != nil {
				return nil
			}
			i, ok := aggIndex[k]
			if !ok {
				i = len(aggs)
				aggIndex[k] = i
				aggs = append(aggs, n)
			}
			return columnRef(fmt.Sprintf("%s%d", finishAgg, i+1))
		}
		if isExpression(n) {
			if k, err := keyOf(n); err == nil {
				if i, ok := keyIndex[k]; ok {
					return columnRef(fmt.Sprintf("%s%d", finishKey, i+1))
				}
			}
		}
		return nil
	}
	outer := &pg_query.SelectStmt{
		TargetList:     sel.TargetList,
		DistinctClause: sel.DistinctClause,
		WhereClause:    sel.HavingClause, // each of the core's rows is one group
		WindowClause:   sel.WindowClause,
		SortClause:     sel.SortClause,
		LimitOffset:    sel.LimitOffset,
		LimitCount:     sel.LimitCount,
		LimitOption:    sel.LimitOption,
		WithClause:     sel.WithClause,
		Op:             pg_query.SetOperation_SETOP_NONE,
		FromClause: []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
			Subquery: placeholderSelect(), Alias: &pg_query.Alias{Aliasname: "pgrollup_core"}}}}},
	}
	// Each target keeps the name Postgres gives it, which its expression
	// loses once it reads the core's columns.
	for _, t := range outer.TargetList {
		rt := t.GetResTarget()
		if rt.Name == "" {
			name, ok := targetColname(rt.Val)
			if !ok {
				return nil, nil, errNoSplit
			}
			rt.Name = name
			aliases[name] = true
		}
	}
	parts := []protoreflect.Message{}
	for _, ns := range [][]*pg_query.Node{outer.TargetList, outer.DistinctClause, outer.WindowClause, outer.SortClause} {
		for _, n := range ns {
			if n == nil {
				continue
			}
			if sb := n.GetSortBy(); sb != nil {
				if name, ok := bareName(sb.Node); ok && aliases[name] {
					// ORDER BY a bare name means the output column of
					// that name first, as it still does around the core.
					continue
				}
			}
			parts = append(parts, n.ProtoReflect())
		}
	}
	var where *pg_query.ResTarget
	if outer.WhereClause != nil {
		where = &pg_query.ResTarget{Val: outer.WhereClause}
		parts = append(parts, where.ProtoReflect())
	}
	for _, p := range parts {
		replaceNodes(p, replace)
	}
	if where != nil {
		outer.WhereClause = where.Val
	}
	// What is left must be computable from the core's columns, row by row.
	if err := checkOuter(outer, aliases); err != nil {
		return nil, nil, err
	}
	core := &pg_query.SelectStmt{
		FromClause:  sel.FromClause,
		WhereClause: sel.WhereClause,
		GroupClause: keys,
		Op:          pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}
	for i, k := range keys {
		core.TargetList = append(core.TargetList, resTarget(proto.Clone(k).(*pg_query.Node), fmt.Sprintf("%s%d", finishKey, i+1)))
	}
	for i, a := range aggs {
		core.TargetList = append(core.TargetList, resTarget(a, fmt.Sprintf("%s%d", finishAgg, i+1)))
	}
	if len(sel.GroupClause) > 0 && len(keys) == 0 {
		return nil, nil, errNoSplit
	}
	return core, outer, nil
}

// targetColname is the name Postgres gives a select-list entry without an
// alias (FigureColname in its parser), for the expressions it names; ok is
// false for others.
func targetColname(n *pg_query.Node) (string, bool) {
	name, strength := targetColnameStrength(n)
	if strength < 0 {
		return "", false
	}
	if strength == 0 {
		return "?column?", true
	}
	return name, true
}

// targetColnameStrength is FigureColnameInternal: the name and how strongly
// it holds (2 for a column or function, 1 for a fallback, 0 for none); -1
// for an expression it does not know.
func targetColnameStrength(n *pg_query.Node) (string, int) {
	switch x := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		if f := x.ColumnRef.Fields; len(f) > 0 && f[len(f)-1].GetString_() != nil {
			return f[len(f)-1].GetString_().Sval, 2
		}
		return "", -1
	case *pg_query.Node_FuncCall:
		f := x.FuncCall.Funcname
		return f[len(f)-1].GetString_().GetSval(), 2
	case *pg_query.Node_TypeCast:
		name, s := targetColnameStrength(x.TypeCast.Arg)
		if s < 0 {
			return "", -1
		}
		if s <= 1 && x.TypeCast.TypeName != nil && len(x.TypeCast.TypeName.Names) > 0 {
			names := x.TypeCast.TypeName.Names
			return names[len(names)-1].GetString_().GetSval(), 1
		}
		return name, s
	case *pg_query.Node_CollateClause:
		return targetColnameStrength(x.CollateClause.Arg)
	case *pg_query.Node_CaseExpr:
		if d := x.CaseExpr.Defresult; d != nil {
			if name, s := targetColnameStrength(d); s == 2 {
				return name, s
			}
		}
		return "case", 1
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2
	case *pg_query.Node_MinMaxExpr:
		if x.MinMaxExpr.Op == pg_query.MinMaxOp_IS_GREATEST {
			return "greatest", 2
		}
		return "least", 2
	case *pg_query.Node_AExpr:
		if x.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
		return "", 0
	case *pg_query.Node_BoolExpr, *pg_query.Node_NullTest, *pg_query.Node_AConst:
		return "", 0
	}
	return "", -1
}

// plainFrom reports whether a FROM item is tables and joins of tables only.
func plainFrom(n *pg_query.Node) bool {
	switch {
	case n.GetRangeVar() != nil:
		return true
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		return plainFrom(j.Larg) && plainFrom(j.Rarg)
	}
	return false
}

func isStar(n *pg_query.Node) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	for _, f := range cr.Fields {
		if f.GetAStar() != nil {
			return true
		}
	}
	return false
}

func bareName(n *pg_query.Node) (string, bool) {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 || cr.Fields[0].GetString_() == nil {
		return "", false
	}
	return cr.Fields[0].GetString_().Sval, true
}

// isExpression reports whether n is a value expression that deparses alone.
func isExpression(n *pg_query.Node) bool {
	switch n.Node.(type) {
	case *pg_query.Node_ColumnRef, *pg_query.Node_FuncCall, *pg_query.Node_AExpr, *pg_query.Node_TypeCast,
		*pg_query.Node_CoalesceExpr, *pg_query.Node_CaseExpr, *pg_query.Node_MinMaxExpr, *pg_query.Node_BoolExpr,
		*pg_query.Node_NullTest, *pg_query.Node_SqlvalueFunction, *pg_query.Node_CollateClause:
		return true
	}
	return false
}

// exprKey identifies an expression by its deparsed text, which ignores the
// positions the parse tree records.
func exprKey(version int32, n *pg_query.Node) (string, error) {
	sel := &pg_query.SelectStmt{TargetList: []*pg_query.Node{resTarget(n, "")}, Op: pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT}
	return deparseSelect(version, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
}

// unqualifiedKey is exprKey with column references qualified by the one
// table of from (its alias, else its name, with or without its schema)
// written bare: with a single table they name the same column, so GROUP BY
// "status" and ORDER BY "orders"."status" (Sequelize) meet.
func unqualifiedKey(version int32, n *pg_query.Node, from []*pg_query.Node) (string, error) {
	var quals [][]string
	if len(from) == 1 && from[0].GetRangeVar() != nil {
		rv := from[0].GetRangeVar()
		switch {
		case rv.Alias != nil:
			quals = [][]string{{rv.Alias.Aliasname}}
		case rv.Schemaname != "":
			quals = [][]string{{rv.Relname}, {rv.Schemaname, rv.Relname}}
		default:
			quals = [][]string{{rv.Relname}}
		}
	}
	if len(quals) == 0 {
		return exprKey(version, n)
	}
	wrap := resTarget(proto.Clone(n).(*pg_query.Node), "")
	replaceNodes(wrap.ProtoReflect(), func(x *pg_query.Node) *pg_query.Node {
		cr := x.GetColumnRef()
		if cr == nil {
			return nil
		}
		for _, q := range quals {
			if len(cr.Fields) != len(q)+1 {
				continue
			}
			same := true
			for i, name := range q {
				s := cr.Fields[i].GetString_()
				same = same && s != nil && s.Sval == name
			}
			if last := cr.Fields[len(q)].GetString_(); same && last != nil {
				return columnRef(last.Sval)
			}
		}
		return nil
	})
	return exprKey(version, wrap.GetResTarget().Val)
}

// replaceNodes walks m and replaces each Node for which fn returns a
// replacement; it does not descend into replacements.
func replaceNodes(m protoreflect.Message, fn func(*pg_query.Node) *pg_query.Node) {
	nodeDesc := (&pg_query.Node{}).ProtoReflect().Descriptor()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				el := l.Get(i).Message()
				if fd.Message() == nodeDesc {
					if r := fn(el.Interface().(*pg_query.Node)); r != nil {
						l.Set(i, protoreflect.ValueOfMessage(r.ProtoReflect()))
						continue
					}
				}
				replaceNodes(el, fn)
			}
			return true
		}
		el := v.Message()
		if fd.Message() == nodeDesc {
			if r := fn(el.Interface().(*pg_query.Node)); r != nil {
				m.Set(fd, protoreflect.ValueOfMessage(r.ProtoReflect()))
				return true
			}
		}
		replaceNodes(el, fn)
		return true
	})
}

// WalkMessages calls fn with m and every message under it: a parse tree
// (the parser's protobuf messages) walked in field order.
func WalkMessages(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() || fd.Message() == nil:
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				WalkMessages(l.Get(i).Message(), fn)
			}
		default:
			WalkMessages(v.Message(), fn)
		}
		return true
	})
}

// checkOuter refuses a SELECT around a split core that still reads anything
// but the core's columns (an ORDER BY may name an output column), calls a
// function that may aggregate, or holds a subquery.
func checkOuter(outer *pg_query.SelectStmt, aliases map[string]bool) error {
	var err error
	check := func(allowAlias bool) func(protoreflect.Message) {
		return func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *pg_query.ColumnRef:
				if name, ok := bareName(&pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: x}}); ok {
					if strings.HasPrefix(name, finishKey) || strings.HasPrefix(name, finishAgg) || name == finishPlaceholder || (allowAlias && aliases[name]) {
						return
					}
				}
				err = errNoSplit
			case *pg_query.FuncCall:
				if x.Over == nil && !finishScalarFuncs[callName(x)] {
					err = errNoSplit
				}
			case *pg_query.SubLink, *pg_query.ParamRef, *pg_query.GroupingFunc:
				err = errNoSplit
			}
		}
	}
	for _, n := range outer.TargetList {
		WalkMessages(n.ProtoReflect(), check(false))
	}
	for _, ns := range [][]*pg_query.Node{outer.DistinctClause, outer.WindowClause} {
		for _, n := range ns {
			WalkMessages(n.ProtoReflect(), check(false))
		}
	}
	if outer.WhereClause != nil {
		WalkMessages(outer.WhereClause.ProtoReflect(), check(false))
	}
	for _, n := range outer.SortClause {
		WalkMessages(n.ProtoReflect(), check(true))
	}
	return err
}

// FinishStatement is the statement with the core replaced by its rows: a
// SELECT of the core's columns, each cast to its exact type and named as
// the core names it, from a VALUES list of their text (nil is NULL), or,
// with no rows, a typed row filtered out. Text values are Postgres's text
// form of each value (ISO dates, timestamps with their offset, ISO 8601
// intervals, floats that read back exactly), which Postgres reads back the
// same whatever the session's DateStyle, IntervalStyle or TimeZone.
func (c *FinishCore) FinishStatement(cols []ResultColumn, rows [][]*string) (string, error) {
	casts := make([]string, len(cols))
	for i, col := range cols {
		t, err := castType(col.Type)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", col.Name, err)
		}
		if col.collationUnsure {
			return "", fmt.Errorf("column %s: its collation cannot be derived", col.Name)
		}
		if col.Collation != "" {
			t += " COLLATE " + col.Collation
		}
		casts[i] = t
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(rows) == 0 {
			b.WriteString("NULL")
		} else {
			b.WriteString(`"pgrollup_v".`)
			b.WriteString(sqlquote.Ident(fmt.Sprintf("c%d", i+1)))
		}
		b.WriteString("::")
		b.WriteString(casts[i])
		b.WriteString(" AS ")
		b.WriteString(sqlquote.Ident(col.Name))
	}
	if len(rows) == 0 {
		b.WriteString(" WHERE false")
		return strings.Replace(c.outer, "SELECT "+finishPlaceholder, b.String(), 1), nil
	}
	b.WriteString(" FROM (VALUES ")
	for r, row := range rows {
		if len(row) != len(cols) {
			return "", fmt.Errorf("row %d has %d values for %d columns", r+1, len(row), len(cols))
		}
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, v := range row {
			if i > 0 {
				b.WriteString(", ")
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(sqlquote.EscapeLiteral(*v))
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(`) AS "pgrollup_v"(`)
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sqlquote.Ident(fmt.Sprintf("c%d", i+1)))
	}
	b.WriteByte(')')
	return strings.Replace(c.outer, "SELECT "+finishPlaceholder, b.String(), 1), nil
}

// castType is the SQL type a core column's values are cast to, with its
// typmod, qualified so that no type of the session's shadows it.
func castType(t Type) (string, error) {
	mod := t.Typmod
	switch t.OID {
	case pgtype.BoolOID:
		return "pg_catalog.bool", nil
	case pgtype.Int2OID:
		return "pg_catalog.int2", nil
	case pgtype.Int4OID:
		return "pg_catalog.int4", nil
	case pgtype.Int8OID:
		return "pg_catalog.int8", nil
	case pgtype.Float4OID:
		return "pg_catalog.float4", nil
	case pgtype.Float8OID:
		return "pg_catalog.float8", nil
	case pgtype.NumericOID:
		if mod >= 4 {
			p, s := (mod-4)>>16&0xffff, int16((mod-4)&0xffff)
			return fmt.Sprintf("pg_catalog.numeric(%d,%d)", p, s), nil
		}
		return "pg_catalog.numeric", nil
	case pgtype.TextOID:
		return "pg_catalog.text", nil
	case pgtype.NameOID:
		return "pg_catalog.name", nil
	case pgtype.VarcharOID:
		if mod >= 4 {
			return fmt.Sprintf("pg_catalog.varchar(%d)", mod-4), nil
		}
		return "pg_catalog.varchar", nil
	case pgtype.BPCharOID:
		if mod >= 4 {
			return fmt.Sprintf("pg_catalog.bpchar(%d)", mod-4), nil
		}
		return "pg_catalog.bpchar", nil
	case pgtype.DateOID:
		return "pg_catalog.date", nil
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		name := "pg_catalog.timestamp"
		if t.OID == pgtype.TimestamptzOID {
			name = "pg_catalog.timestamptz"
		}
		if mod >= 0 {
			return fmt.Sprintf("%s(%d)", name, mod), nil
		}
		return name, nil
	case pgtype.IntervalOID:
		if mod < 0 {
			return "pg_catalog.interval", nil
		}
	}
	return "", fmt.Errorf("%s cannot be written back to the warehouse", typeName(t))
}
