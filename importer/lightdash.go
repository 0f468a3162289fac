package importer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/config"
)

// ldModel is one dbt model with its Lightdash metadata.
type ldModel struct {
	f            *file
	name, table  string
	node         *yaml.Node
	dims         map[string]*ldDim
	metrics      map[string]*ldMetric
	preAggregate *yaml.Node
}

// ldDim is a dimension: a column, or the SQL of meta.dimension.sql.
type ldDim struct {
	name, sql string
	node      *yaml.Node
}

// ldMetric is one entry of meta.metrics, of a column or of the model.
type ldMetric struct {
	name, typ, sql string
	column         string // the column it is defined on; "" for a model metric
	broken         bool   // its definition is bad input, already reported
	filters        *yaml.Node
	node           *yaml.Node
}

// Lightdash metric types: those pgrollup stores, and those it knows but cannot.
var (
	ldAggregates = map[string]string{"count": "count", "count_distinct": "count", "sum": "sum", "average": "avg", "min": "min", "max": "max"}
	ldUnstored   = map[string]string{
		"median":              "a median is not a measure pgrollup stores",
		"percentile":          "a percentile is not a measure pgrollup stores",
		"sum_distinct":        "sum_distinct is not a measure pgrollup stores",
		"average_distinct":    "average_distinct is not a measure pgrollup stores",
		"string":              "a string metric is custom SQL, not an aggregate pgrollup stores",
		"date":                "a date metric is custom SQL, not an aggregate pgrollup stores",
		"timestamp":           "a timestamp metric is custom SQL, not an aggregate pgrollup stores",
		"boolean":             "a boolean metric is custom SQL, not an aggregate pgrollup stores",
		"percent_of_previous": "a table calculation is not a measure pgrollup stores",
		"percent_of_total":    "a table calculation is not a measure pgrollup stores",
		"running_total":       "a running total is not a measure pgrollup stores",
	}
)

// ldRef is a reference in Lightdash SQL: ${TABLE}, ${dimension},
// ${model.dimension}.
var ldRef = regexp.MustCompile(`\$\{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}(\.)?`)

// Lightdash translates dbt schema.yml files with Lightdash metadata into
// pgrollup rollups: one per entry of a model's meta.pre_aggregates, over
// the relation schema.model (the model's alias when it has one). Anything
// without a pgrollup equivalent is left out and listed in the result's
// Untranslated. Bad input is returned as Errors, together with what the
// rest translates to; a pre-aggregate that reads bad input is left out.
func Lightdash(srcs []Source, schema string) (*Result, error) {
	if schema == "" {
		schema = "public"
	}
	res := &Result{}
	var errs Errors
	var models []*ldModel
	for _, src := range srcs {
		f := &file{name: src.Name, res: res, errs: &errs}
		doc := parse(src, &errs)
		if doc == nil || !f.isKind(doc, yaml.MappingNode, "schema file") {
			continue
		}
		ms := get(doc, "models")
		if !f.isKind(ms, yaml.SequenceNode, "models") {
			continue
		}
		for _, n := range items(ms) {
			if m := readModel(f, n, schema); m != nil {
				models = append(models, m)
			}
		}
	}
	ns := names{}
	for _, m := range models {
		for _, n := range items(m.preAggregate) {
			if r, ok := m.translate(n, ns); ok {
				res.Rollups = append(res.Rollups, r)
			}
		}
	}
	return finish(res, errs)
}

// meta is key of a node's meta, or of its config.meta as dbt 1.10 writes
// it.
func meta(n *yaml.Node, key string) *yaml.Node {
	if v := get(get(n, "meta"), key); v != nil {
		return v
	}
	return get(get(get(n, "config"), "meta"), key)
}

// readModel reads one model's dimensions, metrics and pre-aggregates.
func readModel(f *file, n *yaml.Node, schema string) *ldModel {
	if !f.isKind(n, yaml.MappingNode, "model") {
		return nil
	}
	m := &ldModel{f: f, node: n, name: scalar(get(n, "name")), dims: map[string]*ldDim{}, metrics: map[string]*ldMetric{}}
	if m.name == "" {
		f.errorf(n, "model without a name")
		return nil
	}
	rel := m.name
	if alias := scalar(get(get(n, "config"), "alias")); alias != "" {
		rel = alias
	}
	m.table = schema + "." + rel
	for _, c := range items(get(n, "columns")) {
		col := scalar(get(c, "name"))
		if col == "" {
			f.errorf(c, "column of model %s without a name", m.name)
			continue
		}
		d := &ldDim{name: col, sql: col, node: c}
		if dim := meta(c, "dimension"); dim != nil {
			if s := scalar(get(dim, "sql")); s != "" {
				d.sql = s
			}
		}
		m.dims[col] = d
		m.addMetrics(meta(c, "metrics"), col)
		for _, p := range pairs(meta(c, "additional_dimensions")) {
			if _, dup := m.dims[p.key]; dup {
				f.errorf(p.k, "model %s defines dimension %s twice", m.name, p.key)
				continue
			}
			sql := scalar(get(p.v, "sql"))
			if sql == "" {
				f.errorf(p.k, "additional dimension %s.%s needs sql", m.name, p.key)
				continue
			}
			m.dims[p.key] = &ldDim{name: p.key, sql: sql, node: p.k}
		}
	}
	if j := meta(n, "joins"); j != nil {
		f.notef(j, "model %s: joins are not read; declare them in tables, and rollups over joined fields by hand", m.name)
	}
	m.addMetrics(meta(n, "metrics"), "")
	m.preAggregate = meta(n, "pre_aggregates")
	f.isKind(m.preAggregate, yaml.SequenceNode, m.name+".meta.pre_aggregates")
	return m
}

// addMetrics reads a meta.metrics mapping, of column col or of the model.
func (m *ldModel) addMetrics(n *yaml.Node, col string) {
	f := m.f
	if !f.isKind(n, yaml.MappingNode, m.name+" metrics") {
		return
	}
	for _, p := range pairs(n) {
		mt := &ldMetric{name: p.key, column: col, node: p.k, typ: strings.ToLower(scalar(get(p.v, "type"))), sql: scalar(get(p.v, "sql")), filters: get(p.v, "filters")}
		if prev, ok := m.metrics[p.key]; ok {
			f.errorf(p.k, "model %s defines metric %s twice (first at line %d)", m.name, p.key, prev.node.Line)
			continue
		}
		mt.broken = true
		switch _, agg := ldAggregates[mt.typ]; {
		case mt.typ == "":
			f.errorf(p.k, "metric %s.%s has no type", m.name, p.key)
		case !agg && ldUnstored[mt.typ] == "" && mt.typ != "number":
			f.errorf(get(p.v, "type"), "metric %s.%s: unknown metric type %q", m.name, p.key, mt.typ)
		case col == "" && mt.sql == "" && mt.typ != "count":
			f.errorf(p.k, "metric %s.%s is defined on the model and needs sql", m.name, p.key)
		default:
			mt.broken = false
		}
		m.metrics[p.key] = mt
	}
}

// sql writes Lightdash SQL of the model with ${TABLE} and dimension
// references replaced by bare columns.
func (m *ldModel) sql(s string, depth int) (string, error) {
	if depth > 20 {
		return "", bad("dimensions refer to each other in a cycle")
	}
	var out strings.Builder
	last := 0
	for _, mm := range ldRef.FindAllStringSubmatchIndex(s, -1) {
		out.WriteString(s[last:mm[0]])
		last = mm[1]
		first, second, dot := refParts(s, mm)
		switch {
		case first == "TABLE" && second == "" && dot:
			continue // a bare column of the model
		case first == "TABLE":
			return "", bad("${TABLE} where a column is expected")
		case second != "" && first != m.name:
			return "", skip("the SQL reads model %s; joined models are not translated", first)
		}
		name := first
		if second != "" {
			name = second
		}
		col, err := m.dimension(name, depth+1)
		if err != nil {
			return "", err
		}
		out.WriteString(col)
		if dot {
			out.WriteString(".")
		}
	}
	out.WriteString(s[last:])
	return out.String(), nil
}

// dimension writes the SQL of dimension name.
func (m *ldModel) dimension(name string, depth int) (string, error) {
	d := m.dims[name]
	if d == nil {
		if _, ok := m.metrics[name]; ok {
			return "", skip("the SQL refers to metric %s where a column is expected", name)
		}
		return "", bad("model %s has no column %s", m.name, name)
	}
	if ident.MatchString(d.sql) {
		return d.sql, nil
	}
	return m.sql(d.sql, depth)
}

// ref strips the model's name from a reference: dimension, model.dimension.
func (m *ldModel) ref(s string) (string, error) {
	if mn, name, ok := strings.Cut(s, "."); ok {
		if mn != m.name {
			return "", skip("%s is a field of model %s; joined models are not translated", s, mn)
		}
		return name, nil
	}
	return s, nil
}

// column is the column of a pre-aggregate's dimension reference, which
// must match want (described as what): pgrollup groups by plain columns.
func (m *ldModel) column(ref string, want *regexp.Regexp, what string) (string, error) {
	name, err := m.ref(ref)
	if err != nil {
		return "", err
	}
	col, err := m.dimension(name, 0)
	if err == nil && !want.MatchString(col) {
		err = skip("dimension %s is the expression %s, not %s; pgrollup groups by plain columns", ref, col, what)
	}
	return col, err
}

// metric writes the stored measures metric name needs.
func (m *ldModel) metric(name string, depth int) ([]string, []string, error) {
	mt := m.metrics[name]
	if mt == nil {
		return nil, nil, bad("model %s has no metric %s", m.name, name)
	}
	if depth > 20 {
		return nil, nil, bad("metrics refer to each other in a cycle")
	}
	if mt.broken {
		return nil, nil, errReported
	}
	if why := ldUnstored[mt.typ]; why != "" {
		return nil, nil, skip("%s", why)
	}
	if mt.typ == "number" {
		rest := ldRef.ReplaceAllString(mt.sql, " 1 ")
		refs := ldRef.FindAllStringSubmatch(mt.sql, -1)
		if !arithmetic(rest) || len(refs) == 0 {
			return nil, nil, skip("type number with sql %q is custom SQL, not arithmetic over other metrics; pgrollup stores aggregates only", mt.sql)
		}
		var ms, parts []string
		for _, r := range refs {
			ref := r[1]
			if r[2] != "" {
				ref = r[2]
				if r[1] != m.name {
					return nil, nil, skip("type number reads model %s; joined models are not translated", r[1])
				}
			}
			sub, _, err := m.metric(ref, depth+1)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", ref, err)
			}
			ms = append(ms, sub...)
			parts = append(parts, ref+" = "+strings.Join(sub, ", "))
		}
		return ms, []string{fmt.Sprintf("metric %s (number, %s) is computed at query time from %s", name, mt.sql, strings.Join(parts, "; "))}, nil
	}
	arg := ""
	switch {
	case mt.sql != "":
		var err error
		if arg, err = m.sql(mt.sql, depth); err != nil {
			return nil, nil, err
		}
	case mt.column != "":
		var err error
		if arg, err = m.dimension(mt.column, depth); err != nil {
			return nil, nil, err
		}
	}
	filters, err := m.filters(mt.filters)
	if err != nil {
		return nil, nil, err
	}
	if len(filters) > 0 {
		// Lightdash writes a filtered metric as the aggregate of a CASE,
		// and so must the stored measure be for its statements to match.
		if arg == "" {
			arg = "1"
		}
		arg = "CASE WHEN " + strings.Join(filters, " AND ") + " THEN " + arg + " ELSE NULL END"
	}
	return []string{aggregate(ldAggregates[mt.typ], arg, mt.typ == "count_distinct")}, nil, nil
}

// inThePast is Lightdash's relative date filter: "inThePast 52 weeks",
// "inThePast 3 completed months".
var inThePast = regexp.MustCompile(`^inThePast\s+(\d+)\s+(completed\s+)?(hour|day|week|month|quarter|year)s?$`)

// filters translates Lightdash's YAML filters (a list of one-key mappings,
// dimension: value) into SQL conditions.
func (m *ldModel) filters(n *yaml.Node) ([]string, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, bad("filters: want a list of dimension: value")
	}
	var out []string
	for _, it := range items(n) {
		ps := pairs(it)
		if len(ps) != 1 {
			return nil, bad("filter: want one dimension: value")
		}
		name, err := m.ref(ps[0].key)
		if err != nil {
			return nil, err
		}
		col, err := m.dimension(name, 0)
		if err != nil {
			return nil, err
		}
		cond, err := ldCondition(col, ps[0].v)
		if err != nil {
			return nil, fmt.Errorf("filter on %s: %w", ps[0].key, err)
		}
		out = append(out, cond)
	}
	return out, nil
}

// ldCondition is the SQL of one Lightdash filter value on col.
func ldCondition(col string, v *yaml.Node) (string, error) {
	if v.Kind == yaml.SequenceNode {
		var lits []string
		for _, it := range items(v) {
			l, err := ldLiteral(it)
			if err != nil {
				return "", err
			}
			lits = append(lits, l)
		}
		return col + " IN (" + strings.Join(lits, ", ") + ")", nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", bad("want a value or a list of values")
	}
	if v.Tag != "!!str" {
		l, err := ldLiteral(v)
		if err != nil {
			return "", err
		}
		if l == "NULL" {
			return col + " IS NULL", nil
		}
		return col + " = " + l, nil
	}
	s := strings.TrimSpace(v.Value)
	switch {
	case s == "null":
		return col + " IS NULL", nil
	case s == "!null":
		return col + " IS NOT NULL", nil
	case strings.HasPrefix(s, "inThePast"):
		mm := inThePast.FindStringSubmatch(s)
		if mm == nil {
			return "", skip("%q is not inThePast N [completed] hours/days/weeks/months/quarters/years", s)
		}
		n, unit := mm[1], mm[3]
		trunc := "day"
		if unit == "hour" {
			trunc = "hour"
		}
		if mm[2] != "" {
			// Completed units: from the start of the unit N units ago to
			// the start of the current one.
			trunc = unit
			return fmt.Sprintf("%s >= date_trunc('%s', now()) - interval '%s %ss' AND %s < date_trunc('%s', now())", col, trunc, n, unit, col, trunc), nil
		}
		return fmt.Sprintf("%s >= date_trunc('%s', now()) - interval '%s %ss'", col, trunc, n, unit), nil
	case strings.HasPrefix(s, "inTheNext"), strings.HasPrefix(s, "inTheCurrent"), strings.HasPrefix(s, "inBetween"):
		return "", skip("%q has no pgrollup rollup filter; only inThePast is translated", s)
	case strings.Contains(s, "%"):
		return "", skip("%q is a pattern match, which is not translated", s)
	case strings.HasPrefix(s, "!"):
		// As Lightdash's "is not": rows where the column is NULL are kept.
		return "(" + col + " NOT IN (" + quote(s[1:]) + ") OR " + col + " IS NULL)", nil
	default:
		return col + " IN (" + quote(s) + ")", nil
	}
}

// ldLiteral is an SQL literal for a YAML scalar.
func ldLiteral(n *yaml.Node) (string, error) {
	switch n.Tag {
	case "!!null":
		return "NULL", nil
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return "", bad("%q is not a boolean", n.Value)
		}
		return strconv.FormatBool(b), nil
	case "!!int", "!!float":
		if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			return "", bad("%q is not a number", n.Value)
		}
		return n.Value, nil
	case "!!str":
		return quote(n.Value), nil
	}
	return "", skip("value %q of type %s is not translated", n.Value, n.Tag)
}

// quote is an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// translate turns one pre-aggregate into a rollup; ok is false when it was
// left out (and reported).
func (m *ldModel) translate(n *yaml.Node, ns names) (Rollup, bool) {
	f := m.f
	name := scalar(get(n, "name"))
	if name == "" {
		f.errorf(n, "pre-aggregate of model %s without a name", m.name)
		return Rollup{}, false
	}
	what := fmt.Sprintf("model %s, pre-aggregate %s", m.name, name)
	r := Rollup{Rollup: config.Rollup{Name: ns.name(m.name, name), Table: m.table},
		Origin: fmt.Sprintf("%s:%d: %s", f.name, n.Line, what), at: Problem{File: f.name, Line: n.Line, Msg: what}}
	ok := true
	fail := func(at *yaml.Node, what string, err error) {
		f.report(at, what, err)
		ok = false
	}
	for _, p := range pairs(n) {
		switch p.key {
		case "name", "dimensions", "metrics", "filters", "time_dimension", "granularity", "max_rows", "refresh":
		case "materialization_role":
			f.notef(p.k, "%s: materialization_role is ignored: pgrollup builds as warehouse.dsn's role and checks each session's privileges when it answers", what)
		default:
			f.notef(p.k, "%s: %s is not read", what, p.key)
		}
	}
	for _, ref := range f.stringList(get(n, "metrics"), what+": metrics") {
		mn, err := m.ref(scalar(ref))
		var ms, comments []string
		if err == nil {
			ms, comments, err = m.metric(mn, 0)
		}
		var b *badInput
		if errors.As(err, &b) {
			fail(ref, what+": metric "+scalar(ref), err)
			continue
		}
		if err != nil {
			f.report(ref, what+": metric "+scalar(ref), err)
			continue
		}
		addMeasures(&r.Rollup, ms...)
		r.Comments = append(r.Comments, comments...)
	}
	for _, ref := range f.stringList(get(n, "dimensions"), what+": dimensions") {
		col, err := m.column(scalar(ref), plainColumn, "a plain column")
		if err != nil {
			fail(ref, what+": dimension "+scalar(ref), err)
			continue
		}
		if !contains(r.Dimensions, col) {
			r.Dimensions = append(r.Dimensions, col)
		}
	}
	td, gn := get(n, "time_dimension"), get(n, "granularity")
	switch {
	case td != nil && gn != nil:
		col, err := m.column(scalar(td), ident, "a column of the model")
		g, gerr := granularity(scalar(gn))
		if err != nil {
			fail(td, what+": time_dimension", err)
		} else if gerr != nil {
			fail(gn, what+": granularity", gerr)
		}
		r.TimeDimension, r.Granularity = col, g
	case td != nil || gn != nil:
		fail(n, what, bad("time_dimension and granularity go together"))
	}
	if fs := get(n, "filters"); fs != nil {
		conds, err := m.filters(fs)
		if err != nil {
			fail(fs, what+": filters", err)
		}
		r.Filters = conds
	}
	if mr := get(n, "max_rows"); mr != nil {
		v, err := strconv.ParseInt(scalar(mr), 10, 64)
		if err != nil || v <= 0 {
			fail(mr, what+": max_rows", bad("want a positive integer"))
		}
		r.MaxRows = v
	}
	if cron := scalar(get(get(n, "refresh"), "cron")); cron != "" {
		r.Refresh.Cron = cron
	} else if windowed(r.Filters) {
		f.notef(n, "%s: its inThePast filter rolls only when the rollup is rebuilt; give it refresh.cron", what)
	}
	if ok && len(r.Measures) == 0 && len(r.Dimensions) == 0 && r.TimeDimension == "" {
		f.skipf(n, "%s: not translated: nothing of it is left to store", what)
		ok = false
	}
	return r, ok
}

// windowed reports whether a filter is relative to the clock.
func windowed(filters []string) bool {
	for _, f := range filters {
		if strings.Contains(f, "now()") {
			return true
		}
	}
	return false
}
