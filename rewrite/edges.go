package rewrite

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Exact edges: a time range that cuts through a rollup's buckets (Grafana's
// $__timeFilter, "the last 36 hours", a Cube date range) takes the whole
// buckets inside it from the rollup and the rows of the partial buckets at
// its edges from the warehouse, combined as a lambda answer combines its
// two parts (lambda.go). The bounds are folded with the session's zone and
// clock, and the warehouse part reads them as those literal values, so that
// both parts cut the range at the same instants.

// EdgeSplit is one split of a statement's partial core at bucket edges.
type EdgeSplit struct {
	// SQL is the partial core over the whole buckets [From, To), which a
	// rollup of granularity Grain (or finer) answers; Tree its parse tree.
	SQL  string
	Tree *pg_query.ParseResult
	// Grain is the bucket size the split is aligned to.
	Grain config.Granularity
	// From and To bound the whole buckets (zero: unbounded on that side);
	// for a timestamp column they are wall-clock values held in UTC.
	From, To time.Time
	// Column is the time column the split cuts.
	Column string

	core  *LambdaCore
	fresh string // the warehouse part: the partial core over the edges
}

// Statement is the statement the warehouse runs: the client's, with the
// core computed from the rollup's partial aggregates over the whole buckets
// (cols as the decision of SQL describes them, rows its rows) and the
// warehouse's over the edges.
func (e *EdgeSplit) Statement(cols []ResultColumn, rows [][]*string) (string, error) {
	return e.core.combined(cols, rows, e.fresh)
}

// Marks of the bounds in a split's warehouse part (edgeTemplate): the
// range's own lower and upper bound, and the whole buckets' from and to.
const (
	edgeMarkLo   = "pgrollup_edge_lo_7c2e9a"
	edgeMarkFrom = "pgrollup_edge_from_7c2e9a"
	edgeMarkTo   = "pgrollup_edge_to_7c2e9a"
	edgeMarkHi   = "pgrollup_edge_hi_7c2e9a"
)

// timeBoundNode is a bound on the time column found among the WHERE's
// conjuncts.
type timeBoundNode struct {
	op  string // >=, >, <=, <
	val tval
}

// EdgeSplits lists the splits of the partial core at the bucket edges of the
// rollups of cat over its table, finest grain first: one per time column and
// grain where the core's WHERE bounds the time column by constants (folded
// in sess's zone and clock) that cut through buckets, and whole buckets lie
// between the bounds.
func (l *LambdaCore) EdgeSplits(cat *Catalog, sess Session) []*EdgeSplit {
	if l.partial.WhereClause == nil {
		return nil
	}
	zones := &zoneCache{}
	sz, bz := zones.get(sess.TimeZone), zones.get(cat.BuildTimezone)
	if sz.err != nil || bz.err != nil || sess.Now.IsZero() {
		return nil
	}
	fc := &foldCtx{loc: sz.loc, now: sess.Now, params: sess.Params, live: true, zones: zones}
	conj := flattenAnd(l.partial.WhereClause)
	type key struct {
		table, column string
		grain         config.Granularity
	}
	seen := map[key]bool{}
	var out []*EdgeSplit
	for _, st := range cat.Rollups {
		d := st.Def
		if d.TimeDimension == "" || d.Lambda != nil {
			continue
		}
		k := key{qualifiedName(d.Table), lastName(d.TimeDimension), d.Granularity}
		if seen[k] || k.column == "" {
			continue
		}
		seen[k] = true
		t := cat.table(k.table)
		if t == nil || t.column(k.column) == nil {
			continue
		}
		var kind valueKind
		cutLoc := time.UTC
		switch t.column(k.column).Type.OID {
		case pgtype.TimestamptzOID:
			kind, cutLoc = vInstant, bz.loc
		case pgtype.TimestampOID:
			kind = vLocal
		default:
			continue
		}
		qual, ok := l.qualifier(d.Table)
		if !ok {
			continue
		}
		bare := qual
		if len(l.partial.FromClause) != 1 || l.partial.FromClause[0].GetRangeVar() == nil {
			bare = ""
		}
		if s := l.edgeSplit(conj, fc, qual, bare, k.column, kind, k.grain, cutLoc); s != nil {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return grainRank[out[i].Grain] < grainRank[out[j].Grain] })
	return out
}

// flattenAnd lists the conjuncts of a condition.
func flattenAnd(n *pg_query.Node) []*pg_query.Node {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, a := range b.Args {
			out = append(out, flattenAnd(a)...)
		}
		return out
	}
	return []*pg_query.Node{n}
}

// isColumn reports whether n names column of the table qualified qual,
// bare only when bare is qual (the FROM has no other table).
func isColumn(n *pg_query.Node, qual, bare, column string) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	var parts []string
	for _, f := range cr.Fields {
		if f.GetString_() == nil {
			return false
		}
		parts = append(parts, f.GetString_().Sval)
	}
	switch len(parts) {
	case 1:
		// A bare name could be another joined table's column: only with
		// one table does it surely name this one.
		return bare != "" && parts[0] == column
	case 2:
		return parts[0] == qual && parts[1] == column
	}
	return false
}

// boundsOf reads a conjunct as bounds on the column: a comparison of it
// with a constant, or BETWEEN two constants. ok is false for any other
// conjunct, which both parts keep as it is.
func boundsOf(n *pg_query.Node, fc *foldCtx, qual, bare, column string, kind valueKind) ([]timeBoundNode, bool) {
	a := n.GetAExpr()
	if a == nil {
		return nil, false
	}
	fold := func(v *pg_query.Node) (tval, bool) {
		e, err := convert(v)
		if err != nil {
			return tval{}, false
		}
		t, ok := fc.foldTime(e, kind)
		if !ok {
			return tval{}, false
		}
		return fc.convertTime(t, kind)
	}
	switch a.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if len(a.Name) != 1 || a.Lexpr == nil || a.Rexpr == nil {
			return nil, false
		}
		op := a.Name[0].GetString_().GetSval()
		col, val := a.Lexpr, a.Rexpr
		if isColumn(a.Rexpr, qual, bare, column) {
			col, val = a.Rexpr, a.Lexpr
			if f, ok := flipped[op]; ok {
				op = f
			}
		}
		if !isColumn(col, qual, bare, column) {
			return nil, false
		}
		switch op {
		case ">=", ">", "<=", "<":
		default:
			return nil, false
		}
		v, ok := fold(val)
		if !ok {
			return nil, false
		}
		return []timeBoundNode{{op, v}}, true
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN:
		l := a.Rexpr.GetList()
		if !isColumn(a.Lexpr, qual, bare, column) || l == nil || len(l.Items) != 2 {
			return nil, false
		}
		lo, ok1 := fold(l.Items[0])
		hi, ok2 := fold(l.Items[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		return []timeBoundNode{{">=", lo}, {"<=", hi}}, true
	}
	return nil, false
}

// nextEdge is the bucket edge after edge t (on t's clock).
func nextEdge(t time.Time, g config.Granularity) time.Time {
	y, mo, d := t.Date()
	switch g {
	case config.Hour:
		return truncTime(t.Add(time.Hour), g)
	case config.Day:
		return truncTime(time.Date(y, mo, d+1, 12, 0, 0, 0, t.Location()), g)
	case config.Week:
		return truncTime(time.Date(y, mo, d+7, 12, 0, 0, 0, t.Location()), g)
	case config.Month:
		return truncTime(time.Date(y, mo+1, 1, 12, 0, 0, 0, t.Location()), g)
	case config.Quarter:
		return truncTime(time.Date(y, mo+3, 1, 12, 0, 0, 0, t.Location()), g)
	}
	return truncTime(time.Date(y+1, 1, 1, 12, 0, 0, 0, t.Location()), g)
}

// edgeSplit splits the partial core at the edges of grain buckets cut on
// cutLoc's clock, or returns nil when the bounds do not cut through buckets
// or leave no whole bucket between them.
func (l *LambdaCore) edgeSplit(conj []*pg_query.Node, fc *foldCtx, qual, bare, column string, kind valueKind, g config.Granularity, cutLoc *time.Location) *EdgeSplit {
	var lower, upper *timeBoundNode
	var rest []*pg_query.Node
	var restAt []int // rest's places among conj
	for i, c := range conj {
		bs, ok := boundsOf(c, fc, qual, bare, column, kind)
		if !ok {
			rest = append(rest, c)
			restAt = append(restAt, i)
			continue
		}
		for i := range bs {
			b := bs[i]
			if b.op == ">=" || b.op == ">" {
				if lower != nil {
					return nil // two lower bounds: left to the warehouse
				}
				lower = &b
			} else {
				if upper != nil {
					return nil
				}
				upper = &b
			}
		}
	}
	if lower == nil && upper == nil {
		return nil
	}
	s := &EdgeSplit{Grain: g, Column: column, core: l}
	lowerEdge, upperEdge := false, false
	if lower != nil {
		t := lower.val.t.In(cutLoc)
		from := truncTime(t, g)
		if !from.Equal(t) || lower.op == ">" {
			from, lowerEdge = nextEdge(from, g), true
		}
		s.From = from.UTC()
	}
	if upper != nil {
		t := upper.val.t.In(cutLoc)
		to := truncTime(t, g)
		upperEdge = !to.Equal(t) || upper.op == "<="
		s.To = to.UTC()
	}
	if !lowerEdge && !upperEdge {
		return nil // aligned: the rollup answers the statement itself, or not at all
	}
	if !s.From.IsZero() && !s.To.IsZero() && !s.From.Before(s.To) {
		return nil // no whole bucket inside the range
	}
	ref := sqlquote.Ident(qual) + "." + sqlquote.Ident(column)
	// A bound's literal, as the deparser writes it: the warehouse part's
	// bounds are filled into its text as if deparsed with them in.
	lit := func(t time.Time) string {
		if kind == vLocal {
			return sqlquote.Literal(t.UTC().Format("2006-01-02 15:04:05.999999")) + "::timestamp"
		}
		return sqlquote.Literal(t.UTC().Format("2006-01-02 15:04:05.999999")+"+00") + "::timestamp with time zone"
	}
	// What both parts are written as depends only on the split's shape
	// (which conjuncts bound the column, and how) and, for the rollup part,
	// the whole buckets: each is written once, and the warehouse part's
	// bounds are filled into its template at every execution.
	var shape strings.Builder
	fmt.Fprintf(&shape, "%s\x00%s\x00%d\x00%s\x00%s\x00%t%t\x00%t%t", qual, column, kind, g, cutLoc, lowerEdge, upperEdge, lower != nil, upper != nil)
	for _, i := range restAt {
		fmt.Fprintf(&shape, "\x00%d", i)
	}
	if lower != nil {
		shape.WriteString("\x00" + lower.op)
	}
	if upper != nil {
		shape.WriteString("\x00" + upper.op)
	}
	whole, err := l.cache.wholes.get(fmt.Sprintf("%s\x00%d\x00%d", shape.String(), s.From.UnixNano(), s.To.UnixNano()), func() (edgeWhole, error) {
		// The rollup part: the whole buckets, as the rollup's own bounds.
		conds := append([]*pg_query.Node(nil), rest...)
		if lower != nil {
			c, err := parseCondition(ref + " >= " + lit(s.From))
			if err != nil {
				return edgeWhole{}, err
			}
			conds = append(conds, c)
		}
		if upper != nil {
			c, err := parseCondition(ref + " < " + lit(s.To))
			if err != nil {
				return edgeWhole{}, err
			}
			conds = append(conds, c)
		}
		sql, err := l.partialWhere(conds)
		if err != nil {
			return edgeWhole{}, err
		}
		tree, err := pg_query.Parse(sql)
		return edgeWhole{sql: sql, tree: tree}, err
	})
	if err != nil {
		return nil
	}
	s.SQL, s.Tree = whole.sql, whole.tree
	tmpl, err := l.cache.edges.get(shape.String(), func() (string, error) {
		// The warehouse part: the rows of the partial buckets.
		var edges, marks []string
		if lowerEdge {
			edges = append(edges, fmt.Sprintf("(%s %s %s AND %s < %s)", ref, lower.op, edgeMarkLo, ref, edgeMarkFrom))
			marks = append(marks, edgeMarkLo, edgeMarkFrom)
		}
		if upperEdge {
			edges = append(edges, fmt.Sprintf("(%s >= %s AND %s %s %s)", ref, edgeMarkTo, ref, upper.op, edgeMarkHi))
			marks = append(marks, edgeMarkTo, edgeMarkHi)
		}
		ec, err := parseCondition(strings.Join(edges, " OR "))
		if err != nil {
			return "", err
		}
		text, err := l.partialWhere(append(append([]*pg_query.Node(nil), rest...), ec))
		if err != nil {
			return "", err
		}
		for _, m := range marks {
			if strings.Count(text, m) != 1 {
				return "", fmt.Errorf("edges part: mark %s lost or repeated", m)
			}
		}
		return text, nil
	})
	if err != nil {
		return nil
	}
	var fill []string
	if lowerEdge {
		fill = append(fill, edgeMarkLo, lit(lower.val.t), edgeMarkFrom, lit(s.From))
	}
	if upperEdge {
		fill = append(fill, edgeMarkTo, lit(s.To), edgeMarkHi, lit(upper.val.t))
	}
	s.fresh = strings.NewReplacer(fill...).Replace(tmpl)
	return s
}
