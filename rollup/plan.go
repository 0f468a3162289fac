package rollup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// Plan is a Definition resolved against the warehouse: the types of its columns and
// the SQL that computes one partition.
type Plan struct {
	Def     *Definition
	Columns []Column
	// TimeType is the time dimension's column type; nil without a time dimension.
	TimeType *Type
	// Windows are the filters relative to the clock, folded by this plan's transaction.
	Windows []Window
	// LambdaCutoff is a lambda rollup's cutoff, folded by this plan's transaction.
	LambdaCutoff *time.Time

	// LambdaCutoffID is the cutoff of a lambda rollup on an id column.
	LambdaCutoffID *int64

	previousCutoff   *time.Time // the previous version's, for an incremental lambda build
	previousCutoffID *int64     // ... of a lambda rollup on an id column
	lambdaCol        string     // deparsed id column of a lambda rollup on one

	from    string   // FROM clause with the joins
	where   []string // deparsed filters
	selects []string // one expression per column
	order   []string // Parquet sort order: the dimensions, then the time bucket
	timeCol string   // deparsed time dimension
}

// measurePart is one stored part of a measure before its types are known.
type measurePart struct {
	col  Column
	sql  string
	arg  string // deparsed argument; "" for count(*)
	star bool
}

// NewPlan resolves def on the warehouse: it describes (never executes) a probe query
// over the rollup's tables to learn the types of the dimensions and measure arguments,
// and then the build query itself to learn the types Postgres gives its output.
func NewPlan(ctx context.Context, conn *pgconn.PgConn, def *Definition) (*Plan, error) {
	p := &Plan{Def: def}
	from, err := quoteRelation(def.Table)
	if err != nil {
		return nil, permanent(err)
	}
	for _, j := range def.Joins {
		t, err := quoteRelation(j.Table)
		if err != nil {
			return nil, permanent(err)
		}
		kw := "LEFT JOIN"
		if j.Type == config.JoinInner {
			kw = "JOIN"
		}
		from += " " + kw + " " + t + " ON (" + j.On + ")"
	}
	p.from = from
	q, err := newQualifier(def.Table)
	if err != nil {
		return nil, permanent(err)
	}
	filters, err := q.exprs(def.Filters)
	if err != nil {
		return nil, permanent(fmt.Errorf("filter: %w", err))
	}
	// Filters relative to the clock are folded now, in the build's transaction: the
	// build query then reads the very instants its version records.
	if filters, p.Windows, err = foldWindows(ctx, conn, filters); err != nil {
		return nil, fmt.Errorf("fold filters: %w", err)
	}
	for _, f := range filters {
		p.where = append(p.where, "("+f+")")
	}
	dims, err := q.exprs(def.Dimensions)
	if err != nil {
		return nil, permanent(fmt.Errorf("dimension: %w", err))
	}
	timeCol := ""
	if def.TimeDimension != "" {
		if timeCol, err = q.expr(def.TimeDimension); err != nil {
			return nil, permanent(fmt.Errorf("time_dimension: %w", err))
		}
	}

	var parts []measurePart
	for i, m := range def.Measures {
		qm, err := q.expr(m)
		if err != nil {
			return nil, permanent(fmt.Errorf("measure %q: %w", m, err))
		}
		ps, err := splitMeasure(i, m, qm)
		if err != nil {
			return nil, permanent(fmt.Errorf("measure %q: %w", m, err))
		}
		parts = append(parts, ps...)
	}

	// Probe: the dimensions, the raw time column and every measure argument.
	var probe []string
	probe = append(probe, dims...)
	if timeCol != "" {
		probe = append(probe, timeCol)
	}
	for _, mp := range parts {
		if mp.arg != "" {
			probe = append(probe, mp.arg)
		}
	}
	var probeTypes []Type
	if len(probe) > 0 {
		probeTypes, err = describe(ctx, conn, "SELECT "+strings.Join(probe, ", ")+" FROM "+p.from+" LIMIT 0")
		if err != nil {
			return nil, fmt.Errorf("describe the rollup's columns: %w", err)
		}
	}

	k := 0
	for i, d := range def.Dimensions {
		p.Columns = append(p.Columns, Column{Name: layout.Dimension(i), Role: RoleDimension, Index: i, Expr: d, Type: probeTypes[k]})
		p.selects = append(p.selects, dims[i])
		p.order = append(p.order, sqlquote.Ident(layout.Dimension(i)))
		k++
	}
	if def.TimeDimension != "" {
		tt := probeTypes[k]
		k++
		p.TimeType = &tt
		p.timeCol = timeCol
		bucket, err := bucketExpr(timeCol, def.Granularity, tt)
		if err != nil {
			return nil, permanent(err)
		}
		p.Columns = append(p.Columns, Column{Name: layout.Time, Role: RoleTime, Expr: def.TimeDimension, Type: tt})
		p.selects = append(p.selects, bucket)
		p.order = append(p.order, sqlquote.Ident(layout.Time))
	}
	for _, mp := range parts {
		c := mp.col
		if mp.arg != "" {
			at := probeTypes[k]
			k++
			c.ArgType = &at
		}
		p.Columns = append(p.Columns, c)
		p.selects = append(p.selects, mp.sql)
	}

	// Describe the build query for the output types (a time bucket keeps its column's type).
	out, err := describe(ctx, conn, p.SQL(nil, 0))
	if err != nil {
		return nil, fmt.Errorf("describe the build query: %w", err)
	}
	if len(out) != len(p.Columns) {
		return nil, fmt.Errorf("build query has %d columns, want %d", len(out), len(p.Columns))
	}
	for i := range p.Columns {
		c := &p.Columns[i]
		c.Type = out[i]
		c.DuckDBType = storageType(*c)
	}
	if p.TimeType != nil && p.Columns[len(def.Dimensions)].Type.OID != p.TimeType.OID {
		return nil, permanent(fmt.Errorf("time bucket of %s has type %s, want %s", def.TimeDimension, p.Columns[len(def.Dimensions)].Type.Name, p.TimeType.Name))
	}
	return p, nil
}

// splitMeasure decomposes measure i, text as configured and qualified as the
// build query writes it, into the parts that re-aggregate.
func splitMeasure(i int, text, qualified string) ([]measurePart, error) {
	tree, err := pg_query.Parse("SELECT " + qualified)
	if err != nil {
		return nil, err
	}
	call := tree.Stmts[0].GetStmt().GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetFuncCall()
	if call == nil {
		return nil, errors.New("not an aggregate call")
	}
	name := strings.ToLower(call.Funcname[len(call.Funcname)-1].GetString_().GetSval())
	if len(call.Funcname) > 1 && call.Funcname[0].GetString_().GetSval() != "pg_catalog" {
		return nil, fmt.Errorf("unsupported aggregate %s", name)
	}
	if call.Over != nil || len(call.AggOrder) > 0 || call.AggWithinGroup || call.FuncVariadic {
		return nil, errors.New("unsupported aggregate form")
	}
	if !call.AggStar && len(call.Args) != 1 {
		return nil, fmt.Errorf("%s takes exactly one argument", name)
	}
	arg := ""
	if !call.AggStar {
		if arg, err = deparseNode(call.Args[0]); err != nil {
			return nil, err
		}
	}
	part := func(fn, partName string, distinct bool) (measurePart, error) {
		c := proto.Clone(call).(*pg_query.FuncCall)
		c.Funcname = []*pg_query.Node{pg_query.MakeStrNode(fn)}
		c.AggDistinct = distinct
		s, err := deparseNode(&pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: c}})
		if err != nil {
			return measurePart{}, err
		}
		return measurePart{
			col:  Column{Name: layout.Measure(i, partName), Role: RoleMeasure, Index: i, Expr: text, Part: partName},
			sql:  s,
			arg:  arg,
			star: call.AggStar,
		}, nil
	}
	parts := layout.Parts(name, call.AggDistinct)
	switch {
	case parts == nil && call.AggDistinct:
		return nil, fmt.Errorf("%s(DISTINCT ...) cannot be stored; only count(DISTINCT ...)", name)
	case parts == nil:
		return nil, fmt.Errorf("unsupported aggregate %s", name)
	}
	var out []measurePart
	for _, pn := range parts {
		// Each part is the aggregate of its name; count_distinct is count(DISTINCT ...).
		fn, distinct := pn, false
		if pn == layout.PartCountDistinct {
			fn, distinct = "count", true
		}
		mp, err := part(fn, pn, distinct)
		if err != nil {
			return nil, err
		}
		out = append(out, mp)
	}
	return out, nil
}

// parseTreeVersion is the parse tree version of the linked libpg_query, which
// Deparse insists on.
var parseTreeVersion = func() int32 {
	tree, err := pg_query.Parse("SELECT")
	if err != nil {
		panic(err)
	}
	return tree.Version
}()

// deparseNode deparses one expression node.
func deparseNode(n *pg_query.Node) (string, error) {
	tree := &pg_query.ParseResult{Version: parseTreeVersion, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{
		SelectStmt: &pg_query.SelectStmt{TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: n}}}}},
	}}}}}
	s, err := pg_query.Deparse(tree)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(s, "SELECT "), nil
}

// bucketExpr cuts the time column into granularity buckets. A timestamptz bucket is cut
// by date_trunc in the session's TimeZone, which the builder sets to build_timezone, so
// the stored value is exactly what date_trunc returns in a session with that TimeZone.
// Timestamp and date columns are cut without any zone, and a date bucket stays a date.
func bucketExpr(col string, g config.Granularity, t Type) (string, error) {
	if !g.Valid() {
		return "", fmt.Errorf("time dimension %s: unknown granularity %q", col, g)
	}
	unit := sqlquote.Literal(string(g))
	switch t.OID {
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		return "date_trunc(" + unit + ", " + col + ")", nil
	case pgtype.DateOID:
		return "CAST(date_trunc(" + unit + ", CAST(" + col + " AS timestamp)) AS date)", nil
	}
	return "", fmt.Errorf("time dimension %s has type %s; want timestamptz, timestamp or date", col, t.Name)
}

// Range is a half-open range [Start, End) of the time dimension.
type Range struct {
	Start, End time.Time
}

// SQL is the build query for the rows whose time dimension lies in r (nil: all rows),
// returning at most limit rows (0: no limit). Columns come out in Plan.Columns order.
func (p *Plan) SQL(r *Range, limit int64) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, s := range p.selects {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
		b.WriteString(" AS ")
		b.WriteString(sqlquote.Ident(p.Columns[i].Name))
	}
	b.WriteString(" FROM ")
	b.WriteString(p.from)
	where := append([]string(nil), p.where...)
	if r != nil && p.TimeType != nil {
		where = append(where,
			p.timeCol+" >= "+p.timeLiteral(r.Start),
			p.timeCol+" < "+p.timeLiteral(r.End))
	}
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	groups := 0
	for _, c := range p.Columns {
		if c.Role != RoleMeasure {
			groups++
		}
	}
	if groups > 0 {
		b.WriteString(" GROUP BY ")
		for i := 1; i <= groups; i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(i))
		}
	}
	if limit > 0 {
		b.WriteString(" LIMIT ")
		b.WriteString(strconv.FormatInt(limit, 10))
	}
	return b.String()
}

// whereClause is " WHERE <filters>", or "" without filters.
func (p *Plan) whereClause() string {
	if len(p.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(p.where, " AND ")
}

// timeLiteral writes a bound as a typed literal of the time column's type. Bounds of
// timestamp and date columns are wall-clock values held in UTC.
func (p *Plan) timeLiteral(t time.Time) string {
	return typedTimeLiteral(t, p.TimeType.OID)
}

// duckTimeLiteral writes a bound as a DuckDB literal of the stored time bucket's type.
func (p *Plan) duckTimeLiteral(t time.Time) string {
	switch p.TimeType.OID {
	case pgtype.TimestamptzOID:
		return "CAST(" + sqlquote.Literal(t.UTC().Format("2006-01-02 15:04:05.999999")+"+00") + " AS TIMESTAMPTZ)"
	case pgtype.DateOID:
		return "CAST(" + sqlquote.Literal(t.UTC().Format("2006-01-02")) + " AS DATE)"
	default:
		return "CAST(" + sqlquote.Literal(t.UTC().Format("2006-01-02 15:04:05.999999")) + " AS TIMESTAMP)"
	}
}

// describe prepares sql unnamed and returns the types of its result columns.
func describe(ctx context.Context, conn *pgconn.PgConn, sql string) ([]Type, error) {
	sd, err := conn.Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Type, len(sd.Fields))
	oids := map[uint32]bool{}
	for i, f := range sd.Fields {
		out[i] = Type{OID: f.DataTypeOID, Typmod: f.TypeModifier}
		oids[f.DataTypeOID] = true
	}
	// Name every type with format_type, the spelling Postgres itself uses.
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, t := range out {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "format_type(%d, %d)", t.OID, t.Typmod)
	}
	if len(out) == 0 {
		return out, nil
	}
	res := conn.ExecParams(ctx, b.String(), nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	if len(res.Rows) == 1 {
		for i, v := range res.Rows[0] {
			out[i].Name = string(v)
		}
	}
	return out, nil
}

// storageType is the DuckDB type a column is stored as (see package layout).
func storageType(c Column) string {
	var arg layout.Type
	if c.ArgType != nil {
		arg = layout.Type{OID: c.ArgType.OID, Typmod: c.ArgType.Typmod}
	}
	return layout.StorageType(layout.Type{OID: c.Type.OID, Typmod: c.Type.Typmod}, c.Part, arg)
}
