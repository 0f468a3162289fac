package routing

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlquote"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
	"github.com/pgrollup/pgrollup/rewrite"
)

// rewriteParams gives the rewrite engine the bound values in text form.
// Binary values of the types a filter can use are decoded and printed as
// Postgres prints them; any other binary value is an error, and the
// statement goes to the warehouse.
func rewriteParams(params []proxy.Param) ([]rewrite.Param, error) {
	out := make([]rewrite.Param, len(params))
	for i, p := range params {
		out[i] = rewrite.Param{Type: p.TypeOID, Null: p.Value == nil}
		if p.Value == nil {
			continue
		}
		if p.Format == 0 {
			out[i].Value = string(p.Value)
			continue
		}
		text, err := binaryToText(p.TypeOID, p.Value)
		if err != nil {
			return nil, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		out[i].Value = text
	}
	return out, nil
}

// typeMap decodes binary parameters; pgtype.Map is safe for concurrent
// decoding once built, so one serves every session.
var typeMap = pgtype.NewMap()

func binaryToText(oid uint32, b []byte) (string, error) {
	var v any
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		var n int64
		if err := typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &n); err != nil {
			return "", err
		}
		v = n
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		v = string(b)
	case pgtype.BoolOID:
		var x bool
		if err := typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &x); err != nil {
			return "", err
		}
		v = x
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		var t pgtype.Timestamptz
		var err error
		switch oid {
		case pgtype.DateOID:
			var d pgtype.Date
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &d)
			t = pgtype.Timestamptz(d)
		case pgtype.TimestampOID:
			var ts pgtype.Timestamp
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &ts)
			t = pgtype.Timestamptz(ts)
		default:
			err = typeMap.Scan(oid, pgtype.BinaryFormatCode, b, &t)
		}
		if err != nil {
			return "", err
		}
		if t.InfinityModifier != pgtype.Finite {
			return "", fmt.Errorf("infinite time values are not decided on")
		}
		v = t.Time
		if oid == pgtype.DateOID || oid == pgtype.TimestampOID {
			v = wallClock(t.Time)
		}
	default:
		return "", fmt.Errorf("binary values of type %d are not decided on", oid)
	}
	// ISO output in UTC carries an explicit offset for timestamptz, so the
	// text means the same instant whatever the session's zone.
	settings := pgfmt.DefaultSettings()
	out, err := pgfmt.AppendText(nil, oid, v, &settings)
	return string(out), err
}

// wallClock keeps a date's or timestamp's clock reading, in UTC, as pgfmt
// expects for types without a zone.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// literalTypes names the types a bound value can be written as a literal
// of, by OID: 'value'::pg_catalog.name is read by the type's input function
// just as a text-format parameter of that type is.
var literalTypes = map[uint32]string{
	pgtype.Int2OID:        "int2",
	pgtype.Int4OID:        "int4",
	pgtype.Int8OID:        "int8",
	pgtype.NumericOID:     "numeric",
	pgtype.BoolOID:        "bool",
	pgtype.TextOID:        "text",
	pgtype.VarcharOID:     "varchar",
	pgtype.DateOID:        "date",
	pgtype.TimestampOID:   "timestamp",
	pgtype.TimestamptzOID: "timestamptz",
}

// paramRef is one $n in a statement's text.
type paramRef struct {
	number   int
	location int // byte offset of the '$'
}

// whereParams returns the parameters in the WHERE clause of a plain SELECT,
// and how often each parameter number occurs in the whole statement.
func whereParams(tree *pg_query.ParseResult) ([]paramRef, map[int]int) {
	if tree == nil || len(tree.Stmts) != 1 {
		return nil, nil
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || sel.Op != pg_query.SetOperation_SETOP_NONE || sel.WhereClause == nil {
		return nil, nil
	}
	uses := map[int]int{}
	walkNodes(tree.Stmts[0].ProtoReflect(), func(p *pg_query.ParamRef) { uses[int(p.Number)]++ })
	var refs []paramRef
	walkNodes(sel.WhereClause.ProtoReflect(), func(p *pg_query.ParamRef) {
		refs = append(refs, paramRef{number: int(p.Number), location: int(p.Location)})
	})
	return refs, uses
}

// walkNodes calls fn with every ParamRef under m.
func walkNodes(m protoreflect.Message, fn func(*pg_query.ParamRef)) {
	rewrite.WalkMessages(m, func(x protoreflect.Message) {
		if p, ok := x.Interface().(*pg_query.ParamRef); ok {
			fn(p)
		}
	})
}

// literalLimits bound the text with values written in; the statement
// itself was within the server's limits, and values add one cast each.
var literalLimits = parselimit.Limits{}.WithDefaults()

// withLiterals writes the bound values of the parameters in a SELECT's
// WHERE clause into its text as the literals they stand for, so that a
// filter is decided on the values as the statement executes with them:
// 'paid'::pg_catalog.text for a text parameter. A parameter whose type the
// client left unspecified becomes an untyped literal, which Postgres
// resolves as it does the parameter, but only when it occurs once (a second
// occurrence would take the type the first was resolved to). Values that
// are NULL, of other types, or unspecified and used again stay parameters.
// ok is false when nothing was written in.
func withLiterals(sql string, tree *pg_query.ParseResult, params []rewrite.Param) (string, *pg_query.ParseResult, bool) {
	refs, uses := whereParams(tree)
	return writeLiterals(sql, refs, uses, params, false)
}

// allLiterals writes every bound value into the statement's text, as
// withLiterals does, for a statement the warehouse finishes: ok only when
// no parameter is left, so that the statement it runs needs no values. A
// NULL of a known type is written as a typed NULL.
func allLiterals(sql string, tree *pg_query.ParseResult, params []rewrite.Param) (string, *pg_query.ParseResult, bool) {
	if tree == nil || len(tree.Stmts) != 1 {
		return "", nil, false
	}
	uses := map[int]int{}
	var refs []paramRef
	walkNodes(tree.Stmts[0].ProtoReflect(), func(p *pg_query.ParamRef) {
		uses[int(p.Number)]++
		refs = append(refs, paramRef{number: int(p.Number), location: int(p.Location)})
	})
	return writeLiterals(sql, refs, uses, limitTyped(tree, params, uses), true)
}

// limitTyped gives a parameter whose type Parse left unspecified and that
// is only a LIMIT or OFFSET the type Postgres resolves it to there, bigint
// (knex, Sequelize and Kysely bind their pages so, untyped).
func limitTyped(tree *pg_query.ParseResult, params []rewrite.Param, uses map[int]int) []rewrite.Param {
	var out []rewrite.Param
	rewrite.WalkMessages(tree.Stmts[0].ProtoReflect(), func(m protoreflect.Message) {
		sel, ok := m.Interface().(*pg_query.SelectStmt)
		if !ok {
			return
		}
		for _, n := range []*pg_query.Node{sel.LimitCount, sel.LimitOffset} {
			p := n.GetParamRef()
			if p == nil || p.Number < 1 || int(p.Number) > len(params) || uses[int(p.Number)] != 1 || params[p.Number-1].Type != 0 {
				continue
			}
			if out == nil {
				out = append([]rewrite.Param(nil), params...)
			}
			out[p.Number-1].Type = pgtype.Int8OID
		}
	})
	if out == nil {
		return params
	}
	return out
}

// writeLiterals writes the values of the parameters at refs into sql;
// uses counts each parameter's occurrences in the statement. all: every
// one must be written, else nothing is.
func writeLiterals(sql string, refs []paramRef, uses map[int]int, params []rewrite.Param, all bool) (string, *pg_query.ParseResult, bool) {
	type edit struct {
		paramRef
		text string
	}
	var edits []edit
	for _, ref := range refs {
		lit, ok := literalOf(sql, ref, uses, params, all)
		if !ok {
			if all {
				return "", nil, false
			}
			continue
		}
		edits = append(edits, edit{ref, lit})
	}
	if len(edits) == 0 {
		return "", nil, false
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].location > edits[j].location })
	out := sql
	for _, e := range edits {
		out = out[:e.location] + e.text + out[e.location+1+len(strconv.Itoa(e.number)):]
	}
	if literalLimits.Check(out) != nil {
		return "", nil, false
	}
	lt, err := pg_query.Parse(out)
	if err != nil {
		return "", nil, false
	}
	return out, lt, true
}

// literalOf is the literal a parameter reference stands for, if it can be
// written. nulls is for the statement the warehouse runs: a NULL of a known
// type may then be written, and only values of a known type that
// certainly read back.
func literalOf(sql string, ref paramRef, uses map[int]int, params []rewrite.Param, nulls bool) (string, bool) {
	if ref.number < 1 || ref.number > len(params) {
		return "", false
	}
	p := params[ref.number-1]
	end := ref.location + 1 + len(strconv.Itoa(ref.number))
	if ref.location < 0 || end > len(sql) || sql[ref.location:end] != "$"+strconv.Itoa(ref.number) || strings.IndexByte(p.Value, 0) >= 0 {
		return "", false
	}
	name, typed := literalTypes[p.Type]
	switch {
	case p.Null && typed && nulls:
		return "(NULL::pg_catalog." + name + ")", true
	case p.Null:
		return "", false
	case nulls && (!typed || !rewrite.CertainInput(p.Type, p.Value)):
		// The statement the warehouse runs: a value that may fail its
		// type's input would fail in its Parse, with another position
		// and context than Postgres gives a bad parameter at Bind, and
		// the type of a value Parse left unspecified is unknown here.
		return "", false
	case typed:
		return "(" + sqlquote.Literal(p.Value) + "::pg_catalog." + name + ")", true
	case p.Type != 0 || uses[ref.number] != 1:
		return "", false
	}
	return sqlquote.Literal(p.Value), true
}

// mayHaveParams is hasParams of the statement of text sql, without walking
// its tree when the text has no $ (a parameter is written $n): every
// statement a lambda rollup may answer asks.
func mayHaveParams(sql string, tree *pg_query.ParseResult) bool {
	if sql != "" && strings.IndexByte(sql, '$') < 0 {
		return false
	}
	return hasParams(tree)
}

// hasParams reports whether a statement has parameters, whose values may
// decide what a rollup's filters imply, or let the warehouse finish it.
func hasParams(tree *pg_query.ParseResult) bool {
	found := false
	if tree != nil && len(tree.Stmts) == 1 {
		walkNodes(tree.Stmts[0].ProtoReflect(), func(*pg_query.ParamRef) { found = true })
	}
	return found
}
