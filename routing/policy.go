package routing

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// policy is one row-level security policy that applies to SELECT, with the
// parts that read the session (current_user, session_user,
// current_setting(...)) taken out of its USING expression, so that each
// session can put its own values in.
type policy struct {
	permissive bool
	template   string // the USING expression, each session part a placeholder
	parts      []policyPart
	err        error // the policy cannot be evaluated on a rollup
}

// policyPart is one session-dependent expression of a policy.
type policyPart struct {
	placeholder string
	user        string // "current_user" or "session_user"; "" for a setting
	setting     string // the setting current_setting reads
	missingOK   bool   // current_setting(name, true)
	bare        bool   // the operand of a cast: an untyped literal
}

// placeholderPrefix marks the literals that stand for session parts. A
// policy that holds the prefix itself is refused.
const placeholderPrefix = "__pgrollup_session_part_"

// sessionValues is what a session's policy parts evaluate to.
type sessionValues struct {
	currentUser, sessionUser string
	settings                 map[string]*string // nil: the setting does not exist
}

// parsePolicy takes the session parts out of a policy's USING expression,
// as pg_get_expr prints it.
func parsePolicy(qual string) (string, []policyPart, error) {
	if strings.Contains(qual, placeholderPrefix) {
		return "", nil, errors.New("reserved text in the policy")
	}
	text := "SELECT 1 WHERE " + qual
	// Policies are any table owner's text: held to the default limits
	// like statements, a policy beyond them makes the table the
	// warehouse's.
	if err := (parselimit.Limits{}).Check(text); err != nil {
		return "", nil, err
	}
	tree, err := pg_query.Parse(text)
	if err != nil {
		return "", nil, err
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return "", nil, errors.New("not one expression")
	}
	var parts []policyPart
	var bad error
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if n, ok := m.Interface().(*pg_query.Node); ok {
			if tc := n.GetTypeCast(); tc != nil && tc.GetArg() != nil {
				// current_setting('x')::int: the setting's text is
				// what the cast reads, so it goes in as an untyped
				// literal, which Postgres casts exactly the same way.
				part, replace, err := sessionPart(tc.GetArg())
				if err != nil && bad == nil {
					bad = err
				}
				if replace {
					part.bare = true
					part.placeholder = fmt.Sprintf("%s%d__", placeholderPrefix, len(parts))
					parts = append(parts, part)
					tc.Arg.Node = &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Sval{Sval: &pg_query.String{Sval: part.placeholder}}}}
					return
				}
			}
			part, replace, err := sessionPart(n)
			if err != nil && bad == nil {
				bad = err
			}
			if replace {
				part.placeholder = fmt.Sprintf("%s%d__", placeholderPrefix, len(parts))
				parts = append(parts, part)
				n.Node = &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Sval{Sval: &pg_query.String{Sval: part.placeholder}}}}
				return
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Message() == nil || fd.IsMap():
			case fd.IsList():
				list := v.List()
				for i := 0; i < list.Len(); i++ {
					visit(list.Get(i).Message())
				}
			default:
				visit(v.Message())
			}
			return true
		})
	}
	visit(tree.Stmts[0].Stmt.GetSelectStmt().GetWhereClause().ProtoReflect())
	if bad != nil {
		return "", nil, bad
	}
	sql, err := pg_query.Deparse(tree)
	if err != nil {
		return "", nil, err
	}
	const prefix = "SELECT 1 WHERE "
	if !strings.HasPrefix(sql, prefix) {
		return "", nil, fmt.Errorf("unexpected deparse %q", sql)
	}
	return sql[len(prefix):], parts, nil
}

// sessionPart recognises an expression that reads the session: it is
// replaced by a placeholder. An error refuses the whole policy.
func sessionPart(n *pg_query.Node) (policyPart, bool, error) {
	if f := n.GetSqlvalueFunction(); f != nil {
		switch f.GetOp() {
		case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE,
			pg_query.SQLValueFunctionOp_SVFOP_USER:
			return policyPart{user: "current_user"}, true, nil
		case pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:
			return policyPart{user: "session_user"}, true, nil
		}
		// current_date and the like: the rewrite engine refuses them.
		return policyPart{}, false, nil
	}
	fc := n.GetFuncCall()
	if fc == nil {
		return policyPart{}, false, nil
	}
	name := fc.GetFuncname()
	if len(name) == 2 && name[0].GetString_().GetSval() == "pg_catalog" {
		name = name[1:]
	}
	if len(name) != 1 || name[0].GetString_().GetSval() != "current_setting" {
		return policyPart{}, false, nil
	}
	args := fc.GetArgs()
	if len(args) < 1 || len(args) > 2 || fc.GetAggStar() || fc.GetAggDistinct() || fc.GetOver() != nil {
		return policyPart{}, false, errors.New("current_setting with unusual arguments")
	}
	setting, ok := constString(args[0])
	if !ok {
		return policyPart{}, false, errors.New("current_setting of a computed name")
	}
	part := policyPart{setting: strings.ToLower(setting)}
	if len(args) == 2 {
		b := args[1].GetAConst().GetBoolval()
		if b == nil {
			return policyPart{}, false, errors.New("current_setting with a computed missing_ok")
		}
		part.missingOK = b.GetBoolval()
	}
	return part, true, nil
}

// constString reads a string constant, possibly cast to text.
func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		names := tc.GetTypeName().GetNames()
		if len(names) == 0 || names[len(names)-1].GetString_().GetSval() != "text" {
			return "", false
		}
		n = tc.GetArg()
	}
	s := n.GetAConst().GetSval()
	if s == nil {
		return "", false
	}
	return s.GetSval(), true
}

// evaluate puts a session's values into the policy. ok is false when
// Postgres would fail the statement (a setting that does not exist, read
// without missing_ok) or the policy cannot be evaluated on a rollup.
func (p *policy) evaluate(s sessionValues) (string, bool) {
	if p.err != nil {
		return "", false
	}
	out := p.template
	for _, part := range p.parts {
		var lit string
		switch {
		case part.user == "current_user" && part.bare:
			lit = sqlquote.EscapeLiteral(s.currentUser)
		case part.user == "session_user" && part.bare:
			lit = sqlquote.EscapeLiteral(s.sessionUser)
		case part.user == "current_user":
			lit = "(" + sqlquote.EscapeLiteral(s.currentUser) + "::name)"
		case part.user == "session_user":
			lit = "(" + sqlquote.EscapeLiteral(s.sessionUser) + "::name)"
		default:
			v, known := s.settings[part.setting]
			switch {
			case !known:
				return "", false
			case v == nil && !part.missingOK:
				return "", false
			case v == nil && part.bare:
				lit = "NULL"
			case v == nil:
				lit = "(NULL::text)"
			case part.bare:
				lit = sqlquote.EscapeLiteral(*v)
			default:
				lit = "(" + sqlquote.EscapeLiteral(*v) + "::text)"
			}
		}
		out = strings.ReplaceAll(out, "'"+part.placeholder+"'", lit)
	}
	return out, true
}

// rowFilter combines the policies that apply to a session on one table as
// Postgres does: the permissive ones ORed, the restrictive ones ANDed to
// that; no permissive policy lets no row through. "" when a rollup cannot
// evaluate it.
func (st *contextState) rowFilter(table uint32, applicable []uint32, s sessionValues) string {
	var permissive, restrictive []string
	for _, oid := range applicable {
		p, ok := st.policies[oid]
		if !ok || !st.byTable[table][oid] {
			// Created after the last poll: the next one will know it.
			return ""
		}
		sql, ok := p.evaluate(s)
		if !ok {
			return ""
		}
		if p.permissive {
			permissive = append(permissive, "("+sql+")")
		} else {
			restrictive = append(restrictive, "("+sql+")")
		}
	}
	if len(permissive) == 0 {
		return "false"
	}
	f := "(" + strings.Join(permissive, " OR ") + ")"
	for _, r := range restrictive {
		f += " AND " + r
	}
	return f
}
