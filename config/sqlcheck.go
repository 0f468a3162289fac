package config

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The SQL snippets in a config (measures, dimensions, filters, join conditions, refresh
// keys, build ranges) are checked with the real Postgres parser, so that a config that
// validates cannot fail later at build time on a syntax error, and so that a snippet can
// never smuggle a second statement or clause into generated SQL.

// measureFuncs are the aggregates a rollup can store and re-aggregate (docs/matching.md, rule 5).
var measureFuncs = map[string]bool{"sum": true, "count": true, "avg": true, "min": true, "max": true}

// knownAggregates are other built-in aggregates, recognised so that nesting one inside a
// measure or using one in a filter is reported as what it is.
var knownAggregates = map[string]bool{
	"array_agg": true, "string_agg": true, "json_agg": true, "jsonb_agg": true,
	"json_object_agg": true, "jsonb_object_agg": true, "bool_and": true, "bool_or": true,
	"every": true, "bit_and": true, "bit_or": true, "bit_xor": true, "stddev": true,
	"stddev_pop": true, "stddev_samp": true, "variance": true, "var_pop": true,
	"var_samp": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"percentile_cont": true, "percentile_disc": true, "mode": true, "any_value": true,
}

// arithmeticOps never yield a boolean, so a condition whose top level is one is a mistake.
var arithmeticOps = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "^": true, "||": true}

// parseExpression parses text as exactly one SQL expression and returns its tree and node.
// It wraps the text in SELECT and then insists that nothing but one unnamed target came
// out, which rejects a second statement, a trailing clause and an alias alike.
func parseExpression(text string) (*pg_query.ParseResult, *pg_query.Node, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil, errors.New("empty")
	}
	tree, err := pg_query.Parse("SELECT " + text)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse %q: %v", text, err)
	}
	sel := singleSelect(tree)
	if sel == nil || !onlyTargetList(sel) || len(sel.TargetList) != 1 {
		return nil, nil, fmt.Errorf("%q is not a single SQL expression", text)
	}
	target := sel.TargetList[0].GetResTarget()
	if target == nil || target.Val == nil {
		return nil, nil, fmt.Errorf("%q is not a single SQL expression", text)
	}
	if target.Name != "" {
		return nil, nil, fmt.Errorf("%q is not a single SQL expression (unexpected %q after it)", text, target.Name)
	}
	return tree, target.Val, nil
}

func singleSelect(tree *pg_query.ParseResult) *pg_query.SelectStmt {
	if len(tree.Stmts) != 1 {
		return nil
	}
	return tree.Stmts[0].GetStmt().GetSelectStmt()
}

func onlyTargetList(s *pg_query.SelectStmt) bool {
	return len(s.DistinctClause) == 0 && s.IntoClause == nil && len(s.FromClause) == 0 &&
		s.WhereClause == nil && len(s.GroupClause) == 0 && s.HavingClause == nil &&
		len(s.WindowClause) == 0 && len(s.ValuesLists) == 0 && len(s.SortClause) == 0 &&
		s.LimitOffset == nil && s.LimitCount == nil && len(s.LockingClause) == 0 &&
		s.WithClause == nil && s.Op == pg_query.SetOperation_SETOP_NONE
}

// checkMeasure returns the measure in canonical form (for duplicate detection) or the
// reason it is not something a rollup can store: one top-level call of sum, count, avg, min
// or max over the table's columns, optionally DISTINCT (count only) and FILTER (WHERE ...).
func checkMeasure(text string, sc scope) (string, error) {
	tree, node, err := parseExpression(text)
	if err != nil {
		return "", err
	}
	call := node.GetFuncCall()
	if call == nil {
		return "", fmt.Errorf("%q is not an aggregate call: a measure is one call of sum, count, avg, min or max (ratios and other expressions are computed at query time from the stored parts)", text)
	}
	if err := checkMeasureCall(call, sc); err != nil {
		return "", fmt.Errorf("%q: %w", text, err)
	}
	return canonical(tree, text), nil
}

func checkMeasureCall(call *pg_query.FuncCall, sc scope) error {
	name, schema := funcName(call)
	if !measureFuncs[name] || (schema != "" && schema != "pg_catalog") {
		return fmt.Errorf("%s is not a supported aggregate (want sum, count, avg, min or max)", qualifiedName(schema, name))
	}
	switch {
	case call.Over != nil:
		return errors.New("window functions (OVER) are not measures")
	case len(call.AggOrder) > 0 || call.AggWithinGroup:
		return errors.New("ORDER BY inside an aggregate is not supported")
	case call.FuncVariadic:
		return errors.New("VARIADIC is not supported")
	case call.AggStar && name != "count":
		return fmt.Errorf("%s(*) is not valid; only count accepts *", name)
	case call.AggDistinct && name != "count":
		return fmt.Errorf("DISTINCT is only supported in count")
	case !call.AggStar && len(call.Args) != 1:
		return fmt.Errorf("%s takes exactly one argument", name)
	}
	for _, arg := range call.Args {
		if err := checkInner(arg, sc, "inside a measure"); err != nil {
			return err
		}
	}
	if call.AggFilter != nil {
		if err := checkBoolean(call.AggFilter); err != nil {
			return fmt.Errorf("FILTER: %w", err)
		}
		if err := checkInner(call.AggFilter, sc, "in FILTER"); err != nil {
			return fmt.Errorf("FILTER: %w", err)
		}
	}
	return nil
}

// checkDimension returns the column in canonical form or the reason text is not a plain
// column reference (column, table.column or schema.table.column) over the rollup's tables.
func checkDimension(text string, sc scope) (string, error) {
	_, node, err := parseExpression(text)
	if err != nil {
		return "", err
	}
	ref := node.GetColumnRef()
	if ref == nil {
		return "", fmt.Errorf("%q is not a column reference (want column or table.column)", text)
	}
	qualifier, column, ok := columnName(ref)
	if !ok || len(qualifier) > 2 {
		return "", fmt.Errorf("%q is not a column reference (want column or table.column)", text)
	}
	if err := checkQualifier(qualifier, text, sc); err != nil {
		return "", err
	}
	return strings.Join(append(qualifier, column), "."), nil
}

// checkCondition checks a filter or join condition: one boolean SQL expression over the
// rollup's tables, without aggregates, window functions or subqueries (a rollup whose
// filter has a subquery could never match, as queries with subqueries in WHERE pass through).
func checkCondition(text string, sc scope) error {
	_, node, err := parseExpression(text)
	if err != nil {
		return err
	}
	if err := checkBoolean(node); err != nil {
		return fmt.Errorf("%q: %w", text, err)
	}
	if err := checkInner(node, sc, "in a condition"); err != nil {
		return fmt.Errorf("%q: %w", text, err)
	}
	return nil
}

// checkQuery checks a refresh key or build range bound: a single read-only SELECT.
func checkQuery(text string, oneColumn bool) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty")
	}
	tree, err := pg_query.Parse(text)
	if err != nil {
		return fmt.Errorf("cannot parse %q: %v", text, err)
	}
	sel := singleSelect(tree)
	switch {
	case sel == nil:
		return fmt.Errorf("%q is not a single SELECT statement", text)
	case sel.IntoClause != nil:
		return fmt.Errorf("%q: SELECT INTO is not allowed", text)
	case len(sel.LockingClause) > 0:
		return fmt.Errorf("%q: must not lock rows", text)
	case modifiesData(sel):
		return fmt.Errorf("%q: must not modify data", text)
	case oneColumn && sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.ValuesLists) == 0 && len(sel.TargetList) != 1:
		return fmt.Errorf("%q must return exactly one column", text)
	}
	return nil
}

// checkAuthQuery checks auth.query: a read-only SELECT of the role's name
// and its password verifier, for the role name $1 and no other parameter.
func checkAuthQuery(text string) error {
	if err := checkQuery(text, false); err != nil {
		return err
	}
	tree, _ := pg_query.Parse(text) // parsed by checkQuery
	sel := singleSelect(tree)
	if sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.ValuesLists) == 0 && len(sel.TargetList) != 2 && !selectsStar(sel) {
		return fmt.Errorf("%q must return two columns: the role's name and its password (pg_authid's rolname and rolpassword)", text)
	}
	params := map[int32]bool{}
	collectParams(tree.ProtoReflect(), params)
	if !params[1] || len(params) != 1 {
		return fmt.Errorf("%q must take the role name as $1, and no other parameter", text)
	}
	return nil
}

// selectsStar reports whether a target list holds a *, whose columns only
// the warehouse knows.
func selectsStar(sel *pg_query.SelectStmt) bool {
	for _, t := range sel.TargetList {
		for _, f := range t.GetResTarget().GetVal().GetColumnRef().GetFields() {
			if f.GetAStar() != nil {
				return true
			}
		}
	}
	return false
}

// collectParams notes the numbers of the $n parameters anywhere in m.
func collectParams(m protoreflect.Message, into map[int32]bool) {
	if p, ok := m.Interface().(*pg_query.ParamRef); ok {
		into[p.GetNumber()] = true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				collectParams(list.Get(i).Message(), into)
			}
		default:
			collectParams(v.Message(), into)
		}
		return true
	})
}

// checkBoolean rejects expressions that are certainly not conditions. Anything it cannot
// judge without the warehouse's catalog (a column, a function call) is accepted.
func checkBoolean(n *pg_query.Node) error {
	switch {
	case n.GetAConst() != nil:
		c := n.GetAConst()
		if c.GetIval() != nil || c.GetFval() != nil || c.GetBsval() != nil {
			return errors.New("a number is not a condition")
		}
	case n.GetAExpr() != nil:
		e := n.GetAExpr()
		if e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && len(e.Name) == 1 && arithmeticOps[e.Name[0].GetString_().GetSval()] {
			return fmt.Errorf("an arithmetic expression (%s) is not a condition", e.Name[0].GetString_().GetSval())
		}
	case n.GetTypeCast() != nil:
		names := n.GetTypeCast().GetTypeName().GetNames()
		if len(names) > 0 {
			typ := names[len(names)-1].GetString_().GetSval()
			if typ != "bool" && typ != "boolean" {
				return fmt.Errorf("a value cast to %s is not a condition", typ)
			}
		}
	}
	return nil
}

// checkInner walks an expression for things a rollup cannot build or match: aggregates,
// window functions, subqueries, parameters, and columns of tables outside the scope.
func checkInner(n *pg_query.Node, sc scope, where string) error {
	var problem error
	walk(n, func(m proto.Message) bool {
		switch x := m.(type) {
		case *pg_query.FuncCall:
			if x.Over != nil {
				problem = fmt.Errorf("window functions are not allowed %s", where)
			} else if isAggregate(x) {
				name, _ := funcName(x)
				problem = fmt.Errorf("aggregate %s is not allowed %s", name, where)
			}
		case *pg_query.GroupingFunc:
			problem = fmt.Errorf("GROUPING is not allowed %s", where)
		case *pg_query.SubLink:
			problem = fmt.Errorf("subqueries are not allowed %s", where)
		case *pg_query.ParamRef:
			problem = fmt.Errorf("parameters ($n) are not allowed %s", where)
		case *pg_query.ColumnRef:
			qualifier, column, _ := columnName(x)
			problem = checkQualifier(qualifier, strings.Join(append(qualifier, column), "."), sc)
		}
		return problem == nil
	})
	return problem
}

func modifiesData(sel *pg_query.SelectStmt) bool {
	found := false
	walk(sel, func(m proto.Message) bool {
		switch m.(type) {
		case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
			found = true
		}
		return !found
	})
	return found
}

// checkQualifier requires a column's table qualifier to name the fact table or a declared
// join, because a rollup can only read the tables it is built from.
func checkQualifier(qualifier []string, ref string, sc scope) error {
	if len(qualifier) == 0 || sc.resolves(qualifier) {
		return nil
	}
	if len(sc) == 0 {
		return fmt.Errorf("unknown table %q in %s", strings.Join(qualifier, "."), ref)
	}
	return fmt.Errorf("unknown table %q in %s (want one of: %s)", strings.Join(qualifier, "."), ref, sc.names())
}

// walk visits every protobuf message in a parse tree, depth first, until visit returns false.
// Walking by reflection keeps this correct for all of Postgres's node types, including ones
// added in later parser versions.
func walk(m proto.Message, visit func(proto.Message) bool) bool {
	if !visit(m) {
		return false
	}
	keepGoing := true
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len() && keepGoing; i++ {
				keepGoing = walk(list.Get(i).Message().Interface(), visit)
			}
		default:
			keepGoing = walk(v.Message().Interface(), visit)
		}
		return keepGoing
	})
	return keepGoing
}

func isAggregate(call *pg_query.FuncCall) bool {
	name, _ := funcName(call)
	return call.AggStar || call.AggDistinct || call.AggFilter != nil || len(call.AggOrder) > 0 ||
		call.AggWithinGroup || measureFuncs[name] || knownAggregates[name]
}

// funcName returns a function's name and schema (empty when unqualified).
func funcName(call *pg_query.FuncCall) (name, schema string) {
	parts := make([]string, 0, len(call.Funcname))
	for _, n := range call.Funcname {
		parts = append(parts, n.GetString_().GetSval())
	}
	if len(parts) == 0 {
		return "", ""
	}
	return parts[len(parts)-1], strings.Join(parts[:len(parts)-1], ".")
}

func qualifiedName(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// columnName splits a column reference into its table qualifier and column; ok is false
// for table.* and other forms that are not a single column.
func columnName(ref *pg_query.ColumnRef) (qualifier []string, column string, ok bool) {
	names := make([]string, 0, len(ref.Fields))
	for _, f := range ref.Fields {
		s := f.GetString_()
		if s == nil {
			return nil, "", false
		}
		names = append(names, s.GetSval())
	}
	if len(names) == 0 {
		return nil, "", false
	}
	return names[:len(names)-1], names[len(names)-1], true
}

// canonical is the deparsed expression, so "COUNT( * )" and "count(*)" compare equal.
func canonical(tree *pg_query.ParseResult, text string) string {
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return text
	}
	return strings.TrimPrefix(out, "SELECT ")
}
