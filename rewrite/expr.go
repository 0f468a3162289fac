package rewrite

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// kind is the kind of an expression node.
type kind uint8

const (
	kCol      kind = iota + 1 // column reference: qual + name
	kStar                     // * or alias.* in a select list
	kConst                    // literal: lit, str
	kParam                    // $n: param
	kFunc                     // function call or aggregate: name, args, star, distinct, filter
	kCast                     // args[0]::typ (typName keeps the spelled name for column naming)
	kOp                       // operator name with one or two args
	kAnd                      // args
	kOr                       // args
	kNot                      // args[0]
	kIn                       // args[0] IN (args[1:]); not for NOT IN
	kBetween                  // args[0] BETWEEN args[1] AND args[2]; not for NOT BETWEEN
	kNullTest                 // args[0] IS NULL; not for IS NOT NULL
	kCase                     // args: WHEN/THEN pairs then ELSE (nil when absent); caseArg optional
	kCoalesce                 // args
	kNullIf                   // args[0], args[1]
	kMinMax                   // greatest/least: name, args
	kSVF                      // current_date, current_timestamp, localtimestamp: name
	kCollate                  // args[0] COLLATE qual.name
)

// litKind is the lexical kind of a literal.
type litKind uint8

const (
	litString litKind = iota + 1
	litInt
	litNumeric
	litBool
	litNull
)

// expr is the rewriter's own expression tree: the part of libpg_query's tree it
// understands, with names normalised the way Postgres folds them, so that two
// spellings of one expression compare equal.
type expr struct {
	kind     kind
	name     string
	qual     []string
	args     []*expr
	caseArg  *expr
	filter   *expr
	typ      Type
	typName  string
	lit      litKind
	str      string
	param    int
	star     bool
	distinct bool
	not      bool

	// Filled by resolution.
	col *colBinding
	// private: this node belongs to one decision (a clone), so its key may be
	// memoised in memo; shared trees (rollup definitions) never are.
	private bool
	memo    string
}

// unsupportedError says why a node cannot be represented; rule is the §3 rule it breaks.
type unsupportedError struct {
	code ReasonCode
	msg  string
}

func (e *unsupportedError) Error() string { return e.msg }

func unsupported(code ReasonCode, format string, args ...any) *unsupportedError {
	return &unsupportedError{code: code, msg: sprintf(format, args...)}
}

// volatileFuncs are functions whose result changes between calls or rows; a
// query using them is never answered from a rollup (rule 1).
var volatileFuncs = map[string]bool{
	"random": true, "clock_timestamp": true, "timeofday": true, "statement_timestamp": true,
	"nextval": true, "setval": true, "currval": true, "lastval": true, "gen_random_uuid": true,
	"uuid_generate_v4": true, "txid_current": true, "pg_sleep": true, "setseed": true,
	"random_normal": true, "pg_backend_pid": true, "inet_client_addr": true,
	"current_setting": true, "set_config": true, "version": true, "current_query": true,
}

// windowOnlyFuncs are window functions that can appear without OVER only in error.
var windowOnlyFuncs = map[string]bool{
	"row_number": true, "rank": true, "dense_rank": true, "percent_rank": true,
	"cume_dist": true, "ntile": true, "lag": true, "lead": true, "first_value": true,
	"last_value": true, "nth_value": true,
}

func strVal(n *pg_query.Node) (string, bool) {
	if s := n.GetString_(); s != nil {
		return s.Sval, true
	}
	return "", false
}

// funcName returns the function name without a pg_catalog qualifier, or "" if
// the function lives in another schema (a user function: never rewritten).
func funcName(names []*pg_query.Node) string {
	parts := make([]string, 0, len(names))
	for _, n := range names {
		s, ok := strVal(n)
		if !ok {
			return ""
		}
		parts = append(parts, s)
	}
	switch {
	case len(parts) == 1:
		return parts[0]
	case len(parts) == 2 && parts[0] == "pg_catalog":
		return parts[1]
	}
	return ""
}

// typeFromName converts a TypeName to a Type and the name Postgres uses for
// the column it heads (FigureColname uses the last name component).
func typeFromName(tn *pg_query.TypeName) (Type, string, error) {
	if tn == nil || tn.Setof || tn.PctType || len(tn.ArrayBounds) > 0 {
		return unknownType, "", unsupported(ReasonExpression, "array, SETOF and %%TYPE casts are not supported on rollups")
	}
	var parts []string
	for _, n := range tn.Names {
		s, ok := strVal(n)
		if !ok {
			return unknownType, "", unsupported(ReasonExpression, "unsupported type name")
		}
		parts = append(parts, s)
	}
	last := parts[len(parts)-1]
	if len(parts) == 2 && parts[0] != "pg_catalog" || len(parts) > 2 {
		return unknownType, last, unsupported(ReasonExpression, "type %s is not supported on rollups", strings.Join(parts, "."))
	}
	oid, ok := typeNames[last]
	if !ok {
		return unknownType, last, unsupported(ReasonExpression, "type %s is not supported on rollups", last)
	}
	t := plain(oid)
	if len(tn.Typmods) > 0 {
		var nums []int
		for _, m := range tn.Typmods {
			c := m.GetAConst()
			if c == nil || c.GetIval() == nil {
				return unknownType, last, unsupported(ReasonExpression, "unsupported type modifier")
			}
			nums = append(nums, int(c.GetIval().Ival))
		}
		mod, ok := typmodFor(oid, nums)
		if !ok {
			return unknownType, last, unsupported(ReasonExpression, "unsupported type modifier on %s", last)
		}
		t.Typmod = mod
	} else if oid == pgtype.BPCharOID && len(parts) == 2 {
		// "char" spelled as a keyword is char(1).
		t.Typmod = 1 + 4
	}
	return t, last, nil
}

// convert turns a libpg_query expression into an expr.
func convert(n *pg_query.Node) (*expr, error) {
	if n == nil {
		return nil, unsupported(ReasonShape, "empty expression")
	}
	switch {
	case n.GetColumnRef() != nil:
		cr := n.GetColumnRef()
		var names []string
		for i, f := range cr.Fields {
			if f.GetAStar() != nil {
				if i != len(cr.Fields)-1 {
					return nil, unsupported(ReasonShape, "unsupported column reference")
				}
				return &expr{kind: kStar, qual: names}, nil
			}
			s, ok := strVal(f)
			if !ok {
				return nil, unsupported(ReasonShape, "unsupported column reference")
			}
			names = append(names, s)
		}
		if len(names) == 0 || len(names) > 4 {
			return nil, unsupported(ReasonShape, "unsupported column reference")
		}
		return &expr{kind: kCol, name: names[len(names)-1], qual: names[:len(names)-1]}, nil

	case n.GetAConst() != nil:
		c := n.GetAConst()
		switch {
		case c.Isnull:
			return &expr{kind: kConst, lit: litNull}, nil
		case c.GetIval() != nil:
			return &expr{kind: kConst, lit: litInt, str: strconv.FormatInt(int64(c.GetIval().Ival), 10)}, nil
		case c.GetFval() != nil:
			// Integers too large for int4 come as Fval without a point: int8 or numeric.
			return &expr{kind: kConst, lit: litNumeric, str: c.GetFval().Fval}, nil
		case c.GetBoolval() != nil:
			return &expr{kind: kConst, lit: litBool, str: strconv.FormatBool(c.GetBoolval().Boolval)}, nil
		case c.GetSval() != nil:
			if strings.IndexByte(c.GetSval().Sval, 0) >= 0 {
				// Postgres text cannot hold NUL; the rewriter's SQL templates use it.
				return nil, unsupported(ReasonExpression, "a string constant holding a NUL byte is passed through")
			}
			return &expr{kind: kConst, lit: litString, str: c.GetSval().Sval}, nil
		}
		return nil, unsupported(ReasonExpression, "bit-string literals are not supported on rollups")

	case n.GetParamRef() != nil:
		return &expr{kind: kParam, param: int(n.GetParamRef().Number)}, nil

	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		arg, err := convert(tc.Arg)
		if err != nil {
			return nil, err
		}
		t, name, err := typeFromName(tc.TypeName)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kCast, args: []*expr{arg}, typ: t, typName: name}, nil

	case n.GetFuncCall() != nil:
		return convertFunc(n.GetFuncCall())

	case n.GetAExpr() != nil:
		return convertAExpr(n.GetAExpr())

	case n.GetBoolExpr() != nil:
		b := n.GetBoolExpr()
		args, err := convertList(b.Args)
		if err != nil {
			return nil, err
		}
		switch b.Boolop {
		case pg_query.BoolExprType_AND_EXPR:
			return &expr{kind: kAnd, args: args}, nil
		case pg_query.BoolExprType_OR_EXPR:
			return &expr{kind: kOr, args: args}, nil
		case pg_query.BoolExprType_NOT_EXPR:
			return &expr{kind: kNot, args: args}, nil
		}

	case n.GetNullTest() != nil:
		nt := n.GetNullTest()
		arg, err := convert(nt.Arg)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kNullTest, args: []*expr{arg}, not: nt.Nulltesttype == pg_query.NullTestType_IS_NOT_NULL}, nil

	case n.GetCaseExpr() != nil:
		ce := n.GetCaseExpr()
		e := &expr{kind: kCase}
		if ce.Arg != nil {
			a, err := convert(ce.Arg)
			if err != nil {
				return nil, err
			}
			e.caseArg = a
		}
		for _, w := range ce.Args {
			cw := w.GetCaseWhen()
			if cw == nil {
				return nil, unsupported(ReasonExpression, "unsupported CASE")
			}
			c, err := convert(cw.Expr)
			if err != nil {
				return nil, err
			}
			r, err := convert(cw.Result)
			if err != nil {
				return nil, err
			}
			e.args = append(e.args, c, r)
		}
		var def *expr
		if ce.Defresult != nil {
			d, err := convert(ce.Defresult)
			if err != nil {
				return nil, err
			}
			def = d
		}
		e.args = append(e.args, def)
		return e, nil

	case n.GetCoalesceExpr() != nil:
		args, err := convertList(n.GetCoalesceExpr().Args)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kCoalesce, args: args}, nil

	case n.GetMinMaxExpr() != nil:
		mm := n.GetMinMaxExpr()
		args, err := convertList(mm.Args)
		if err != nil {
			return nil, err
		}
		name := "greatest"
		if mm.Op == pg_query.MinMaxOp_IS_LEAST {
			name = "least"
		}
		return &expr{kind: kMinMax, name: name, args: args}, nil

	case n.GetSqlvalueFunction() != nil:
		svf := n.GetSqlvalueFunction()
		switch svf.Op {
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
			return &expr{kind: kSVF, name: "current_date"}, nil
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:
			return &expr{kind: kSVF, name: "current_timestamp"}, nil
		case pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:
			return &expr{kind: kSVF, name: "localtimestamp"}, nil
		}
		return nil, unsupported(ReasonExpression, "this SQL value function is not supported on rollups")

	case n.GetSubLink() != nil:
		if v := scalarSelect(n.GetSubLink()); v != nil {
			return convert(v)
		}
		return nil, unsupported(ReasonSubquery, "subqueries are not answered from rollups")

	case n.GetCollateClause() != nil:
		cc := n.GetCollateClause()
		var names []string
		for _, p := range cc.Collname {
			s, ok := strVal(p)
			if !ok {
				return nil, unsupported(ReasonExpression, "this COLLATE clause is not supported on rollups")
			}
			names = append(names, s)
		}
		if len(names) == 0 || cc.Arg == nil {
			return nil, unsupported(ReasonExpression, "this COLLATE clause is not supported on rollups")
		}
		arg, err := convert(cc.Arg)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kCollate, name: names[len(names)-1], qual: names[:len(names)-1], args: []*expr{arg}}, nil

	case n.GetBooleanTest() != nil:
		return nil, unsupported(ReasonExpression, "IS TRUE/FALSE/UNKNOWN is not supported on rollups")
	}
	return nil, unsupported(ReasonExpression, "expression %s is not supported on rollups", nodeName(n))
}

// nodeName names a node's type for messages.
// scalarSelect returns the expression of a scalar subquery that only
// computes one value, (SELECT expr) with no FROM or any other clause, which
// Looker writes around its relative date bounds; nil for any other
// subquery. Such a subquery is one row holding expr, of expr's type, so
// the expression itself means the same (a volatile function, which would
// run once rather than per row, is refused anyway).
func scalarSelect(sl *pg_query.SubLink) *pg_query.Node {
	if sl.SubLinkType != pg_query.SubLinkType_EXPR_SUBLINK || sl.Testexpr != nil || len(sl.OperName) != 0 {
		return nil
	}
	sel := sl.Subselect.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 || len(sel.FromClause) != 0 || sel.WhereClause != nil ||
		len(sel.GroupClause) != 0 || sel.HavingClause != nil || len(sel.WindowClause) != 0 ||
		len(sel.ValuesLists) != 0 || len(sel.SortClause) != 0 || sel.LimitCount != nil || sel.LimitOffset != nil ||
		len(sel.LockingClause) != 0 || sel.WithClause != nil || len(sel.DistinctClause) != 0 ||
		sel.IntoClause != nil || sel.Op != pg_query.SetOperation_SETOP_NONE {
		return nil
	}
	rt := sel.TargetList[0].GetResTarget()
	if rt == nil || rt.Val == nil {
		return nil
	}
	return rt.Val
}

func nodeName(n *pg_query.Node) string {
	s := strings.TrimPrefix(sprintf("%T", n.GetNode()), "*pg_query.Node_")
	return s
}

func convertList(ns []*pg_query.Node) ([]*expr, error) {
	out := make([]*expr, 0, len(ns))
	for _, n := range ns {
		e, err := convert(n)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func convertFunc(fc *pg_query.FuncCall) (*expr, error) {
	name := funcName(fc.Funcname)
	if name == "" {
		return nil, unsupported(ReasonExpression, "user-defined functions are not answered from rollups")
	}
	if fc.Over != nil || windowOnlyFuncs[name] {
		return nil, unsupported(ReasonWindow, "window function %s is not answered from rollups", name)
	}
	if volatileFuncs[name] {
		return nil, unsupported(ReasonVolatile, "function %s is volatile or session-dependent", name)
	}
	if len(fc.AggOrder) > 0 || fc.AggWithinGroup || fc.FuncVariadic {
		return nil, unsupported(ReasonMeasure, "ordered-set and ORDER BY aggregates are not answered from rollups")
	}
	if name == "make_interval" {
		iv, ok := makeInterval(fc)
		if !ok {
			return nil, unsupported(ReasonExpression, "make_interval is answered from rollups only with whole-number constants for years, months, weeks, days, hours and mins")
		}
		return iv, nil
	}
	args, err := convertList(fc.Args)
	if err != nil {
		return nil, err
	}
	if name == "date" && len(args) == 1 && !fc.AggStar && !fc.AggDistinct && fc.AggFilter == nil {
		// date(x) is Postgres's cast to date written as a call (Looker's
		// DATE(orders.created_at)): the same conversion, named "date".
		return &expr{kind: kCast, name: "date", typ: plain(pgtype.DateOID), typName: "date", args: args}, nil
	}
	e := &expr{kind: kFunc, name: name, args: args, star: fc.AggStar, distinct: fc.AggDistinct}
	if fc.AggFilter != nil {
		f, err := convert(fc.AggFilter)
		if err != nil {
			return nil, err
		}
		e.filter = f
	}
	return e, nil
}

func convertAExpr(a *pg_query.A_Expr) (*expr, error) {
	op := ""
	if len(a.Name) > 0 {
		op = funcName(a.Name)
		if op == "" {
			return nil, unsupported(ReasonExpression, "schema-qualified operators are not supported on rollups")
		}
	}
	var l, r *expr
	var err error
	if a.Lexpr != nil {
		if l, err = convert(a.Lexpr); err != nil {
			return nil, err
		}
	}
	switch a.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if a.Rexpr == nil {
			return nil, unsupported(ReasonExpression, "postfix operators are not supported")
		}
		if r, err = convert(a.Rexpr); err != nil {
			return nil, err
		}
		if l == nil {
			return &expr{kind: kOp, name: op, args: []*expr{r}}, nil
		}
		return &expr{kind: kOp, name: op, args: []*expr{l, r}}, nil
	case pg_query.A_Expr_Kind_AEXPR_IN:
		list := a.Rexpr.GetList()
		if list == nil {
			return nil, unsupported(ReasonSubquery, "IN with a subquery is not answered from rollups")
		}
		items, err := convertList(list.Items)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kIn, args: append([]*expr{l}, items...), not: op == "<>"}, nil
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN:
		list := a.Rexpr.GetList()
		if list == nil || len(list.Items) != 2 {
			return nil, unsupported(ReasonExpression, "unsupported BETWEEN")
		}
		items, err := convertList(list.Items)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kBetween, args: []*expr{l, items[0], items[1]}, not: a.Kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN}, nil
	case pg_query.A_Expr_Kind_AEXPR_NULLIF:
		if r, err = convert(a.Rexpr); err != nil {
			return nil, err
		}
		return &expr{kind: kNullIf, args: []*expr{l, r}}, nil
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		if r, err = convert(a.Rexpr); err != nil {
			return nil, err
		}
		name := "is distinct from"
		if a.Kind == pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT {
			name = "is not distinct from"
		}
		return &expr{kind: kOp, name: name, args: []*expr{l, r}}, nil
	case pg_query.A_Expr_Kind_AEXPR_LIKE:
		// x LIKE p is the operator ~~ (NOT LIKE !~~); an ESCAPE clause makes
		// p a like_escape() call, which is not translated.
		if r, err = convert(a.Rexpr); err != nil {
			return nil, err
		}
		if op != "~~" && op != "!~~" {
			return nil, unsupported(ReasonFilterNotEvaluable, "LIKE with operator %s is not evaluated on rollups", op)
		}
		return &expr{kind: kOp, name: op, args: []*expr{l, r}}, nil
	case pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		// ILIKE folds case by the warehouse's locale; SIMILAR TO is a regex.
		return nil, unsupported(ReasonFilterNotEvaluable, "ILIKE and SIMILAR TO are not evaluated on rollups")
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		// x = ANY (ARRAY[a, b]) is x IN (a, b) and x <> ALL (ARRAY[a, b])
		// is x NOT IN (a, b), NULLs included: the form pg_get_expr and
		// some drivers print IN lists in.
		arr := a.Rexpr.GetAArrayExpr()
		anyEq := a.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY && op == "="
		allNe := a.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ALL && op == "<>"
		if arr == nil || len(arr.Elements) == 0 || !anyEq && !allNe {
			break
		}
		items, err := convertList(arr.Elements)
		if err != nil {
			return nil, err
		}
		return &expr{kind: kIn, args: append([]*expr{l}, items...), not: allNe}, nil
	}
	return nil, unsupported(ReasonExpression, "ANY/ALL and symmetric BETWEEN are not supported on rollups")
}

// walk calls f on e and every sub-expression (including aggregate filters)
// until f returns false for a node, whose children are then skipped.
func walk(e *expr, f func(*expr) bool) {
	if e == nil || !f(e) {
		return
	}
	walk(e.caseArg, f)
	for _, a := range e.args {
		walk(a, f)
	}
	walk(e.filter, f)
}

// makeIntervalFields are make_interval's parameters in order, with the unit
// parseInterval reads for each; secs (a double) is not folded.
var makeIntervalFields = []struct{ param, unit string }{
	{"years", "year"}, {"months", "month"}, {"weeks", "week"}, {"days", "day"}, {"hours", "hour"}, {"mins", "minute"},
}

// makeInterval reads make_interval of integer constants, by position or by
// name (Malloy writes make_interval(days=>n)), as the interval literal it
// equals, so that it folds like INTERVAL 'n days'. ok is false for anything
// else.
func makeInterval(fc *pg_query.FuncCall) (*expr, bool) {
	if len(fc.Args) == 0 || len(fc.Args) > len(makeIntervalFields) || fc.AggStar || fc.AggDistinct || fc.AggFilter != nil {
		return nil, false
	}
	vals := make([]int64, len(makeIntervalFields))
	set := make([]bool, len(makeIntervalFields))
	named := false
	for i, a := range fc.Args {
		pos := i
		n := a
		if na := a.GetNamedArgExpr(); na != nil {
			named = true
			pos = -1
			for j, f := range makeIntervalFields {
				if f.param == na.Name {
					pos = j
				}
			}
			n = na.Arg
		} else if named {
			return nil, false // Postgres: positional after named is a syntax error
		}
		if pos < 0 || set[pos] {
			return nil, false
		}
		e, err := convert(n)
		if err != nil {
			return nil, false
		}
		v, ok := constInt(e)
		if !ok || e.kind != kConst && e.kind != kOp || v < -1000000 || v > 1000000 {
			return nil, false
		}
		vals[pos], set[pos] = v, true
	}
	var parts []string
	for i, f := range makeIntervalFields {
		if set[i] {
			parts = append(parts, strconv.FormatInt(vals[i], 10)+" "+f.unit)
		}
	}
	return &expr{kind: kCast, typ: plain(pgtype.IntervalOID), typName: "make_interval",
		args: []*expr{{kind: kConst, lit: litString, str: strings.Join(parts, " ")}}}, true
}
