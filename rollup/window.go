package rollup

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Window is one filter conjunct relative to the clock (`created_at >= date_trunc('day',
// now()) - interval '52 weeks'`) as one build folded it: the build computed the bound
// once, in its own transaction (one now()) and build_timezone, and read exactly the rows
// with Column Op Value. A query may use the version only where its own time range lies
// inside what the build read.
type Window struct {
	// Conjunct is the conjunct's position among the definition's filters, each split at
	// its top-level ANDs, in order.
	Conjunct int `json:"conjunct"`
	// Column is the compared column as the build query writes it.
	Column string `json:"column"`
	// Op is the comparison with Column on its left: >=, >, < or <=.
	Op string `json:"op"`
	// Bound is the clock-relative expression as the build query would have written it.
	Bound string `json:"bound"`
	// Value is the folded bound: an instant for timestamptz, the wall clock held in UTC
	// for timestamp and date.
	Value time.Time `json:"value"`
	// Type is the folded bound's type: timestamptz, timestamp or date.
	Type Type `json:"type"`
	// SQL is the condition the build query used in place of the conjunct.
	SQL string `json:"sql"`
}

// WindowText is a version's built window as SHOW ROLLUPS and the admin API show it:
// the conditions its build read rows with, "" without clock-relative filters.
func WindowText(ws []Window) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.SQL
	}
	return strings.Join(parts, " AND ")
}

// clockFuncs are the functions that read the transaction's clock, the same value for
// every statement of the build's transaction. statement_timestamp() and
// clock_timestamp() are not: such a filter is left as it is and never folded.
var clockFuncs = map[string]bool{"now": true, "transaction_timestamp": true}

// readsClock reports whether n reads the transaction's clock; stable is false when n
// also reads anything a fold cannot hold still (columns, other clocks, subqueries).
func readsClock(n proto.Message) (clock, stable bool) {
	stable = true
	walk(n, func(m proto.Message) bool {
		switch x := m.(type) {
		case *pg_query.SQLValueFunction:
			switch x.Op {
			case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP,
				pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP,
				pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
				clock = true
			case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N,
				pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME, pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:
				clock, stable = true, false
			}
		case *pg_query.FuncCall:
			name := ""
			if len(x.Funcname) > 0 {
				name = strings.ToLower(x.Funcname[len(x.Funcname)-1].GetString_().GetSval())
			}
			switch {
			case clockFuncs[name]:
				clock = true
			case name == "statement_timestamp" || name == "clock_timestamp" || name == "timeofday" || name == "random":
				clock, stable = true, false
			}
		case *pg_query.ColumnRef, *pg_query.SubLink, *pg_query.ParamRef:
			stable = false
		}
		return true
	})
	return clock, stable
}

// flipOp is the comparison with its operands swapped.
var flipOp = map[string]string{">=": "<=", ">": "<", "<": ">", "<=": ">="}

// andArgs flattens nested ANDs into their conjuncts, in order, as the rewriter does.
func andArgs(n *pg_query.Node) []*pg_query.Node {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, a := range b.Args {
			out = append(out, andArgs(a)...)
		}
		return out
	}
	return []*pg_query.Node{n}
}

// foldWindows rewrites the conjuncts of filters (qualified, deparsed) that compare a
// column with a bound relative to the clock: the bound is computed on conn, inside the
// build's transaction, and the conjunct becomes a comparison with that literal, so that
// what the build reads and what its version records are the same instants. Conjuncts
// of another shape that read the clock are left as they are and get no Window; the
// rewriter never answers from such a rollup.
func foldWindows(ctx context.Context, conn *pgconn.PgConn, filters []string) ([]string, []Window, error) {
	out := make([]string, len(filters))
	var windows []Window
	k := 0
	for i, f := range filters {
		out[i] = f
		tree, err := pg_query.Parse("SELECT " + f)
		if err != nil {
			return nil, nil, fmt.Errorf("filter %s: %w", f, err)
		}
		val := tree.Stmts[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
		conj := andArgs(val)
		changed := false
		texts := make([]string, len(conj))
		for j, c := range conj {
			if texts[j], err = deparseNode(c); err != nil {
				return nil, nil, fmt.Errorf("filter %s: %w", f, err)
			}
			w, ok, err := foldConjunct(ctx, conn, c)
			if err != nil {
				return nil, nil, fmt.Errorf("filter %s: %w", f, err)
			}
			if ok {
				w.Conjunct = k + j
				texts[j] = w.SQL
				windows = append(windows, w)
				changed = true
			}
		}
		k += len(conj)
		if changed {
			out[i] = "(" + strings.Join(texts, ") AND (") + ")"
		}
	}
	return out, windows, nil
}

// foldConjunct folds one conjunct `column op bound` whose bound reads the clock.
func foldConjunct(ctx context.Context, conn *pgconn.PgConn, c *pg_query.Node) (Window, bool, error) {
	ae := c.GetAExpr()
	if ae == nil || ae.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(ae.Name) != 1 || ae.Lexpr == nil || ae.Rexpr == nil {
		return Window{}, false, nil
	}
	op := ae.Name[0].GetString_().GetSval()
	if _, ok := flipOp[op]; !ok {
		return Window{}, false, nil
	}
	col, bound := ae.Lexpr, ae.Rexpr
	if col.GetColumnRef() == nil {
		col, bound, op = ae.Rexpr, ae.Lexpr, flipOp[op]
	}
	if col.GetColumnRef() == nil {
		return Window{}, false, nil
	}
	if clock, stable := readsClock(bound); !clock || !stable {
		return Window{}, false, nil
	}
	colSQL, err := deparseNode(col)
	if err != nil {
		return Window{}, false, err
	}
	boundSQL, err := deparseNode(bound)
	if err != nil {
		return Window{}, false, err
	}
	v, t, ok, err := foldBound(ctx, conn, boundSQL)
	if err != nil || !ok {
		return Window{}, false, err
	}
	w := Window{Column: colSQL, Op: op, Bound: boundSQL, Value: v, Type: t}
	w.SQL = colSQL + " " + op + " " + typedTimeLiteral(v, t.OID)
	return w, true, nil
}

// foldBound evaluates a time expression on conn, in its session's transaction and
// TimeZone, and returns its value (an instant for timestamptz, the wall clock held in
// UTC for timestamp and date) and type. ok is false when the value is not a finite
// date, timestamp or timestamptz between the years 1 and 9999.
func foldBound(ctx context.Context, conn *pgconn.PgConn, bound string) (time.Time, Type, bool, error) {
	// The type first, so that a bound of another type never raises an error, which
	// would abort the build's transaction.
	res := conn.ExecParams(ctx, "SELECT pg_typeof(("+bound+"))::oid::text, format_type(pg_typeof(("+bound+"))::oid, NULL)", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return time.Time{}, Type{}, false, fmt.Errorf("fold %s: %w", bound, res.Err)
	}
	if len(res.Rows) != 1 {
		return time.Time{}, Type{}, false, fmt.Errorf("fold %s: %d rows", bound, len(res.Rows))
	}
	var oid uint32
	if _, err := fmt.Sscan(string(res.Rows[0][0]), &oid); err != nil {
		return time.Time{}, Type{}, false, fmt.Errorf("fold %s: type %q", bound, res.Rows[0][0])
	}
	typ := Type{OID: oid, Typmod: -1, Name: string(res.Rows[0][1])}
	switch oid {
	case pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
	default:
		return time.Time{}, Type{}, false, nil
	}
	res = conn.ExecParams(ctx, "SELECT extract(epoch FROM x)::text, isfinite(x) FROM (SELECT ("+bound+") AS x) s", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return time.Time{}, Type{}, false, fmt.Errorf("fold %s: %w", bound, res.Err)
	}
	if len(res.Rows) != 1 || res.Rows[0][0] == nil || string(res.Rows[0][1]) != "t" {
		return time.Time{}, Type{}, false, nil
	}
	row := res.Rows[0]
	secs, ok := new(big.Rat).SetString(string(row[0]))
	if !ok {
		return time.Time{}, Type{}, false, fmt.Errorf("fold %s: epoch %q", bound, row[0])
	}
	us := new(big.Rat).Mul(secs, big.NewRat(1_000_000, 1))
	if !us.IsInt() || !us.Num().IsInt64() {
		return time.Time{}, Type{}, false, nil
	}
	v := time.UnixMicro(us.Num().Int64()).UTC()
	if v.Year() < 1 || v.Year() > 9999 {
		return time.Time{}, Type{}, false, nil
	}
	return v, typ, true, nil
}

// typedTimeLiteral writes v as a literal of type oid (timestamp and date values are
// wall clocks held in UTC), which every session reads the same whatever its DateStyle.
func typedTimeLiteral(v time.Time, oid uint32) string {
	switch oid {
	case pgtype.TimestamptzOID:
		return sqlquote.Literal(v.UTC().Format("2006-01-02 15:04:05.999999")+"+00") + "::timestamptz"
	case pgtype.DateOID:
		return sqlquote.Literal(v.UTC().Format("2006-01-02")) + "::date"
	default:
		return sqlquote.Literal(v.UTC().Format("2006-01-02 15:04:05.999999")) + "::timestamp"
	}
}

// WindowMoved reports whether any of the windows would fold to another value on conn
// now: a refresh whose key did not change must still rebuild then, or the window
// would stop rolling.
func WindowMoved(ctx context.Context, conn *pgconn.PgConn, windows []Window) (bool, error) {
	for _, w := range windows {
		v, _, ok, err := foldBound(ctx, conn, w.Bound)
		if err != nil {
			return false, err
		}
		if !ok || !v.Equal(w.Value) {
			return true, nil
		}
	}
	return false, nil
}
