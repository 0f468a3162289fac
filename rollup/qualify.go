package rollup

import (
	"errors"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// qualifier writes a rollup's expressions with every unqualified column
// reference qualified by the fact table. The configuration's unqualified names
// belong to the fact table (that is how the rewriter reads them); written bare
// into the build query, a name that a joined table has too would make Postgres
// reject the build as ambiguous (42702), or worse, resolve to the other table.
type qualifier struct {
	fields []*pg_query.Node // the fact table's qualifier: [schema,] table
}

func newQualifier(table string) (*qualifier, error) {
	schema, name, err := splitRelation(table)
	if err != nil {
		return nil, err
	}
	q := &qualifier{}
	if schema != "" {
		q.fields = append(q.fields, pg_query.MakeStrNode(schema))
	}
	q.fields = append(q.fields, pg_query.MakeStrNode(name))
	return q, nil
}

// expr returns text, one SQL expression, deparsed with its unqualified column
// references qualified.
func (q *qualifier) expr(text string) (string, error) {
	tree, err := pg_query.Parse("SELECT " + text)
	if err != nil {
		return "", err
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if len(tree.Stmts) != 1 || sel == nil || len(sel.TargetList) != 1 {
		return "", errors.New("not a single expression")
	}
	val := sel.TargetList[0].GetResTarget().GetVal()
	q.node(val)
	return deparseNode(val)
}

// node qualifies the column references of a parse tree in place. A subquery
// is left alone (not its left operand): its bare names are resolved against
// its own FROM first.
func (q *qualifier) node(m proto.Message) {
	walk(m, func(m proto.Message) bool {
		switch n := m.(type) {
		case *pg_query.SubLink:
			if n.Testexpr != nil {
				q.node(n.Testexpr)
			}
			return false
		case *pg_query.ColumnRef:
			if len(n.Fields) == 1 && n.Fields[0].GetString_() != nil {
				fields := make([]*pg_query.Node, 0, len(q.fields)+1)
				for _, f := range q.fields {
					fields = append(fields, proto.Clone(f).(*pg_query.Node))
				}
				n.Fields = append(fields, n.Fields[0])
			}
			return false
		}
		return true
	})
}

// exprs qualifies each of texts.
func (q *qualifier) exprs(texts []string) ([]string, error) {
	out := make([]string, len(texts))
	for i, t := range texts {
		s, err := q.expr(t)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
