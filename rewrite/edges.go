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
	// LambdaColumn is, for a split whose whole buckets a lambda rollup
	// answers (LambdaEdgeSplits), the column its cutoff bounds: the time
	// column or an id column; "" for an ordinary rollup's split.
	LambdaColumn string

	core  *LambdaCore
	qual  string // how the core's FROM names the rollup's table
	fresh string // the warehouse part: the partial core over the edges (and, for a lambda split, the whole buckets' rows at or above the cutoff)
}

// Statement is the statement the warehouse runs: the client's, with the
// core computed from the rollup's partial aggregates over the whole buckets
// (cols as the decision of SQL describes them, rows its rows) and the
// warehouse's over the edges. A lambda split needs its cutoff
// (LambdaStatement).
func (e *EdgeSplit) Statement(cols []ResultColumn, rows [][]*string) (string, error) {
	if e.LambdaColumn != "" {
		return "", fmt.Errorf("a lambda rollup's split needs its cutoff")
	}
	return e.core.combined(cols, rows, e.fresh)
}

// LambdaStatement is Statement for a lambda split: the rollup's rows are
// its partial aggregates of the whole buckets' rows below its version's
// cutoff, and the warehouse part reads the edges and the whole buckets'
// rows at or above the cutoff (or without a value of column). column and
// cutoff are the answering rollup's (Catalog.LambdaCutoff): column must be
// the split's LambdaColumn.
func (e *EdgeSplit) LambdaStatement(cols []ResultColumn, rows [][]*string, column, cutoff string) (string, error) {
	if e.LambdaColumn == "" || column != e.LambdaColumn {
		return "", fmt.Errorf("the split reads the cutoff of column %q, not %q", e.LambdaColumn, column)
	}
	if strings.Count(e.fresh, lambdaCutoffMark) != 1 {
		return "", fmt.Errorf("edges part: the cutoff's mark lost")
	}
	return e.core.combined(cols, rows, strings.Replace(e.fresh, lambdaCutoffMark, cutoff, 1))
}

// BelowCutoff is the whole buckets' partial core over the rows below a
// lambda split's cutoff: what the rollup's part of the answer claims to
// hold, which continuous verification runs on the warehouse. Its arguments
// are LambdaCore.BelowCutoff's.
func (e *EdgeSplit) BelowCutoff(table, column, cutoff string) (string, error) {
	qual, ok := e.core.qualifier(table)
	if !ok || qual != e.qual || column != e.LambdaColumn || len(e.Tree.GetStmts()) != 1 {
		return "", fmt.Errorf("the split is not over %s's column %s", table, column)
	}
	whole := e.Tree.Stmts[0].Stmt.GetSelectStmt()
	below, err := parseCondition(sqlquote.Ident(qual) + "." + sqlquote.Ident(column) + " < " + lambdaCutoffMark)
	if err != nil || whole == nil {
		return "", fmt.Errorf("below the cutoff: %v", err)
	}
	var conj []*pg_query.Node
	if whole.WhereClause != nil {
		conj = flattenAnd(whole.WhereClause)
	}
	conj = append(conj, below)
	text, err := e.core.partialWhere(conj)
	if err != nil {
		return "", fmt.Errorf("below the cutoff: %w", err)
	}
	if strings.Count(text, lambdaCutoffMark) != 1 {
		return "", fmt.Errorf("below the cutoff: the cutoff's mark lost")
	}
	return strings.Replace(text, lambdaCutoffMark, cutoff, 1), nil
}

// Marks of the bounds in a split's warehouse part (edgeTemplate): the
// range's own lower and upper bound, and the whole buckets' from and to.
const (
	edgeMarkLo   = "pgrollup_edge_lo_7c2e9a"
	edgeMarkFrom = "pgrollup_edge_from_7c2e9a"
	edgeMarkTo   = "pgrollup_edge_to_7c2e9a"
	edgeMarkHi   = "pgrollup_edge_hi_7c2e9a"
	// A lambda split's whole buckets, read again above the cutoff.
	edgeMarkCutFrom = "pgrollup_edge_cutfrom_7c2e9a"
	edgeMarkCutTo   = "pgrollup_edge_cutto_7c2e9a"
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
	return l.edgeSplits(cat, sess, false)
}

// LambdaEdgeSplits is EdgeSplits at the bucket edges of the lambda rollups
// of cat: the whole buckets' rows below a version's cutoff are the
// rollup's, and the warehouse part reads the edges and the whole buckets'
// rows at or above the cutoff. A split is made for each lambda column too
// (LambdaColumn); its statement needs the cutoff (LambdaStatement).
func (l *LambdaCore) LambdaEdgeSplits(cat *Catalog, sess Session) []*EdgeSplit {
	return l.edgeSplits(cat, sess, true)
}

// edgeSplits is EdgeSplits over cat's ordinary rollups, or its lambda
// rollups when lambda is set.
func (l *LambdaCore) edgeSplits(cat *Catalog, sess Session, lambda bool) []*EdgeSplit {
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
		table, column, lambda string
		grain                 config.Granularity
	}
	seen := map[key]bool{}
	var out []*EdgeSplit
	for _, st := range cat.Rollups {
		d := st.Def
		if d.TimeDimension == "" || (d.Lambda != nil) != lambda {
			continue
		}
		k := key{table: qualifiedName(d.Table), column: lastName(d.TimeDimension), grain: d.Granularity}
		if lambda {
			k.lambda = lastName(d.Lambda.Column)
		}
		if seen[k] || k.column == "" || (lambda && k.lambda == "") {
			continue
		}
		seen[k] = true
		t := cat.table(k.table)
		if t == nil || t.column(k.column) == nil {
			continue
		}
		var fresh *lambdaFresh
		if lambda {
			lc := t.column(k.lambda)
			if lc == nil {
				continue
			}
			fresh = &lambdaFresh{column: k.lambda, notNull: lc.NotNull || k.lambda == k.column}
		}
		var kind valueKind
		cutLoc := time.UTC
		switch t.column(k.column).Type.OID {
		case pgtype.TimestamptzOID:
			kind, cutLoc = vInstant, bz.loc
		case pgtype.TimestampOID:
			kind = vLocal
		case pgtype.DateOID:
			// Days on the calendar: the rollup cuts a date column's buckets
			// without a zone (rollup/plan.go casts it to timestamp).
			kind = vDate
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
		if s := l.edgeSplit(conj, fc, qual, bare, k.column, kind, k.grain, cutLoc, fresh); s != nil {
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
// conjunct, which both parts keep as it is. timeOnDate reports a date
// column compared with a constant time, not a date: Postgres compares the
// date's midnight with it, and the statement is not split.
func boundsOf(n *pg_query.Node, fc *foldCtx, qual, bare, column string, kind valueKind) (bs []timeBoundNode, ok, timeOnDate bool) {
	a := n.GetAExpr()
	if a == nil {
		return nil, false, false
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
		if kind == vDate && t.kind != vDate {
			timeOnDate = true
			return tval{}, false
		}
		return fc.convertTime(t, kind)
	}
	switch a.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if len(a.Name) != 1 || a.Lexpr == nil || a.Rexpr == nil {
			return nil, false, false
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
			return nil, false, false
		}
		switch op {
		case ">=", ">", "<=", "<":
		default:
			return nil, false, false
		}
		v, ok := fold(val)
		if !ok {
			return nil, false, timeOnDate
		}
		return []timeBoundNode{{op, v}}, true, false
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN:
		l := a.Rexpr.GetList()
		if !isColumn(a.Lexpr, qual, bare, column) || l == nil || len(l.Items) != 2 {
			return nil, false, false
		}
		lo, ok1 := fold(l.Items[0])
		hi, ok2 := fold(l.Items[1])
		if !ok1 || !ok2 {
			return nil, false, timeOnDate
		}
		return []timeBoundNode{{">=", lo}, {"<=", hi}}, true, false
	}
	return nil, false, false
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

// lambdaFresh is what a lambda split's warehouse part reads of the whole
// buckets: the rows whose column lies at or above the cutoff, and, unless
// it is NOT NULL (or the time column, which the range bounds), those
// without a value.
type lambdaFresh struct {
	column  string
	notNull bool
}

// edgeSplit splits the partial core at the edges of grain buckets cut on
// cutLoc's clock, or returns nil when the bounds do not cut through buckets
// or leave no whole bucket between them. With fresh, the whole buckets are
// a lambda rollup's, and the warehouse part reads their rows at or above
// the cutoff as well (the cutoff's mark is left in it).
func (l *LambdaCore) edgeSplit(conj []*pg_query.Node, fc *foldCtx, qual, bare, column string, kind valueKind, g config.Granularity, cutLoc *time.Location, fresh *lambdaFresh) *EdgeSplit {
	var lower, upper *timeBoundNode
	var rest []*pg_query.Node
	var restAt []int // rest's places among conj
	for i, c := range conj {
		bs, ok, timeOnDate := boundsOf(c, fc, qual, bare, column, kind)
		if timeOnDate {
			return nil
		}
		if !ok {
			rest = append(rest, c)
			restAt = append(restAt, i)
			continue
		}
		for i := range bs {
			b := bs[i]
			if kind == vDate {
				// A date column's values are whole days: > d is >= d + 1
				// and <= d is < d + 1, so BETWEEN two dates bounds whole
				// days and a bound on a bucket's last day is aligned.
				switch b.op {
				case ">":
					b.op, b.val.t = ">=", b.val.t.AddDate(0, 0, 1)
				case "<=":
					b.op, b.val.t = "<", b.val.t.AddDate(0, 0, 1)
				}
			}
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
	s := &EdgeSplit{Grain: g, Column: column, core: l, qual: qual}
	if fresh != nil {
		s.LambdaColumn = fresh.column
	}
	lowerEdge, upperEdge := false, false
	if lower != nil {
		t := lower.val.t.In(cutLoc)
		from := truncTime(t, g)
		if !from.Equal(t) || lower.op == ">" {
			from, lowerEdge = nextEdge(from, g), true
		}
		// A bucket whose first instants come before its value (a midnight
		// the clock shows twice, see bucketEdge) is left to the warehouse.
		if !bucketEdge(from, cutLoc, g) {
			from, lowerEdge = nextEdge(from, g), true
		}
		if !bucketEdge(from, cutLoc, g) {
			return nil
		}
		s.From = from.UTC()
	}
	if upper != nil {
		t := upper.val.t.In(cutLoc)
		to := truncTime(t, g)
		upperEdge = !to.Equal(t) || upper.op == "<="
		if !bucketEdge(to, cutLoc, g) {
			// to's bucket starts before to: its first rows would be in
			// neither part.
			return nil
		}
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
		switch kind {
		case vDate:
			return sqlquote.Literal(t.UTC().Format("2006-01-02")) + "::date"
		case vLocal:
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
	if fresh != nil {
		fmt.Fprintf(&shape, "\x00lambda\x00%s\x00%t", fresh.column, fresh.notNull)
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
		if fresh != nil {
			// The whole buckets' rows the rollup does not hold: at or
			// above the cutoff (which may lie inside one of them), or
			// without a value of the lambda column.
			var whole []string
			if lower != nil {
				whole = append(whole, ref+" >= "+edgeMarkCutFrom)
				marks = append(marks, edgeMarkCutFrom)
			}
			if upper != nil {
				whole = append(whole, ref+" < "+edgeMarkCutTo)
				marks = append(marks, edgeMarkCutTo)
			}
			lref := sqlquote.Ident(qual) + "." + sqlquote.Ident(fresh.column)
			above := lref + " >= " + lambdaCutoffMark
			if !fresh.notNull {
				above = "(" + above + " OR " + lref + " IS NULL)"
			}
			edges = append(edges, "("+strings.Join(append(whole, above), " AND ")+")")
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
		if fresh != nil && strings.Count(text, lambdaCutoffMark) != 1 {
			return "", fmt.Errorf("edges part: the cutoff's mark lost or repeated")
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
	if fresh != nil && lower != nil {
		fill = append(fill, edgeMarkCutFrom, lit(s.From))
	}
	if fresh != nil && upper != nil {
		fill = append(fill, edgeMarkCutTo, lit(s.To))
	}
	s.fresh = strings.NewReplacer(fill...).Replace(tmpl)
	return s
}
