package rewrite

import (
	"slices"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Need is what a rollup must hold to answer one statement, as the config
// writes it: `pgrollup advise` proposes rollups from the needs of the
// statements the warehouse answered. It is a proposal, not a decision: the
// engine decides whether a rollup built from it answers the statement.
type Need struct {
	// Table is the fact table, schema.table.
	Table string
	// Dimensions are the columns the statement groups by, filters on or
	// returns raw: `column` of the fact table, `table.column` of a join.
	Dimensions []string
	// TimeColumn, when set, is a time column the statement cuts into
	// buckets or bounds by a range; Grain is the coarsest bucket that
	// serves every use of it.
	TimeColumn string
	Grain      config.Granularity
	// Measures are the aggregate calls, over the fact table's columns and
	// the joins', as rollups[].measures writes them.
	Measures []string
	// Joins are the joined tables the statement reads, schema.table.
	Joins []string
}

// grainsCoarseFirst lists the granularities from the coarsest.
var grainsCoarseFirst = []config.Granularity{config.Year, config.Quarter, config.Month, config.Week, config.Day, config.Hour}

// Needs says what a rollup must hold to answer the statement tree against
// cat's tables (their columns and types): the statement's own shape (rule 1)
// and names (rules 2 and 9) are checked as a decision checks them. A
// statement no rollup could answer gets the reason.
func Needs(tree *pg_query.ParseResult, cat *Catalog) (*Need, *Reason) {
	a := Analyze(tree)
	if a.reason != nil {
		return nil, a.reason
	}
	q, r := bind(a, cat, &Session{})
	if r != nil {
		return nil, r
	}
	n := &needs{q: q, need: &Need{Table: q.fact.full()}}
	for _, j := range q.joins {
		n.need.Joins = append(n.need.Joins, j.entry.full())
	}
	for _, t := range q.core.targets {
		n.collect(t.expr)
	}
	for _, g := range q.groupBy {
		n.collect(g)
	}
	for _, w := range q.where {
		if !n.timeRange(w) {
			n.collect(w)
		}
	}
	if q.core.having != nil {
		n.collect(q.core.having)
	}
	for _, o := range q.order {
		if o.expr != nil {
			n.collect(o.expr)
		}
	}
	if n.bad != nil {
		return nil, n.bad
	}
	return n.need, nil
}

// needs collects one statement's Need.
type needs struct {
	q    *boundQuery
	need *Need
	bad  *Reason
}

// column names a bound column as the config does: `column` of the fact
// table, `table.column` of a join.
func (n *needs) column(b *colBinding) string {
	if b.entry == n.q.fact {
		return plainIdent(b.column.Name)
	}
	return plainIdent(b.entry.name) + "." + plainIdent(b.column.Name)
}

// plainIdent writes a name bare when Postgres reads it back unchanged
// (lower case, letters, digits and underscores), else quoted.
func plainIdent(s string) string {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return sqlquote.Ident(s)
		}
	}
	return s
}

// collect adds what e reads: aggregates as measures, time columns as the
// time column (at the grain of the bucket they are cut into, day when
// none is seen), other columns as dimensions.
func (n *needs) collect(e *expr) { n.collectAt(e, "") }

// collectAt is collect inside a time bucket of grain hint ("" for none).
func (n *needs) collectAt(e *expr, hint config.Granularity) {
	if e == nil {
		return
	}
	switch e.kind {
	case kFunc:
		switch e.name {
		case "sum", "count", "min", "max", "avg":
			s, ok := n.sql(e)
			if !ok {
				n.fail(reason(ReasonExpression, "an aggregate advise cannot write as a measure"))
			} else if !slices.Contains(n.need.Measures, s) {
				n.need.Measures = append(n.need.Measures, s)
			}
			return
		case "date_trunc", "extract", "date_part":
			if len(e.args) == 2 {
				if unit, ok := constString(e.args[0]); ok {
					if g, ok := unitGrain(unit); ok {
						hint = g
					}
				}
			}
		}
	case kOp:
		// floor(extract(epoch from t) / 86400) * 86400: Grafana's buckets.
		if e.name == "/" && len(e.args) == 2 {
			if secs, ok := constInt(e.args[1]); ok && secs > 0 {
				switch {
				case secs%86400 == 0:
					hint = config.Day
				case secs%3600 == 0:
					hint = config.Hour
				}
			}
		}
	case kCast:
		if e.typName == "date" || e.typ.OID == dateOID {
			hint = config.Day
		}
	case kCol:
		if e.col == nil {
			return
		}
		if kindOfType(e.col.column.Type) != 0 && hint != "" {
			n.time(e.col, hint)
			return
		}
		if kindOfType(e.col.column.Type) != 0 && n.need.TimeColumn == "" {
			n.time(e.col, config.Day)
			return
		}
		n.dimension(n.column(e.col))
		return
	}
	n.collectAt(e.caseArg, hint)
	for _, a := range e.args {
		n.collectAt(a, hint)
	}
	n.collectAt(e.filter, hint)
}

// dateOID is the type of a cast to date.
const dateOID = 1082

// timeColumnOf returns the time column e reads directly (through casts).
func timeColumnOf(e *expr) *colBinding {
	for e.kind == kCast && len(e.args) == 1 {
		e = e.args[0]
	}
	if e.kind == kCol && e.col != nil && kindOfType(e.col.column.Type) != 0 {
		return e.col
	}
	return nil
}

// timeRange takes a conjunct that bounds a time column by constants
// (col >= '2024-01-01', BETWEEN) as needing that column at the grain the
// bounds fall on; it reports false for any other conjunct.
func (n *needs) timeRange(w *expr) bool {
	var col *colBinding
	var bounds []*expr
	switch {
	case w.kind == kOp && len(w.args) == 2 && (w.name == ">=" || w.name == ">" || w.name == "<" || w.name == "<="):
		if col = timeColumnOf(w.args[0]); col == nil {
			col = timeColumnOf(w.args[1])
			bounds = w.args[:1]
		} else {
			bounds = w.args[1:]
		}
	case w.kind == kBetween && !w.not:
		col, bounds = timeColumnOf(w.args[0]), w.args[1:]
	}
	if col == nil {
		return false
	}
	g := config.Day
	if kindOfType(col.column.Type) == vDate {
		// A date compared with a timestamp literal reads only its day.
		n.time(col, g)
		return true
	}
	for _, b := range bounds {
		if bg, ok := boundGrain(b); ok {
			g = CommonGrain(g, bg)
		}
	}
	n.time(col, g)
	return true
}

// boundGrain is the coarsest grain whose bucket starts include a constant
// time bound; a bound relative to now() gets none (day is assumed).
func boundGrain(e *expr) (config.Granularity, bool) {
	for e.kind == kCast && len(e.args) == 1 {
		e = e.args[0]
	}
	if e.kind == kFunc && len(e.args) >= 1 {
		switch e.name {
		case "date_trunc":
			// date_trunc('month', now() - ...): a bound on month starts.
			if unit, ok := constString(e.args[0]); ok && len(e.args) == 2 {
				return unitGrain(unit)
			}
		case "to_timestamp", "to_date":
			// Superset's TO_TIMESTAMP('2024-01-01 00:00:00.000000', ...).
			e = e.args[0]
		}
	}
	s, ok := constString(e)
	if !ok {
		return "", false
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999Z07:00", "2006-01-02 15:04:05.999999Z07"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		switch {
		case t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0:
			return config.Day, true
		default:
			return config.Hour, true
		}
	}
	return "", false
}

// time notes the statement's use of a time column at grain g. A second time
// column is a plain dimension.
func (n *needs) time(c *colBinding, g config.Granularity) {
	name := n.column(c)
	switch n.need.TimeColumn {
	case "":
		n.need.TimeColumn, n.need.Grain = name, g
	case name:
		n.need.Grain = CommonGrain(n.need.Grain, g)
	default:
		n.dimension(name)
	}
}

func (n *needs) dimension(name string) {
	if name != n.need.TimeColumn && !slices.Contains(n.need.Dimensions, name) {
		n.need.Dimensions = append(n.need.Dimensions, name)
	}
}

func (n *needs) fail(r *Reason) {
	if n.bad == nil {
		n.bad = r
	}
}

// CommonGrain returns the coarsest granularity from which buckets of both a
// and b can be computed (derivable): day for week and month.
func CommonGrain(a, b config.Granularity) config.Granularity {
	for _, g := range grainsCoarseFirst {
		if derivable(g, a) && derivable(g, b) {
			return g
		}
	}
	return config.Hour
}

// sql writes a bound expression as SQL over the fact table's and the joins'
// columns, as the config writes measures; ok is false for what it cannot
// (parameters, subqueries).
func (n *needs) sql(e *expr) (string, bool) {
	var b strings.Builder
	ok := n.write(&b, e)
	return b.String(), ok
}

func (n *needs) write(b *strings.Builder, e *expr) bool {
	list := func(args []*expr, sep string) bool {
		for i, a := range args {
			if i > 0 {
				b.WriteString(sep)
			}
			if !n.write(b, a) {
				return false
			}
		}
		return true
	}
	switch e.kind {
	case kCol:
		if e.col == nil {
			return false
		}
		b.WriteString(n.column(e.col))
	case kConst:
		writeConst(b, e)
	case kFunc:
		b.WriteString(e.name + "(")
		switch {
		case e.star:
			b.WriteString("*")
		default:
			if e.distinct {
				b.WriteString("DISTINCT ")
			}
			if !list(e.args, ", ") {
				return false
			}
		}
		b.WriteString(")")
		if e.filter != nil {
			b.WriteString(" FILTER (WHERE ")
			if !n.write(b, e.filter) {
				return false
			}
			b.WriteString(")")
		}
	case kCast:
		b.WriteString("CAST(")
		if !n.write(b, e.args[0]) {
			return false
		}
		b.WriteString(" AS " + e.typName + ")")
	case kOp:
		b.WriteString("(")
		if len(e.args) == 1 {
			b.WriteString(e.name + " ")
		} else {
			if !n.write(b, e.args[0]) {
				return false
			}
			b.WriteString(" " + e.name + " ")
		}
		if !n.write(b, e.args[len(e.args)-1]) {
			return false
		}
		b.WriteString(")")
	case kAnd, kOr:
		op := " AND "
		if e.kind == kOr {
			op = " OR "
		}
		b.WriteString("(")
		if !list(e.args, op) {
			return false
		}
		b.WriteString(")")
	case kNot:
		b.WriteString("(NOT ")
		if !n.write(b, e.args[0]) {
			return false
		}
		b.WriteString(")")
	case kIn, kBetween:
		op, sep, end := " IN (", ", ", "))"
		if e.kind == kBetween {
			op, sep, end = " BETWEEN ", " AND ", ")"
		}
		b.WriteString("(")
		if !n.write(b, e.args[0]) {
			return false
		}
		if e.not {
			b.WriteString(" NOT")
		}
		b.WriteString(op)
		if !list(e.args[1:], sep) {
			return false
		}
		b.WriteString(end)
	case kNullTest:
		b.WriteString("(")
		if !n.write(b, e.args[0]) {
			return false
		}
		if e.not {
			b.WriteString(" IS NOT NULL)")
		} else {
			b.WriteString(" IS NULL)")
		}
	case kCase:
		b.WriteString("CASE")
		if e.caseArg != nil {
			b.WriteString(" ")
			if !n.write(b, e.caseArg) {
				return false
			}
		}
		pairs := e.args[:len(e.args)-1]
		for i := 0; i+1 < len(pairs); i += 2 {
			b.WriteString(" WHEN ")
			if !n.write(b, pairs[i]) {
				return false
			}
			b.WriteString(" THEN ")
			if !n.write(b, pairs[i+1]) {
				return false
			}
		}
		if el := e.args[len(e.args)-1]; el != nil {
			b.WriteString(" ELSE ")
			if !n.write(b, el) {
				return false
			}
		}
		b.WriteString(" END")
	case kCoalesce, kNullIf, kMinMax:
		name := map[kind]string{kCoalesce: "coalesce", kNullIf: "nullif", kMinMax: e.name}[e.kind]
		b.WriteString(name + "(")
		if !list(e.args, ", ") {
			return false
		}
		b.WriteString(")")
	default:
		return false
	}
	return true
}
