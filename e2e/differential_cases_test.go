package e2e

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The statements of rewrite's own tests are read from their source at run
// time, so that every case added there is compared here too (DESIGN §8:
// every rewrite test case runs through pgrollup and directly). The schema
// and the first six rollups mirror that package's test configuration, so a
// case it expects to match must be answered from a rollup here as well.

const diffRewriteDir = "../rewrite"

// diffParamOIDs maps the pgtype OID constants the cases use for parameters,
// as written there.
var diffParamOIDs = map[string]uint32{
	"pgtype.BoolOID": pgtype.BoolOID, "pgtype.Int2OID": pgtype.Int2OID, "pgtype.Int4OID": pgtype.Int4OID, "pgtype.Int8OID": pgtype.Int8OID,
	"pgtype.TextOID": pgtype.TextOID, "pgtype.VarcharOID": pgtype.VarcharOID, "pgtype.Float8OID": pgtype.Float8OID,
	"pgtype.NumericOID": pgtype.NumericOID, "pgtype.DateOID": pgtype.DateOID, "pgtype.TimestampOID": pgtype.TimestampOID,
	"pgtype.TimestamptzOID": pgtype.TimestamptzOID, "pgtype.IntervalOID": pgtype.IntervalOID, "pgtype.UnknownOID": pgtype.UnknownOID,
}

// diffRewriteStmts reads every decideCase of rewrite/decide_test.go, the
// queries of rewrite/duckdb_test.go, and the fuzz seeds and corpus.
func diffRewriteStmts() ([]diffStmt, error) {
	fset := token.NewFileSet()
	var out []diffStmt
	decide, err := parser.ParseFile(fset, filepath.Join(diffRewriteDir, "decide_test.go"), nil, 0)
	if err != nil {
		return nil, err
	}
	n := 0
	var perr error
	for _, decl := range decide.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		ast.Inspect(fn, func(node ast.Node) bool {
			lit, ok := node.(*ast.CompositeLit)
			if !ok || !goIsSliceOf(lit.Type, "decideCase") {
				return true
			}
			for _, el := range lit.Elts {
				st, err := diffDecideCase(fn.Name.Name, el)
				if err != nil {
					perr = fmt.Errorf("%s: %w", fset.Position(el.Pos()), err)
					return false
				}
				n++
				if st != nil {
					out = append(out, *st)
				}
			}
			return false
		})
	}
	if perr != nil {
		return nil, perr
	}
	if n < 100 {
		// The file's shape changed; better to fail than to compare nothing.
		return nil, fmt.Errorf("found only %d decideCase literals in rewrite/decide_test.go; has its structure changed?", n)
	}

	duck, err := parser.ParseFile(fset, filepath.Join(diffRewriteDir, "duckdb_test.go"), nil, 0)
	if err != nil {
		return nil, err
	}
	nd := 0
	ast.Inspect(duck, func(node ast.Node) bool {
		lit, ok := node.(*ast.CompositeLit)
		if !ok {
			return true
		}
		arr, ok := lit.Type.(*ast.ArrayType)
		if !ok {
			return true
		}
		if _, ok := arr.Elt.(*ast.StructType); !ok {
			return true
		}
		for _, el := range lit.Elts {
			q, ok := el.(*ast.CompositeLit)
			if !ok || len(q.Elts) != 3 {
				continue
			}
			zone, ok1 := goStringLit(q.Elts[0])
			sql, ok2 := goStringLit(q.Elts[1])
			if !ok1 || !ok2 {
				continue
			}
			nd++
			out = append(out, diffStmt{Kind: "rewrite-duckdb", Name: fmt.Sprintf("duckdb #%d", nd), Zone: zone, SQL: sql})
		}
		return false
	})
	if nd < 10 {
		return nil, fmt.Errorf("found only %d queries in rewrite/duckdb_test.go; has its structure changed?", nd)
	}

	// The fuzz target's seeds, in each of its zones, and its corpus.
	fuzz, err := parser.ParseFile(fset, filepath.Join(diffRewriteDir, "fuzz_test.go"), nil, 0)
	if err != nil {
		return nil, err
	}
	var seeds []string
	ast.Inspect(fuzz, func(node ast.Node) bool {
		lit, ok := node.(*ast.CompositeLit)
		if !ok || !goIsSliceOf(lit.Type, "string") {
			return true
		}
		for _, el := range lit.Elts {
			if s, ok := goStringLit(el); ok && strings.Contains(strings.ToUpper(s), "SELECT") {
				seeds = append(seeds, s)
			}
		}
		return false
	})
	corpus, _ := filepath.Glob(filepath.Join(diffRewriteDir, "testdata", "fuzz", "FuzzDecide", "*"))
	for _, f := range corpus {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if s, ok := diffFuzzCorpusString(string(data)); ok {
			seeds = append(seeds, s)
		}
	}
	for i, s := range seeds {
		for _, z := range []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"} {
			out = append(out, diffStmt{Kind: "rewrite-fuzz", Name: fmt.Sprintf("fuzz seed #%d", i+1), Zone: z, SQL: s})
		}
	}
	return out, nil
}

func goIsSliceOf(e ast.Expr, elem string) bool {
	arr, ok := e.(*ast.ArrayType)
	if !ok || arr.Len != nil {
		return false
	}
	id, ok := arr.Elt.(*ast.Ident)
	return ok && id.Name == elem
}

// goStringLit evaluates a string literal or a concatenation of them.
func goStringLit(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(x.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		a, ok1 := goStringLit(x.X)
		b, ok2 := goStringLit(x.Y)
		return a + b, ok1 && ok2
	case *ast.ParenExpr:
		return goStringLit(x.X)
	}
	return "", false
}

// diffDecideCase turns one decideCase literal into a statement, or nil for a
// case this suite does not run. A case that changes the configuration, the
// catalog, the session or the clock is run and compared, but its expected
// decision does not hold here.
func diffDecideCase(fn string, el ast.Expr) (*diffStmt, error) {
	lit, ok := el.(*ast.CompositeLit)
	if !ok {
		return nil, fmt.Errorf("a decideCase that is not a literal")
	}
	st := &diffStmt{Kind: "rewrite", Zone: "UTC"}
	var rollup string
	var adjusted []string
	for _, f := range lit.Elts {
		kv, ok := f.(*ast.KeyValueExpr)
		if !ok {
			return nil, fmt.Errorf("a decideCase with positional fields")
		}
		key := kv.Key.(*ast.Ident).Name
		switch key {
		case "name", "sql", "rollup", "zone":
			s, ok := goStringLit(kv.Value)
			if !ok {
				return nil, fmt.Errorf("field %s is not a string literal", key)
			}
			switch key {
			case "name":
				st.Name = strings.TrimSuffix(fn, "Cases") + "/" + s
			case "sql":
				st.SQL = s
			case "rollup":
				rollup = s
			case "zone":
				st.Zone = s
			}
		case "params":
			ps, err := diffCaseParams(kv.Value)
			if err != nil {
				return nil, err
			}
			st.Params = ps
			adjusted = append(adjusted, key)
		case "cfg", "cat", "sess", "now":
			adjusted = append(adjusted, key)
		}
	}
	if st.SQL == "" {
		return nil, fmt.Errorf("case %s has no sql", st.Name)
	}
	if rollup != "" {
		st.Why = "rewrite's tests expect rollup " + rollup
		if len(adjusted) > 0 {
			st.Why += " with their own " + strings.Join(adjusted, ", ")
		}
	}
	// Parameters pass through for now (routing needs their values at Parse).
	st.MustHit = rollup != "" && len(adjusted) == 0
	return st, nil
}

func diffCaseParams(e ast.Expr) ([]diffParam, error) {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, fmt.Errorf("params is not a literal")
	}
	var out []diffParam
	for _, el := range lit.Elts {
		pl, ok := el.(*ast.CompositeLit)
		if !ok {
			return nil, fmt.Errorf("a Param that is not a literal")
		}
		var p diffParam
		null := false
		val := ""
		for _, f := range pl.Elts {
			kv := f.(*ast.KeyValueExpr)
			switch kv.Key.(*ast.Ident).Name {
			case "Type":
				name := types.ExprString(kv.Value)
				if diffParamOIDs[name] == 0 {
					return nil, fmt.Errorf("unknown parameter type %s", name)
				}
				p.OID = diffParamOIDs[name]
			case "Value":
				s, ok := goStringLit(kv.Value)
				if !ok {
					return nil, fmt.Errorf("parameter value is not a string literal")
				}
				val = s
			case "Null":
				null = true
			}
		}
		if !null {
			p.Value = &val
		}
		out = append(out, p)
	}
	return out, nil
}

// diffFuzzCorpusString reads the string of a "go test fuzz v1" file.
func diffFuzzCorpusString(data string) (string, bool) {
	for _, line := range strings.Split(data, "\n") {
		if strings.HasPrefix(line, "string(") && strings.HasSuffix(line, ")") {
			s, err := strconv.Unquote(line[len("string(") : len(line)-1])
			return s, err == nil
		}
	}
	return "", false
}

// diffPrepare checks that st only reads (a case's statement could write or
// hold a transaction open, which this suite must not do to its dataset and
// sessions) and works out its ordering, LIMIT and volatility. ok is false for
// a statement the suite does not run.
func diffPrepare(st *diffStmt) (ok bool, why string) {
	tree, err := pg_query.Parse(st.SQL)
	if err != nil {
		// Both sides must give the same syntax error: compare it.
		return true, ""
	}
	if len(tree.Stmts) != 1 {
		return false, "several statements"
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil {
		return false, "not a SELECT"
	}
	js, err := protojson.Marshal(tree.Stmts[0].Stmt)
	if err != nil {
		return false, err.Error()
	}
	for _, w := range []string{"intoClause", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"} {
		if strings.Contains(string(js), w) {
			return false, "writes (" + w + ")"
		}
	}
	if diffVolatileCall.Match(js) {
		st.Compare = diffCmpColumns
	} else {
		for _, tgt := range sel.TargetList {
			tj, _ := protojson.Marshal(tgt)
			if diffClockCall.Match(tj) {
				st.Compare = diffCmpColumns
			}
		}
	}
	limit := int64(0)
	if lc := sel.LimitCount; lc != nil {
		switch {
		case lc.GetAConst() != nil && lc.GetAConst().GetIval() != nil:
			limit = int64(lc.GetAConst().GetIval().Ival)
		case lc.GetParamRef() != nil:
			if i := int(lc.GetParamRef().Number) - 1; i < len(st.Params) && st.Params[i].Value != nil {
				limit, _ = strconv.ParseInt(*st.Params[i].Value, 10, 64)
			}
		}
	}
	if len(sel.SortClause) == 0 {
		st.Limit, st.Offset = limit, sel.LimitOffset != nil
		return true, ""
	}
	keys, resolved := diffOrderKeys(sel)
	if !resolved {
		// An ORDER BY this analysis cannot map to output columns: compare
		// the rows as a multiset, which a correct answer also satisfies.
		st.Limit, st.Offset = limit, sel.LimitOffset != nil
		return true, ""
	}
	st.Order = &diffOrder{Keys: keys, Limit: limit, Offset: sel.LimitOffset != nil}
	return true, ""
}

// A random number anywhere, or the clock in the select list, gives each
// execution its own answer.
var (
	diffVolatileCall = regexp.MustCompile(`"sval":"(random|setseed|clock_timestamp|timeofday)"`)
	diffClockCall    = regexp.MustCompile(`"sval":"(now|statement_timestamp|transaction_timestamp)"|SVFOP_(CURRENT_TIMESTAMP|LOCALTIMESTAMP|CURRENT_TIME|LOCALTIME)`)
)

// diffOrderKeys maps each ORDER BY item to the output column it sorts by.
func diffOrderKeys(sel *pg_query.SelectStmt) ([]int, bool) {
	var keys []int
	for _, sn := range sel.SortClause {
		sb := sn.GetSortBy()
		if sb == nil {
			return nil, false
		}
		k := -1
		if c := sb.Node.GetAConst(); c != nil && c.GetIval() != nil {
			k = int(c.GetIval().Ival) - 1
		}
		if cr := sb.Node.GetColumnRef(); k < 0 && cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
			name := cr.Fields[0].GetString_().Sval
			for i, tn := range sel.TargetList {
				if rt := tn.GetResTarget(); rt != nil && rt.Name == name {
					k = i
					break
				}
			}
		}
		if k < 0 {
			want := diffWithoutLocations(sb.Node)
			for i, tn := range sel.TargetList {
				if rt := tn.GetResTarget(); rt != nil && proto.Equal(diffWithoutLocations(rt.Val), want) {
					k = i
					break
				}
			}
		}
		if k < 0 || k >= len(sel.TargetList) {
			return nil, false
		}
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys, true
}

// diffWithoutLocations copies a parse tree node with every location zeroed, so
// that two spellings of one expression compare equal.
func diffWithoutLocations(n *pg_query.Node) *pg_query.Node {
	c := proto.Clone(n).(*pg_query.Node)
	diffClearLocations(c.ProtoReflect())
	return c
}

func diffClearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location" && fd.Kind() == protoreflect.Int32Kind:
			m.Clear(fd)
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				diffClearLocations(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			diffClearLocations(v.Message())
		}
		return true
	})
}
