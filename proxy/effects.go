package proxy

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// effects is what a statement relayed to the warehouse may do to its session
// besides answering: modify data (which a rollup would not see for the rest
// of the transaction) or drop prepared statements and portals the proxy
// keeps for the client.
type effects struct {
	// readOnly: the statement certainly modifies no data. Anything the
	// proxy cannot vouch for is not read-only.
	readOnly bool
	// resets are its DEALLOCATE, DISCARD ALL and CLOSE ALL, in order.
	resets []resetOp
	// endsTx: it may end a transaction (COMMIT, ROLLBACK, PREPARE
	// TRANSACTION), so that a block open after it may be a new one.
	endsTx bool
	// setsSession: it holds a SET, RESET or DISCARD, which change the
	// session's settings, role, search_path or temp tables.
	setsSession bool
}

// resetOp is one statement that drops prepared statements or portals.
type resetOp struct {
	kind resetKind
	name string // the statement a resetDeallocate names
}

type resetKind uint8

const (
	resetDeallocate    resetKind = iota + 1 // DEALLOCATE [PREPARE] name
	resetDeallocateAll                      // DEALLOCATE ALL
	resetDiscardAll                         // DISCARD ALL
	resetCloseAll                           // CLOSE ALL
)

// tag is the CommandComplete tag Postgres sends when the statement succeeds.
func (k resetKind) tag() string {
	switch k {
	case resetDeallocate:
		return "DEALLOCATE"
	case resetDeallocateAll:
		return "DEALLOCATE ALL"
	case resetDiscardAll:
		return "DISCARD ALL"
	case resetCloseAll:
		return "CLOSE CURSOR ALL"
	}
	return ""
}

// Statements are sorted by their first keyword so that most of them need no
// parse: the keyword alone decides what a single statement may do.
var (
	// readOnlyKeywords begin statements that never modify data.
	readOnlyKeywords = map[string]bool{
		"show": true, "set": true, "reset": true, "begin": true, "start": true,
		"savepoint": true, "release": true, "fetch": true, "move": true,
		"listen": true, "unlisten": true,
	}
	// parsedKeywords begin read-only statements whose parse tree tells
	// more: whether they drop prepared statements or portals, or end a
	// transaction (ROLLBACK TO SAVEPOINT does not).
	parsedKeywords = map[string]bool{
		"deallocate": true, "discard": true, "close": true,
		"commit": true, "end": true, "rollback": true, "abort": true, "prepare": true,
	}
	// queryKeywords begin statements that are read-only or not depending
	// on what their parse tree holds.
	queryKeywords = map[string]bool{
		"select": true, "values": true, "table": true, "with": true,
		"explain": true, "declare": true,
	}
)

// effects returns what the statement may do to its session, working it out
// once per statement text.
func (st *Statement) effects() effects {
	st.effOnce.Do(func() { st.eff = classify(st) })
	return st.eff
}

func classify(st *Statement) effects {
	kw := st.text().first
	if !st.text().multiple {
		switch {
		case kw == "":
			return effects{readOnly: true} // empty or comment-only
		case parsedKeywords[kw], queryKeywords[kw]:
		case kw == "set" || kw == "reset":
			return effects{readOnly: true, setsSession: true}
		case readOnlyKeywords[kw]:
			return effects{readOnly: true}
		default:
			return effects{}
		}
	}
	tree, err := st.Parse()
	var unparsed *parselimit.Error
	switch {
	case errors.As(err, &unparsed):
		// Beyond the parse limits: it may write, end a transaction
		// and change the session's settings. Whether it holds a
		// DEALLOCATE, DISCARD ALL or CLOSE ALL cannot be told: it is
		// taken to hold none.
		return effects{endsTx: true, setsSession: true}
	case err != nil:
		// The warehouse rejects it too, unless its parser knows syntax
		// this one does not: then nothing can be vouched for.
		return effects{endsTx: true}
	}
	eff := effects{readOnly: true}
	for _, raw := range tree.Stmts {
		node := raw.GetStmt()
		if op, ok := resetOf(node); ok {
			eff.resets = append(eff.resets, op)
		}
		if !readOnlyStatement(node) {
			eff.readOnly = false
		}
		switch node.GetNode().(type) {
		case *pg_query.Node_VariableSetStmt, *pg_query.Node_DiscardStmt:
			eff.setsSession = true
		}
		switch node.GetTransactionStmt().GetKind() {
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK,
			pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			eff.endsTx = true
		}
	}
	return eff
}

// resetOf returns the reset a statement is, if it is one.
func resetOf(n *pg_query.Node) (resetOp, bool) {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_DeallocateStmt:
		if x.DeallocateStmt.GetIsall() {
			return resetOp{kind: resetDeallocateAll}, true
		}
		return resetOp{kind: resetDeallocate, name: x.DeallocateStmt.GetName()}, true
	case *pg_query.Node_DiscardStmt:
		if x.DiscardStmt.GetTarget() == pg_query.DiscardMode_DISCARD_ALL {
			return resetOp{kind: resetDiscardAll}, true
		}
	case *pg_query.Node_ClosePortalStmt:
		if x.ClosePortalStmt.GetPortalname() == "" {
			return resetOp{kind: resetCloseAll}, true
		}
	}
	return resetOp{}, false
}

// readOnlyStatement reports whether one parsed statement certainly modifies
// no data: a query with no data-modifying CTE, no locking clause, no INTO and
// no function outside readOnlyFuncs, or a statement that only reads or
// manages the session and its transaction.
func readOnlyStatement(n *pg_query.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return readOnlyQuery(x.SelectStmt)
	case *pg_query.Node_DeclareCursorStmt:
		return readOnlyQuery(x.DeclareCursorStmt.GetQuery())
	case *pg_query.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs the statement; plain EXPLAIN does not, but
		// the inner statement is held to the same rule all the same.
		for _, o := range x.ExplainStmt.GetOptions() {
			if strings.EqualFold(o.GetDefElem().GetDefname(), "analyze") {
				return false
			}
		}
		return readOnlyStatement(x.ExplainStmt.GetQuery())
	case *pg_query.Node_VariableSetStmt, *pg_query.Node_VariableShowStmt,
		*pg_query.Node_TransactionStmt, *pg_query.Node_FetchStmt,
		*pg_query.Node_ClosePortalStmt, *pg_query.Node_DeallocateStmt,
		*pg_query.Node_DiscardStmt, *pg_query.Node_PrepareStmt,
		*pg_query.Node_ListenStmt, *pg_query.Node_UnlistenStmt:
		return true
	}
	return false
}

// readOnlyQuery walks a query's whole tree, subqueries and CTEs included.
func readOnlyQuery(n protoreflect.ProtoMessage) bool {
	m := n.ProtoReflect()
	return m.IsValid() && walkReadOnly(m)
}

func walkReadOnly(m protoreflect.Message) bool {
	switch x := m.Interface().(type) {
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
		*pg_query.LockingClause, *pg_query.IntoClause:
		return false
	case *pg_query.FuncCall:
		if !readOnlyFunc(x.GetFuncname()) {
			return false
		}
	case *pg_query.A_Expr:
		// OPERATOR(schema.op) names an operator outside pg_catalog, whose
		// function may do anything.
		if name := x.GetName(); len(name) > 1 && name[0].GetString_().GetSval() != "pg_catalog" {
			return false
		}
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len() && ok; i++ {
				ok = walkReadOnly(list.Get(i).Message())
			}
		default:
			ok = walkReadOnly(v.Message())
		}
		return ok
	})
	return ok
}

// readOnlyFunc reports whether a function name, as the parser gives it, is
// one of the built-in functions known to modify nothing. A name qualified
// with any schema but pg_catalog is someone's own function.
func readOnlyFunc(name []*pg_query.Node) bool {
	switch len(name) {
	case 1:
		return readOnlyFuncs[name[0].GetString_().GetSval()]
	case 2:
		return name[0].GetString_().GetSval() == "pg_catalog" && readOnlyFuncs[name[1].GetString_().GetSval()]
	}
	return false
}

// firstKeyword returns the first word of a statement, lower-cased, past
// white space, comments and opening parentheses, "" when there is none,
// and the sets of keywords it is in.
func firstKeyword(sql string) (string, keywordClass) {
	i := skipSpace(sql, 0)
	for i < len(sql) && sql[i] == '(' {
		i = skipSpace(sql, i+1)
	}
	j := i
	for j < len(sql) && isWordByte(sql[j]) {
		j++
	}
	return lowerKeyword(sql[i:j])
}

// skipSpace skips white space and comments from i on.
func skipSpace(sql string, i int) int {
	for i < len(sql) {
		switch {
		case sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '\f' || sql[i] == '\v':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				return len(sql)
			}
			i += end + 1
		case strings.HasPrefix(sql[i:], "/*"):
			// Postgres nests block comments.
			depth := 0
			for i < len(sql) {
				if strings.HasPrefix(sql[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(sql[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// multipleStatements reports whether sql may hold more than one statement:
// a semicolon with anything but white space after it. A semicolon inside a
// literal or a comment only costs a parse.
func multipleStatements(sql string) bool {
	i := strings.IndexByte(sql, ';')
	return i >= 0 && strings.TrimRight(sql[i:], "; \t\n\r\f\v") != ""
}
