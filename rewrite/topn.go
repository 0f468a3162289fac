package rewrite

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Top-N joins: Tableau's top-N filter and Superset's series limit keep the
// groups a ranked subquery puts first, by joining the fact table to it:
//
//	SELECT o.status, sum(o.amount) FROM orders o
//	INNER JOIN (SELECT status, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3) t0
//	ON o.status = t0.status GROUP BY 1
//
// The subquery's rows are unique on the columns the join compares, as
// those are exactly what it groups by, and the statement reads nothing
// else of it, so the join keeps the fact rows whose key is among the
// subquery's keys, each once. That is a filter, `o.status IN (...)`, with
// the keys the subquery gives: both statements are answered from rollups,
// one after the other.

// maxTopN bounds the subquery's LIMIT: its keys become a list of literals.
const maxTopN = 1000

// TopNJoin is a statement whose only join is to a top-N subquery.
type TopNJoin struct {
	// InnerSQL and InnerTree are the subquery, a statement of its own.
	InnerSQL  string
	InnerTree *pg_query.ParseResult
	// OuterSQL and OuterTree are the statement without the join; the
	// keys' filter is added to it once the subquery has given them.
	OuterSQL  string
	OuterTree *pg_query.ParseResult
	keys      []topNKey
	grouped   bool // the statement has GROUP BY: no keys, no rows
}

// topNKey is one equality of the join: the statement's expression, as
// SQL, and the subquery's result column it equals.
type topNKey struct {
	expr  string
	inner int
}

// FindTopNJoin returns the top-N join of a statement, nil when it has none.
func FindTopNJoin(tree *pg_query.ParseResult) *TopNJoin {
	if tree == nil || len(tree.Stmts) != 1 {
		return nil
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || sel.Op != pg_query.SetOperation_SETOP_NONE || sel.WithClause != nil || len(sel.FromClause) != 1 || sel.IntoClause != nil || len(sel.LockingClause) > 0 {
		return nil
	}
	j := sel.FromClause[0].GetJoinExpr()
	if j == nil || j.Jointype != pg_query.JoinType_JOIN_INNER || j.IsNatural || len(j.UsingClause) > 0 || j.Alias != nil || j.JoinUsingAlias != nil || j.Quals == nil {
		return nil
	}
	fact, subNode := j.Larg, j.Rarg
	if fact.GetRangeVar() == nil {
		fact, subNode = j.Rarg, j.Larg
	}
	sub := subNode.GetRangeSubselect()
	if fact.GetRangeVar() == nil || sub == nil || sub.Lateral || sub.Alias == nil || len(sub.Alias.Colnames) > 0 {
		return nil
	}
	alias := sub.Alias.Aliasname
	inner := sub.Subquery.GetSelectStmt()
	if inner == nil || !topNSubquery(inner) {
		return nil
	}
	outputs := outputNames(inner)
	if outputs == nil {
		return nil
	}
	keys, ok := joinKeys(tree.Version, j.Quals, alias, outputs)
	if !ok || !groupedByExactly(tree.Version, inner, keys) {
		return nil
	}
	if readsSubquery(sel, j, alias, outputs) {
		return nil
	}
	innerSQL, err := deparseSelect(tree.Version, sub.Subquery)
	if err != nil {
		return nil
	}
	innerTree, err := pg_query.Parse(innerSQL)
	if err != nil {
		return nil
	}
	outer := proto.Clone(tree).(*pg_query.ParseResult)
	osel := outer.Stmts[0].Stmt.GetSelectStmt()
	osel.FromClause = []*pg_query.Node{proto.Clone(fact).(*pg_query.Node)}
	outerSQL, err := pg_query.Deparse(outer)
	if err != nil {
		return nil
	}
	outerTree, err := pg_query.Parse(outerSQL)
	if err != nil {
		return nil
	}
	return &TopNJoin{InnerSQL: innerSQL, InnerTree: innerTree, OuterSQL: outerSQL, OuterTree: outerTree,
		keys: keys, grouped: len(sel.GroupClause) > 0}
}

// topNSubquery reports whether a subquery groups, is limited to at most
// maxTopN rows by a constant, and does nothing else a filter could not be.
func topNSubquery(sel *pg_query.SelectStmt) bool {
	if sel.Op != pg_query.SetOperation_SETOP_NONE || sel.WithClause != nil || len(sel.GroupClause) == 0 || len(sel.LockingClause) > 0 || sel.IntoClause != nil {
		return false
	}
	if sel.LimitOffset != nil || sel.LimitOption != pg_query.LimitOption_LIMIT_OPTION_COUNT {
		return false
	}
	c := sel.LimitCount.GetAConst()
	if c == nil || c.GetIval() == nil || c.GetIval().Ival > maxTopN {
		return false
	}
	for _, g := range sel.GroupClause {
		if g.GetGroupingSet() != nil {
			return false
		}
	}
	return true
}

// outputNames are a SELECT's result column names, as a subquery's alias
// exposes them; nil when one is a *.
func outputNames(sel *pg_query.SelectStmt) []string {
	var out []string
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return nil
		}
		name := rt.Name
		switch cr, f := rt.Val.GetColumnRef(), rt.Val.GetFuncCall(); {
		case name != "":
		case cr != nil:
			last := cr.Fields[len(cr.Fields)-1].GetString_()
			if last == nil {
				return nil
			}
			name = last.Sval
		case f != nil:
			// Postgres names the column after the function.
			name = f.Funcname[len(f.Funcname)-1].GetString_().GetSval()
		default:
			name = "?column?"
		}
		out = append(out, name)
	}
	return out
}

// joinKeys reads a join condition made only of equalities between an
// expression of the fact table and a column of the subquery alias.
func joinKeys(version int32, quals *pg_query.Node, alias string, outputs []string) ([]topNKey, bool) {
	var conj []*pg_query.Node
	var flatten func(n *pg_query.Node)
	flatten = func(n *pg_query.Node) {
		if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
			for _, a := range b.Args {
				flatten(a)
			}
			return
		}
		conj = append(conj, n)
	}
	flatten(quals)
	var keys []topNKey
	for _, c := range conj {
		e := c.GetAExpr()
		if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(e.Name) != 1 || e.Name[0].GetString_().GetSval() != "=" {
			return nil, false
		}
		l, r := e.Lexpr, e.Rexpr
		idx := aliasColumn(r, alias, outputs)
		if idx < 0 {
			l, r = r, l
			idx = aliasColumn(r, alias, outputs)
		}
		if idx < 0 || mentionsAlias(l, alias) {
			return nil, false
		}
		expr, err := deparseExpr(version, l)
		if err != nil {
			return nil, false
		}
		keys = append(keys, topNKey{expr: expr, inner: idx})
	}
	return keys, len(keys) > 0
}

// aliasColumn is the index of the subquery's output that n names as
// alias.column, or -1.
func aliasColumn(n *pg_query.Node, alias string, outputs []string) int {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) != 2 || cr.Fields[0].GetString_().GetSval() != alias {
		return -1
	}
	name := cr.Fields[1].GetString_()
	if name == nil {
		return -1
	}
	found := -1
	for i, o := range outputs {
		if o == name.Sval {
			if found >= 0 {
				return -1 // ambiguous in Postgres
			}
			found = i
		}
	}
	return found
}

// mentionsAlias reports whether n reads a column qualified by alias.
func mentionsAlias(n *pg_query.Node, alias string) bool {
	found := false
	WalkMessages(n.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) > 1 && cr.Fields[0].GetString_().GetSval() == alias {
			found = true
		}
	})
	return found
}

// groupedByExactly reports whether the subquery groups by exactly the
// columns the join compares, one grouping item each, and the join compares
// each once: its rows are then unique on the keys.
func groupedByExactly(version int32, sel *pg_query.SelectStmt, keys []topNKey) bool {
	used := map[int]bool{}
	for _, k := range keys {
		if used[k.inner] {
			return false
		}
		used[k.inner] = true
	}
	if len(sel.GroupClause) != len(used) {
		return false
	}
	covered := map[int]bool{}
	for _, g := range sel.GroupClause {
		i := groupTarget(version, sel, g)
		if i < 0 || !used[i] || covered[i] {
			return false
		}
		covered[i] = true
	}
	return true
}

// groupTarget is the select-list item a GROUP BY item is: by position, by
// output name, or as the same expression; -1 when none is.
func groupTarget(version int32, sel *pg_query.SelectStmt, g *pg_query.Node) int {
	if c := g.GetAConst(); c != nil && c.GetIval() != nil {
		if i := int(c.GetIval().Ival) - 1; i >= 0 && i < len(sel.TargetList) {
			return i
		}
		return -1
	}
	gs, err := deparseExpr(version, g)
	if err != nil {
		return -1
	}
	for i, t := range sel.TargetList {
		rt := t.GetResTarget()
		if ts, err := deparseExpr(version, rt.Val); err == nil && ts == gs {
			return i
		}
	}
	if cr := g.GetColumnRef(); cr != nil && len(cr.Fields) == 1 {
		for i, t := range sel.TargetList {
			if rt := t.GetResTarget(); rt.Name != "" && rt.Name == cr.Fields[0].GetString_().GetSval() {
				return i
			}
		}
	}
	return -1
}

// readsSubquery reports whether the statement reads the subquery anywhere
// but in the join condition: a qualified column, a *, or an unqualified
// name one of its columns has.
func readsSubquery(sel *pg_query.SelectStmt, j *pg_query.JoinExpr, alias string, outputs []string) bool {
	names := map[string]bool{}
	for _, o := range outputs {
		names[o] = true
	}
	saved := j.Quals
	j.Quals = nil
	defer func() { j.Quals = saved }()
	sub := j.Rarg
	if sub.GetRangeSubselect() == nil {
		sub = j.Larg
	}
	savedSub := sub.Node
	sub.Node = nil
	defer func() { sub.Node = savedSub }()
	found := false
	WalkMessages(sel.ProtoReflect(), func(m protoreflect.Message) {
		cr, ok := m.Interface().(*pg_query.ColumnRef)
		if !ok {
			return
		}
		switch {
		case cr.Fields[len(cr.Fields)-1].GetAStar() != nil:
			found = true
		case len(cr.Fields) > 1 && cr.Fields[0].GetString_().GetSval() == alias:
			found = true
		case len(cr.Fields) == 1 && names[cr.Fields[0].GetString_().GetSval()]:
			found = true
		}
	})
	return found
}

// deparseExpr is the SQL of an expression.
func deparseExpr(version int32, n *pg_query.Node) (string, error) {
	sel := &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{resTarget(n, "")},
		Op:         pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}}}
	text, err := deparseSelect(version, sel)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(text, "SELECT "), nil
}

// Filtered is the statement without the join, filtered to the keys the
// subquery gave: rows are its rows as the subquery's result columns cols
// describe them, in the text finishSettings-style output writes (nil is
// NULL). A key with a NULL joins nothing and is left out. ok is false when
// no key is left: a statement that groups then has no rows (empty), one
// that does not must be answered otherwise.
func (j *TopNJoin) Filtered(cols []ResultColumn, rows [][]*string) (sql string, tree *pg_query.ParseResult, empty bool, err error) {
	casts := make([]string, len(j.keys))
	for i, k := range j.keys {
		if k.inner >= len(cols) {
			return "", nil, false, fmt.Errorf("the subquery has %d columns", len(cols))
		}
		if casts[i], err = castType(cols[k.inner].Type); err != nil {
			return "", nil, false, err
		}
	}
	var list []string
	for _, row := range rows {
		vals := make([]string, len(j.keys))
		skip := false
		for i, k := range j.keys {
			if k.inner >= len(row) || row[k.inner] == nil {
				skip = true
				break
			}
			vals[i] = sqlquote.Literal(*row[k.inner]) + "::" + casts[i]
		}
		if skip {
			continue
		}
		if len(vals) == 1 {
			list = append(list, vals[0])
		} else {
			list = append(list, "("+strings.Join(vals, ", ")+")")
		}
	}
	if len(list) == 0 {
		if j.grouped {
			return "", nil, true, nil
		}
		return "", nil, false, fmt.Errorf("the top-N subquery gave no key")
	}
	exprs := make([]string, len(j.keys))
	for i, k := range j.keys {
		exprs[i] = "(" + k.expr + ")"
	}
	lhs := exprs[0]
	if len(exprs) > 1 {
		lhs = "(" + strings.Join(exprs, ", ") + ")"
	}
	cond, err := pg_query.Parse("SELECT 1 WHERE " + lhs + " IN (" + strings.Join(list, ", ") + ")")
	if err != nil {
		return "", nil, false, fmt.Errorf("top-N filter: %w", err)
	}
	out := proto.Clone(j.OuterTree).(*pg_query.ParseResult)
	sel := out.Stmts[0].Stmt.GetSelectStmt()
	filter := cond.Stmts[0].Stmt.GetSelectStmt().WhereClause
	if sel.WhereClause == nil {
		sel.WhereClause = filter
	} else {
		sel.WhereClause = &pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{
			Boolop: pg_query.BoolExprType_AND_EXPR, Args: []*pg_query.Node{sel.WhereClause, filter}, Location: -1}}}
	}
	if sql, err = pg_query.Deparse(out); err != nil {
		return "", nil, false, err
	}
	if tree, err = pg_query.Parse(sql); err != nil {
		return "", nil, false, err
	}
	return sql, tree, false, nil
}

// SampleFiltered is Filtered with one key of sample values, for deciding
// before the subquery runs whether a rollup could answer the statement
// filtered: a filter on a key decides as any value of its type does.
// ok is false for key types without a sample.
func (j *TopNJoin) SampleFiltered(cols []ResultColumn) (string, *pg_query.ParseResult, bool) {
	row := make([]*string, len(cols))
	for _, k := range j.keys {
		if k.inner >= len(cols) {
			return "", nil, false
		}
		s, ok := sampleValues[cols[k.inner].Type.OID]
		if !ok {
			return "", nil, false
		}
		row[k.inner] = &s
	}
	sql, tree, _, err := j.Filtered(cols, [][]*string{row})
	return sql, tree, err == nil
}

// sampleValues are a value of each key type a sample filter uses.
var sampleValues = map[uint32]string{
	pgtype.TextOID: "pgrollup", pgtype.VarcharOID: "pgrollup", pgtype.BPCharOID: "p",
	pgtype.Int2OID: "0", pgtype.Int4OID: "0", pgtype.Int8OID: "0", pgtype.NumericOID: "0",
	pgtype.BoolOID: "true", pgtype.DateOID: "2000-01-01",
	pgtype.TimestampOID: "2000-01-01 00:00:00", pgtype.TimestamptzOID: "2000-01-01 00:00:00+00",
}

// Decide decides the subquery and then the statement filtered to sample
// keys with decide: ok when a rollup answers both, as the statement is
// then answered (the filtered statement is decided again with the real
// keys when it runs).
func (j *TopNJoin) Decide(decide func(sql string, tree *pg_query.ParseResult) Decision) (inner, outer Decision, ok bool) {
	inner = decide(j.InnerSQL, j.InnerTree)
	if inner.Outcome != OutcomeRollup {
		return inner, Decision{}, false
	}
	sql, tree, ok := j.SampleFiltered(inner.Columns)
	if !ok {
		return inner, Decision{}, false
	}
	outer = decide(sql, tree)
	return inner, outer, outer.Outcome == OutcomeRollup
}
