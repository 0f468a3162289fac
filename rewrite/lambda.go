package rewrite

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Lambda rollups (docs/freshness.md): a lambda rollup's version holds the
// rows whose time dimension lies below its cutoff, and an answer adds the
// warehouse's aggregate of the rows at or above it. This is the warehouse's
// finishing of a split core (finish.go) with the core computed in two parts:
//
//	SELECT keys, <combined parts> FROM (
//	    <the rollup's partial aggregates, as a typed VALUES list>
//	    UNION ALL
//	    SELECT keys, <partial aggregates> FROM <the core's FROM>
//	    WHERE (<the core's WHERE>) AND (col >= cutoff OR col IS NULL) GROUP BY keys
//	) GROUP BY keys
//
// Each aggregate of the core becomes parts that combine exactly: count as
// the sum of counts, sum as the sum of sums cast back to sum's type, min and
// max of themselves, avg as the sum of sums over the sum of counts (which is
// how Postgres's avg divides), count(DISTINCT x) by grouping both parts by x
// as well. The warehouse part runs in the client's session, with its
// privileges, row-level security and snapshot.

// LambdaCore is a split core rewritten into partial aggregates, which a
// lambda rollup answers below its cutoff.
type LambdaCore struct {
	// SQL is the partial core: the core's keys, then the partial
	// aggregates, over the core's FROM and WHERE.
	SQL string
	// Tree is its parse tree.
	Tree *pg_query.ParseResult
	// Origins are the core's (FinishCore.Origins); the partial core keeps
	// the core's keys at the same positions.
	Origins []int

	core    *FinishCore
	partial *pg_query.SelectStmt // the partial core, for the warehouse part
	version int32
	keys    int         // the core's grouping keys
	extra   int         // keys added for count(DISTINCT x)
	aggs    []lambdaAgg // the core's aggregates, in order
	cache   coreCache   // parts written, by what they depend on
}

// lambdaAgg is one aggregate of the core and where its parts are among the
// partial core's columns.
type lambdaAgg struct {
	name  string // count, sum, min, max, avg, or "distinct" for count(DISTINCT x)
	parts []int
}

// Placeholders of the lambda column and the cutoff in the warehouse part,
// replaced once the rollup that answers is known.
const (
	lambdaColumnMark = "pgrollup_lambda_col_7c2e9a"
	lambdaCutoffMark = "pgrollup_lambda_cutoff_7c2e9a"
)

// Column names of the partial core.
const (
	lambdaPart     = "pgrollup_p"
	lambdaDistinct = "pgrollup_d"
)

// LambdaCores rewrites the split cores among cores into partial cores; a
// core with an aggregate that does not combine exactly is left out.
func LambdaCores(cores []*FinishCore) []*LambdaCore {
	var out []*LambdaCore
	for _, c := range cores {
		if l := lambdaCore(c); l != nil {
			out = append(out, l)
		}
	}
	return out
}

func lambdaCore(c *FinishCore) *LambdaCore {
	if !strings.HasSuffix(c.Kind, "split") || len(c.Tree.Stmts) != 1 {
		return nil
	}
	sel := proto.Clone(c.Tree.Stmts[0].Stmt.GetSelectStmt()).(*pg_query.SelectStmt)
	if sel == nil || sel.WithClause != nil || len(sel.FromClause) == 0 || strings.Contains(c.SQL, lambdaColumnMark) || strings.Contains(c.SQL, lambdaCutoffMark) {
		return nil
	}
	l := &LambdaCore{core: c, Origins: c.Origins, version: c.Tree.Version}
	var keys, parts []*pg_query.Node
	var distinct []string
	addPart := func(fn *pg_query.FuncCall, name string) int {
		p := proto.Clone(fn).(*pg_query.FuncCall)
		p.Funcname = []*pg_query.Node{{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: name}}}}
		parts = append(parts, resTarget(&pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: p}}, fmt.Sprintf("%s%d", lambdaPart, len(parts)+1)))
		return len(parts) - 1
	}
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		switch {
		case strings.HasPrefix(rt.GetName(), finishKey):
			keys = append(keys, t)
			continue
		case !strings.HasPrefix(rt.GetName(), finishAgg):
			return nil
		}
		fn := rt.GetVal().GetFuncCall()
		if fn == nil || fn.Over != nil || len(fn.AggOrder) > 0 || fn.AggWithinGroup || fn.FuncVariadic {
			return nil
		}
		name := callName(fn)
		switch {
		case fn.AggDistinct && name == "count" && len(fn.Args) == 1 && fn.AggFilter == nil:
			// Grouped by x as well, each part holds x's distinct values
			// once per group; the combination counts them.
			k, err := exprKey(l.version, fn.Args[0])
			if err != nil {
				return nil
			}
			at := -1
			for i, d := range distinct {
				if d == k {
					at = i
				}
			}
			if at < 0 {
				distinct = append(distinct, k)
				at = len(distinct) - 1
				sel.GroupClause = append(sel.GroupClause, proto.Clone(fn.Args[0]).(*pg_query.Node))
				keys = append(keys, resTarget(proto.Clone(fn.Args[0]).(*pg_query.Node), fmt.Sprintf("%s%d", lambdaDistinct, at+1)))
			}
			l.aggs = append(l.aggs, lambdaAgg{name: "distinct", parts: []int{at}})
		case fn.AggDistinct:
			return nil
		case name == "count" || name == "sum" || name == "min" || name == "max":
			if !fn.AggStar && len(fn.Args) != 1 {
				return nil
			}
			l.aggs = append(l.aggs, lambdaAgg{name: name, parts: []int{addPart(fn, name)}})
		case name == "avg" && len(fn.Args) == 1:
			s := addPart(fn, "sum")
			l.aggs = append(l.aggs, lambdaAgg{name: name, parts: []int{s, addPart(fn, "count")}})
		default:
			return nil
		}
	}
	l.keys, l.extra = len(keys)-len(distinct), len(distinct)
	// Distinct keys come after the core's own, then the parts: the index
	// of a part among the columns is then keys + extra + its position.
	for i := range l.aggs {
		if l.aggs[i].name == "distinct" {
			l.aggs[i].parts[0] += l.keys
			continue
		}
		for j := range l.aggs[i].parts {
			l.aggs[i].parts[j] += l.keys + l.extra
		}
	}
	sel.TargetList = append(keys, parts...)
	l.partial = sel
	sql, err := deparseSelect(l.version, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
	if err != nil {
		return nil
	}
	if l.Tree, err = pg_query.Parse(sql); err != nil {
		return nil
	}
	l.SQL = sql
	return l
}

// LambdaCutoff is the cutoff of a lambda rollup's active version as a
// typed literal of its column (the time column, or a bigint for an id
// column), qualified so no type of the session
// shadows it, and whether the column is NOT NULL; ok is false when the rollup is not a lambda rollup, its
// version recorded no cutoff, or the column's type is unknown.
func (c *Catalog) LambdaCutoff(st *RollupState) (column, literal string, notNull, ok bool) {
	if st.Def.Lambda == nil || (st.LambdaCutoff.IsZero() && st.LambdaCutoffID == nil) {
		return "", "", false, false
	}
	t := c.table(qualifiedName(st.Def.Table))
	if t == nil {
		return "", "", false, false
	}
	column = lastName(st.Def.TimeDimension)
	if st.LambdaCutoffID != nil {
		column = lastName(st.Def.Lambda.Column)
	}
	col := t.column(column)
	if column == "" || col == nil {
		return "", "", false, false
	}
	if st.LambdaCutoffID != nil {
		switch col.Type.OID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			// Compared as bigint, which an index on a smaller integer still serves.
			return column, sqlquote.Literal(strconv.FormatInt(*st.LambdaCutoffID, 10)) + "::pg_catalog.int8", col.NotNull, true
		}
		return "", "", false, false
	}
	v := st.LambdaCutoff.UTC()
	switch col.Type.OID {
	case pgtype.TimestamptzOID:
		literal = sqlquote.Literal(v.Format("2006-01-02 15:04:05.999999")+"+00") + "::pg_catalog.timestamptz"
	case pgtype.TimestampOID:
		literal = sqlquote.Literal(v.Format("2006-01-02 15:04:05.999999")) + "::pg_catalog.timestamp"
	case pgtype.DateOID:
		if v.Truncate(24*time.Hour) != v {
			return "", "", false, false
		}
		literal = sqlquote.Literal(v.Format("2006-01-02")) + "::pg_catalog.date"
	default:
		return "", "", false, false
	}
	return column, literal, col.NotNull, true
}

// qualifiedName is a table name with its schema (public when it has none).
func qualifiedName(name string) string {
	schema, table := splitTable(name)
	return schema + "." + table
}

// lastName is the column a time dimension's expression names (its last
// field), or "" when it is not a column reference.
func lastName(expr string) string {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil || len(tree.Stmts) != 1 {
		return ""
	}
	tl := tree.Stmts[0].Stmt.GetSelectStmt().GetTargetList()
	if len(tl) != 1 {
		return ""
	}
	cr := tl[0].GetResTarget().GetVal().GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
}

// LambdaStatement is the statement the warehouse runs for a lambda answer:
// the client's, with the core computed from rows, the rollup's partial
// aggregates below the cutoff (cols as the partial core's decision
// describes them, nil values NULL), and the warehouse's at or above it.
// table is the lambda rollup's fact table, column its time column and
// cutoff the typed literal of its version's cutoff (Catalog.LambdaCutoff);
// notNull says the column is NOT NULL, so no NULL rows are read.
func (l *LambdaCore) LambdaStatement(cols []ResultColumn, rows [][]*string, table, column, cutoff string, notNull bool) (string, error) {
	qual, ok := l.qualifier(table)
	if !ok {
		return "", fmt.Errorf("table %s is not in the statement's FROM once", table)
	}
	fresh, err := l.cache.fresh.get(fmt.Sprintf("%s\x00%s\x00%s\x00%t", qual, column, cutoff, notNull), func() (string, error) {
		return l.freshPart(qual, column, cutoff, notNull)
	})
	if err != nil {
		return "", err
	}
	return l.combined(cols, rows, fresh)
}

// combined is the client's statement with the core computed from the
// rollup's rows (cols, rows) and the warehouse part fresh, which selects the
// partial core's columns from the rows the rollup's do not hold.
func (l *LambdaCore) combined(cols []ResultColumn, rows [][]*string, fresh string) (string, error) {
	if len(cols) != l.keys+l.extra+l.partCount() {
		return "", fmt.Errorf("the partial core has %d columns, want %d", len(cols), l.keys+l.extra+l.partCount())
	}
	var group, list []string
	for i := 0; i < l.keys; i++ {
		group = append(group, sqlquote.Ident(cols[i].Name))
	}
	list = append(list, group...)
	for i, a := range l.aggs {
		s, err := combine(a, cols)
		if err != nil {
			return "", err
		}
		list = append(list, s+" AS "+sqlquote.Ident(fmt.Sprintf("%s%d", finishAgg, i+1)))
	}
	if len(list) == 0 {
		return "", fmt.Errorf("the core has no columns")
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(list, ", "))
	b.WriteString(" FROM (SELECT " + finishPlaceholder + " UNION ALL " + fresh + ") AS \"pgrollup_l\"")
	if len(group) > 0 {
		b.WriteString(" GROUP BY ")
		b.WriteString(strings.Join(group, ", "))
	}
	outer := strings.Replace(l.core.outer, "SELECT "+finishPlaceholder, b.String(), 1)
	return (&FinishCore{outer: outer}).FinishStatement(cols, rows)
}

func (l *LambdaCore) partCount() int {
	n := 0
	for _, a := range l.aggs {
		if a.name != "distinct" {
			n += len(a.parts)
		}
	}
	return n
}

// combine is the SQL combining an aggregate's parts from both sides into
// the value, and of the type, Postgres gives the aggregate.
func combine(a lambdaAgg, cols []ResultColumn) (string, error) {
	col := func(i int) string { return sqlquote.Ident(cols[i].Name) }
	p := a.parts[0]
	switch a.name {
	case "distinct":
		return "pg_catalog.count(DISTINCT " + col(p) + ")", nil
	case "count":
		return "CAST(COALESCE(pg_catalog.sum(" + col(p) + "), 0) AS pg_catalog.int8)", nil
	case "min", "max":
		return "pg_catalog." + a.name + "(" + col(p) + ")", nil
	case "sum":
		t, err := castType(cols[p].Type)
		if err != nil {
			return "", err
		}
		return "CAST(pg_catalog.sum(" + col(p) + ") AS " + t + ")", nil
	case "avg":
		s, c := col(a.parts[0]), col(a.parts[1])
		switch cols[a.parts[0]].Type.OID {
		case pgtype.Int8OID, pgtype.NumericOID:
			// avg of integers and numerics is numeric_div(sum, count),
			// whose scale follows from theirs: the same here.
			return "CAST(pg_catalog.sum(" + s + ") AS pg_catalog.numeric) / CAST(NULLIF(pg_catalog.sum(" + c + "), 0) AS pg_catalog.numeric)", nil
		case pgtype.Float8OID:
			return "pg_catalog.sum(" + s + ") / CAST(NULLIF(pg_catalog.sum(" + c + "), 0) AS pg_catalog.float8)", nil
		}
		return "", fmt.Errorf("avg over %s is not combined", typeName(cols[a.parts[0]].Type))
	}
	return "", fmt.Errorf("%s is not combined", a.name)
}

// qualifier is how the core's FROM names table: its alias, or its name,
// when exactly one item of the FROM is that table.
func (l *LambdaCore) qualifier(table string) (string, bool) {
	schema, rel := splitTable(table)
	var found []*pg_query.RangeVar
	var walk func(n *pg_query.Node)
	walk = func(n *pg_query.Node) {
		switch {
		case n.GetRangeVar() != nil:
			rv := n.GetRangeVar()
			if rv.Relname == rel && (rv.Schemaname == "" || rv.Schemaname == schema) {
				found = append(found, rv)
			}
		case n.GetJoinExpr() != nil:
			walk(n.GetJoinExpr().Larg)
			walk(n.GetJoinExpr().Rarg)
		}
	}
	for _, f := range l.partial.FromClause {
		walk(f)
	}
	if len(found) != 1 {
		return "", false
	}
	if found[0].Alias != nil {
		return found[0].Alias.Aliasname, true
	}
	return found[0].Relname, true
}

// freshPart is the warehouse part: the partial core over the rows at or
// above the cutoff, and those whose time is NULL, which no build holds.
func (l *LambdaCore) freshPart(qual, column, cutoff string, notNull bool) (string, error) {
	cond := lambdaColumnMark + " >= " + lambdaCutoffMark + " OR " + lambdaColumnMark + " IS NULL"
	if notNull {
		// One range of the column, which an index on it reads alone.
		cond = lambdaColumnMark + " >= " + lambdaCutoffMark
	}
	return l.partWhere(qual, column, cutoff, cond)
}

// BelowCutoff is the partial core over the rows below the cutoff, those a
// lambda rollup's version holds: what continuous verification runs on the
// warehouse to check the rollup's part of an answer. Its arguments are
// LambdaStatement's.
func (l *LambdaCore) BelowCutoff(table, column, cutoff string) (string, error) {
	qual, ok := l.qualifier(table)
	if !ok {
		return "", fmt.Errorf("table %s is not in the statement's FROM once", table)
	}
	return l.partWhere(qual, column, cutoff, lambdaColumnMark+" < "+lambdaCutoffMark)
}

// partWhere is the partial core with cond, over the placeholders of the
// column and the cutoff, added to its WHERE.
func (l *LambdaCore) partWhere(qual, column, cutoff, cond string) (string, error) {
	ref := sqlquote.Ident(qual) + "." + sqlquote.Ident(column)
	extra, err := parseCondition(cond)
	if err != nil {
		return "", fmt.Errorf("lambda condition: %w", err)
	}
	var conj []*pg_query.Node
	if l.partial.WhereClause != nil {
		conj = append(conj, l.partial.WhereClause)
	}
	text, err := l.partialWhere(append(conj, extra))
	if err != nil {
		return "", fmt.Errorf("lambda part: %w", err)
	}
	if strings.Count(text, lambdaColumnMark) != strings.Count(cond, lambdaColumnMark) || strings.Count(text, lambdaCutoffMark) != 1 {
		return "", fmt.Errorf("lambda part: placeholders lost")
	}
	text = strings.ReplaceAll(text, lambdaColumnMark, ref)
	return strings.Replace(text, lambdaCutoffMark, cutoff, 1), nil
}

// parseCondition parses a boolean expression.
func parseCondition(text string) (*pg_query.Node, error) {
	tree, err := pg_query.Parse("SELECT WHERE " + text)
	if err != nil {
		return nil, err
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt().GetWhereClause() == nil {
		return nil, fmt.Errorf("not one condition: %s", text)
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().WhereClause, nil
}

// partialWhere deparses the partial core with its WHERE replaced by the
// conjunction of conj (none: no WHERE).
func (l *LambdaCore) partialWhere(conj []*pg_query.Node) (string, error) {
	sel := proto.Clone(l.partial).(*pg_query.SelectStmt)
	switch len(conj) {
	case 0:
		sel.WhereClause = nil
	case 1:
		sel.WhereClause = conj[0]
	default:
		sel.WhereClause = &pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{
			Boolop: pg_query.BoolExprType_AND_EXPR, Args: conj}}}
	}
	return deparseSelect(l.version, &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
}
