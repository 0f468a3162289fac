package rollup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Join is a declared join a rollup is built with.
type Join struct {
	Table        string `json:"table"`        // schema-qualified, as declared
	On           string `json:"on"`           // the condition, deparsed by the Postgres parser
	Type         string `json:"type"`         // left or inner
	Relationship string `json:"relationship"` // many_to_one or one_to_one
}

// Definition is the normalised form of one configured rollup: everything that decides
// the content of its files, and nothing else (refresh settings are not part of it). SQL
// snippets are kept as the Postgres parser deparses them, so that spelling differences
// ("COUNT( * )" and "count(*)") do not make a new rollup.
type Definition struct {
	Name                 string             `json:"name"`
	Table                string             `json:"table"`
	Joins                []Join             `json:"joins,omitempty"` // only the declared joins the definition references
	Dimensions           []string           `json:"dimensions,omitempty"`
	TimeDimension        string             `json:"time_dimension,omitempty"`
	Granularity          config.Granularity `json:"granularity,omitempty"`
	Measures             []string           `json:"measures,omitempty"`
	Filters              []string           `json:"filters,omitempty"`
	PartitionGranularity config.Granularity `json:"partition_granularity,omitempty"`
	MaxRows              int64              `json:"max_rows,omitempty"`
	BuildRangeStart      string             `json:"build_range_start,omitempty"`
	BuildRangeEnd        string             `json:"build_range_end,omitempty"`
	BuildTimezone        string             `json:"build_timezone"`
	// Lambda: the build holds only the rows below its cutoff (rollup/lambda.go).
	Lambda *Lambda `json:"lambda,omitempty"`
}

// Definitions returns the normalised definition of every rollup in cfg, in file order.
func Definitions(cfg *config.Config) ([]*Definition, error) {
	defs := make([]*Definition, 0, len(cfg.Rollups))
	for i := range cfg.Rollups {
		d, err := NewDefinition(cfg, &cfg.Rollups[i])
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	return defs, nil
}

// NewDefinition normalises rollup r of cfg.
func NewDefinition(cfg *config.Config, r *config.Rollup) (*Definition, error) {
	d := &Definition{
		Name:                 r.Name,
		Table:                r.Table,
		TimeDimension:        r.TimeDimension,
		Granularity:          r.Granularity,
		PartitionGranularity: r.PartitionGranularity,
		MaxRows:              r.MaxRows,
		BuildTimezone:        cfg.BuildTimezone,
	}
	if d.BuildTimezone == "" {
		d.BuildTimezone = "UTC"
	}
	var err error
	canon := func(kind, text string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = canonicalExpr(text)
		if err != nil {
			err = fmt.Errorf("rollup %s: %s %q: %w", r.Name, kind, text, err)
		}
		return s
	}
	for _, s := range r.Dimensions {
		d.Dimensions = append(d.Dimensions, canon("dimension", s))
	}
	if r.TimeDimension != "" {
		d.TimeDimension = canon("time_dimension", r.TimeDimension)
	}
	for _, s := range r.Measures {
		d.Measures = append(d.Measures, canon("measure", s))
	}
	for _, s := range r.Filters {
		d.Filters = append(d.Filters, canon("filter", s))
	}
	if r.Lambda != nil {
		d.Lambda = &Lambda{Column: canon("lambda.column", r.Lambda.Column), LateWindow: time.Duration(r.Lambda.LateWindow)}
		if d.Lambda.Column != d.TimeDimension {
			d.Lambda.IDs, d.Lambda.LateIDs = true, r.Lambda.LateIDs
		}
	}
	if r.BuildRange != nil {
		if d.BuildRangeStart, err = canonicalQuery(r.BuildRange.Start); err != nil {
			return nil, fmt.Errorf("rollup %s: build_range.start: %w", r.Name, err)
		}
		if d.BuildRangeEnd, err = canonicalQuery(r.BuildRange.End); err != nil {
			return nil, fmt.Errorf("rollup %s: build_range.end: %w", r.Name, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if t := cfg.Table(r.Table); t != nil {
		d.Joins, err = usedJoins(d, t.Joins)
		if err != nil {
			return nil, fmt.Errorf("rollup %s: %w", r.Name, err)
		}
	}
	return d, nil
}

// Identity is the hash of the normalised definition: 16 hex digits that name the
// rollup's catalog entry and file directory.
func (d *Definition) Identity() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("rollup: marshal definition: %v", err)) // plain data cannot fail to marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Partitioned reports whether the rollup is stored as one file per time partition.
func (d *Definition) Partitioned() bool { return d.PartitionGranularity != "" }

// usedJoins keeps the declared joins that the definition references, plus the joins
// those depend on through their conditions. An unreferenced join is left out because
// the matcher (package rewrite) assumes exactly that: a rollup is built with the joins
// its definition uses, and an unreferenced inner join would drop rows it knows nothing of.
func usedJoins(d *Definition, declared []config.Join) ([]Join, error) {
	var exprs []string
	exprs = append(exprs, d.Dimensions...)
	exprs = append(exprs, d.Measures...)
	exprs = append(exprs, d.Filters...)
	if d.TimeDimension != "" {
		exprs = append(exprs, d.TimeDimension)
	}
	quals := map[string]bool{}
	for _, e := range exprs {
		q, err := qualifiers(e)
		if err != nil {
			return nil, err
		}
		for k := range q {
			quals[k] = true
		}
	}
	used := make([]bool, len(declared))
	ons := make([]map[string]bool, len(declared))
	for i, j := range declared {
		on, err := canonicalExpr(j.On)
		if err != nil {
			return nil, fmt.Errorf("join to %s: %w", j.Table, err)
		}
		if ons[i], err = qualifiers(on); err != nil {
			return nil, fmt.Errorf("join to %s: %w", j.Table, err)
		}
	}
	for changed := true; changed; {
		changed = false
		for i, j := range declared {
			if used[i] || !matchesQualifier(j.Table, quals) {
				continue
			}
			used[i], changed = true, true
			for k := range ons[i] {
				quals[k] = true
			}
		}
	}
	var out []Join
	for i, j := range declared {
		if !used[i] {
			continue
		}
		on, _ := canonicalExpr(j.On)
		typ := j.Type
		if typ == "" {
			typ = config.JoinLeft
		}
		rel := j.Relationship
		if rel == "" {
			rel = config.RelationshipManyToOne
		}
		out = append(out, Join{Table: j.Table, On: on, Type: typ, Relationship: rel})
	}
	return out, nil
}

// matchesQualifier reports whether a column qualifier in quals names table: by its
// bare name or schema-qualified, compared the way the parser folded them.
func matchesQualifier(table string, quals map[string]bool) bool {
	schema, name, err := splitRelation(table)
	if err != nil {
		return false
	}
	return quals[name] || (schema != "" && quals[schema+"."+name])
}

// qualifiers returns the table qualifiers ("customers", "public.customers") of the
// column references in the expression.
func qualifiers(expr string) (map[string]bool, error) {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	walk(tree, func(m proto.Message) bool {
		ref, ok := m.(*pg_query.ColumnRef)
		if !ok || len(ref.Fields) < 2 {
			return true
		}
		var parts []string
		for _, f := range ref.Fields[:len(ref.Fields)-1] {
			if s := f.GetString_(); s != nil {
				parts = append(parts, s.Sval)
			}
		}
		if len(parts) == len(ref.Fields)-1 {
			out[strings.Join(parts, ".")] = true
		}
		return true
	})
	return out, nil
}

// walk visits every message of a parse tree, depth first; the children of a
// message for which visit returns false are skipped.
func walk(m proto.Message, visit func(proto.Message) bool) {
	if !visit(m) {
		return
	}
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message().Interface(), visit)
			}
		default:
			walk(v.Message().Interface(), visit)
		}
		return true
	})
}

// canonicalExpr parses text as one SQL expression and returns it deparsed. Generated
// SQL only ever contains deparsed snippets, so a snippet cannot carry a second clause
// or statement into a build, whatever the configuration says.
func canonicalExpr(text string) (string, error) {
	tree, err := pg_query.Parse("SELECT " + text)
	if err != nil {
		return "", err
	}
	if len(tree.Stmts) != 1 {
		return "", errors.New("not a single expression")
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 || len(sel.FromClause) != 0 || sel.WhereClause != nil ||
		len(sel.GroupClause) != 0 || sel.HavingClause != nil || len(sel.SortClause) != 0 ||
		sel.LimitCount != nil || sel.LimitOffset != nil || sel.WithClause != nil ||
		sel.Op != pg_query.SetOperation_SETOP_NONE || sel.TargetList[0].GetResTarget().GetName() != "" {
		return "", errors.New("not a single expression")
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(out, "SELECT "), nil
}

// canonicalQuery parses text as one SELECT statement and returns it deparsed.
func canonicalQuery(text string) (string, error) {
	tree, err := pg_query.Parse(text)
	if err != nil {
		return "", err
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].GetStmt().GetSelectStmt() == nil {
		return "", errors.New("not a single SELECT statement")
	}
	if sel := tree.Stmts[0].GetStmt().GetSelectStmt(); sel.IntoClause != nil || len(sel.LockingClause) > 0 {
		return "", errors.New("not a read-only SELECT statement")
	}
	return pg_query.Deparse(tree)
}

// splitRelation splits "schema.table" into its identifiers as Postgres folds them;
// schema is empty for an unqualified name, which the warehouse's search_path resolves.
func splitRelation(name string) (schema, table string, err error) {
	tree, err := pg_query.Parse("SELECT FROM " + name)
	if err != nil {
		return "", "", fmt.Errorf("table name %q: %w", name, err)
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || len(sel.FromClause) != 1 || sel.FromClause[0].GetRangeVar() == nil {
		return "", "", fmt.Errorf("table name %q is not a table", name)
	}
	rv := sel.FromClause[0].GetRangeVar()
	if rv.Catalogname != "" {
		return "", "", fmt.Errorf("table name %q: database-qualified names are not supported", name)
	}
	return rv.Schemaname, rv.Relname, nil
}

// quoteRelation quotes a schema-qualified table name.
func quoteRelation(name string) (string, error) {
	schema, table, err := splitRelation(name)
	if err != nil {
		return "", err
	}
	if schema == "" {
		return sqlquote.Ident(table), nil
	}
	return sqlquote.Ident(schema) + "." + sqlquote.Ident(table), nil
}
