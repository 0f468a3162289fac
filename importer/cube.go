package importer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/config"
)

// cubeModel is every cube of the files imported together: joins and
// references may cross files.
type cubeModel struct {
	cubes map[string]*cube
	order []*cube
}

// cube is one entry of a model file's cubes.
type cube struct {
	f    *file
	name string
	node *yaml.Node
	// table is the relation of sql_table (or of sql: SELECT * FROM t);
	// short is its last part, which join conditions qualify columns with.
	table, short string
	// noTable is why the cube has no relation pgrollup can read.
	noTable error
	joins   []*cubeJoin
	members map[string]*member
	preAggs *yaml.Node
}

// member is a measure, dimension or segment of a cube.
type member struct {
	kind, name, typ, sql string
	node                 *yaml.Node
	filters              []string // a measure's filters, as SQL
	// why is set when the member's definition has no pgrollup equivalent
	// whatever uses it (a rolling window, a subquery dimension).
	why string
	// broken is set when its definition is bad input, already reported.
	broken bool
}

// cubeJoin is one entry of a cube's joins.
type cubeJoin struct {
	target, sql, relationship string
	node                      *yaml.Node
}

// Relationships of Cube joins (and their older spellings) that keep the
// fact table's rows: each fact row meets at most one joined row.
var cubeRelationships = map[string]string{
	"many_to_one": config.RelationshipManyToOne, "belongs_to": config.RelationshipManyToOne,
	"manytoone": config.RelationshipManyToOne, "belongsto": config.RelationshipManyToOne,
	"one_to_one": config.RelationshipOneToOne, "has_one": config.RelationshipOneToOne,
	"onetoone": config.RelationshipOneToOne, "hasone": config.RelationshipOneToOne,
}

// Relationships that multiply the fact table's rows: joins pgrollup cannot
// declare, and so never follows.
var cubeFanOut = map[string]bool{"one_to_many": true, "has_many": true, "onetomany": true, "hasmany": true}

// Cube measure types: those pgrollup stores, and those it knows but cannot.
var (
	cubeAggregates = map[string]string{"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max", "count_distinct": "count"}
	cubeUnstored   = map[string]string{
		"count_distinct_approx": "an approximate distinct count (HyperLogLog sketch) is not a measure pgrollup stores",
		"string":                "a string measure is custom SQL, not an aggregate pgrollup stores",
		"time":                  "a time measure is custom SQL, not an aggregate pgrollup stores",
		"boolean":               "a boolean measure is custom SQL, not an aggregate pgrollup stores",
		"number_agg":            "a number_agg measure is a custom aggregate pgrollup does not store",
		"running_total":         "a running total is not a measure pgrollup stores",
		"rank":                  "a rank is not a measure pgrollup stores",
	}
)

// selectStar is the one form of a cube's sql that names a table as plainly
// as sql_table does.
var selectStar = regexp.MustCompile(`(?is)^\s*select\s+\*\s+from\s+([A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)\s*;?\s*$`)

// Cube translates Cube YAML model files (the cubes key) into pgrollup
// tables and rollups: one rollup per pre-aggregation of type rollup.
// Anything without a pgrollup equivalent is left out and listed in the
// result's Untranslated. Bad input is returned as Errors, together with
// what the rest translates to, for pgrollup import --partial; a
// pre-aggregation that reads bad input is left out.
func Cube(srcs []Source) (*Result, error) {
	res := &Result{}
	var errs Errors
	m := &cubeModel{cubes: map[string]*cube{}}
	for _, src := range srcs {
		f := &file{name: src.Name, res: res, errs: &errs}
		doc := parse(src, &errs)
		if doc == nil {
			continue
		}
		if !f.isKind(doc, yaml.MappingNode, "model file") {
			continue
		}
		for _, p := range pairs(doc) {
			switch p.key {
			case "cubes":
				if f.isKind(p.v, yaml.SequenceNode, "cubes") {
					for _, n := range items(p.v) {
						m.addCube(f, n)
					}
				}
			case "views":
				f.notef(p.k, "views are not translated: pgrollup matches SQL on the tables, which cubes describe")
			default:
				f.errorf(p.k, "unknown key %q in a Cube model file (want cubes or views)", p.key)
			}
		}
	}
	m.checkJoins()
	ns := names{}
	for _, c := range m.order {
		m.translate(c, ns)
	}
	return finish(res, errs)
}

// addCube reads one cube's definition.
func (m *cubeModel) addCube(f *file, n *yaml.Node) {
	if !f.isKind(n, yaml.MappingNode, "cube") {
		return
	}
	c := &cube{f: f, node: n, name: scalar(get(n, "name")), members: map[string]*member{}}
	if c.name == "" {
		f.errorf(n, "cube without a name")
		return
	}
	if prev, ok := m.cubes[c.name]; ok {
		f.errorf(n, "cube %s is defined twice (first at %s:%d)", c.name, prev.f.name, prev.node.Line)
		return
	}
	m.cubes[c.name] = c
	m.order = append(m.order, c)
	table, sql := get(n, "sql_table"), get(n, "sql")
	switch {
	case scalar(table) != "":
		c.table = scalar(table)
		if !plainColumn.MatchString(c.table) {
			c.noTable = skip("sql_table %q is not a plain table name", c.table)
		}
	case scalar(sql) != "":
		if mm := selectStar.FindStringSubmatch(scalar(sql)); mm != nil {
			c.table = mm[1]
		} else {
			c.noTable = skip("cube %s reads custom SQL, not a table; pgrollup rollups read one table and its declared joins", c.name)
		}
	default:
		c.noTable = skip("cube %s has neither sql_table nor sql", c.name)
	}
	c.short = c.table[strings.LastIndex(c.table, ".")+1:]
	if get(n, "extends") != nil && c.noTable == nil {
		c.noTable = skip("cube %s extends another cube, which the importer does not follow", c.name)
	}
	for _, kind := range []string{"measure", "dimension", "segment"} {
		list := get(n, kind+"s")
		if !f.isKind(list, yaml.SequenceNode, c.name+"."+kind+"s") {
			continue
		}
		for _, mn := range items(list) {
			c.addMember(kind, mn)
		}
	}
	if js := get(n, "joins"); f.isKind(js, yaml.SequenceNode, c.name+".joins") {
		for _, jn := range items(js) {
			j := &cubeJoin{node: jn, target: scalar(get(jn, "name")), sql: scalar(get(jn, "sql")), relationship: scalar(get(jn, "relationship"))}
			if j.target == "" || j.sql == "" {
				f.errorf(jn, "join of cube %s needs a name and sql", c.name)
				continue
			}
			c.joins = append(c.joins, j)
		}
	}
	c.preAggs = get(n, "pre_aggregations")
	f.isKind(c.preAggs, yaml.SequenceNode, c.name+".pre_aggregations")
}

// addMember reads one measure, dimension or segment.
func (c *cube) addMember(kind string, n *yaml.Node) {
	f := c.f
	if !f.isKind(n, yaml.MappingNode, c.name+" "+kind) {
		return
	}
	mb := &member{kind: kind, node: n, name: scalar(get(n, "name")), typ: strings.ToLower(scalar(get(n, "type"))), sql: scalar(get(n, "sql"))}
	if mb.name == "" {
		f.errorf(n, "%s of cube %s without a name", kind, c.name)
		return
	}
	if prev, ok := c.members[mb.name]; ok {
		f.errorf(n, "cube %s defines %s twice (first at line %d)", c.name, mb.name, prev.node.Line)
		return
	}
	c.members[mb.name] = mb
	switch kind {
	case "measure":
		if mb.typ == "" {
			mb.errorf(f, n, "measure %s.%s has no type", c.name, mb.name)
		} else if _, ok := cubeAggregates[mb.typ]; !ok && cubeUnstored[mb.typ] == "" && mb.typ != "number" {
			mb.errorf(f, get(n, "type"), "measure %s.%s: unknown measure type %q", c.name, mb.name, mb.typ)
		}
		if mb.sql == "" && mb.typ != "count" && mb.typ != "" {
			if _, ok := cubeAggregates[mb.typ]; ok || mb.typ == "number" {
				mb.errorf(f, n, "measure %s.%s of type %s needs sql", c.name, mb.name, mb.typ)
			}
		}
		if get(n, "rolling_window") != nil {
			mb.why = "a rolling_window measure is computed over a window of time at query time, not a measure pgrollup stores"
		}
		if get(n, "multi_stage") != nil {
			mb.why = "a multi-stage measure is not a measure pgrollup stores"
		}
		for _, fl := range items(get(n, "filters")) {
			if s := scalar(get(fl, "sql")); s != "" {
				mb.filters = append(mb.filters, s)
			} else {
				mb.errorf(f, fl, "filter of measure %s.%s without sql", c.name, mb.name)
			}
		}
	case "dimension":
		switch {
		case get(n, "sub_query") != nil && scalar(get(n, "sub_query")) == "true":
			mb.why = "a sub_query dimension is a measure of another cube, not a column"
		case mb.sql == "" && get(n, "case") != nil:
			mb.why = "a case dimension is an expression, and pgrollup dimensions are plain columns"
		case mb.sql == "":
			mb.errorf(f, n, "dimension %s.%s needs sql", c.name, mb.name)
		}
	case "segment":
		if mb.sql == "" {
			mb.errorf(f, n, "segment %s.%s needs sql", c.name, mb.name)
		}
	}
}

// errorf reports bad input in the member's definition and marks it broken,
// so that what uses it is left out without a second report.
func (mb *member) errorf(f *file, n *yaml.Node, format string, args ...any) {
	f.errorf(n, format, args...)
	mb.broken = true
}

// checkJoins checks that every join names a cube and a known relationship,
// and that the joins pgrollup would follow have no cycle.
func (m *cubeModel) checkJoins() {
	for _, c := range m.order {
		for _, j := range c.joins {
			if m.cubes[j.target] == nil {
				c.f.errorf(j.node, "cube %s joins %s, which no file defines", c.name, j.target)
			}
			rel := strings.ToLower(j.relationship)
			if cubeRelationships[rel] == "" && !cubeFanOut[rel] {
				c.f.errorf(j.node, "join %s.%s: unknown relationship %q", c.name, j.target, j.relationship)
			}
		}
	}
	// Depth-first search over the followed joins: a join back to a cube on
	// the current path closes a cycle.
	state := map[*cube]int{} // 0 unseen, 1 on the path, 2 done
	var path []string
	var visit func(c *cube) bool
	visit = func(c *cube) bool {
		state[c] = 1
		path = append(path, c.name)
		for _, j := range c.joins {
			if cubeRelationships[strings.ToLower(j.relationship)] == "" {
				continue
			}
			t := m.cubes[j.target]
			if t == nil {
				continue
			}
			switch state[t] {
			case 1:
				c.f.errorf(j.node, "join cycle: %s → %s", strings.Join(path, " → "), t.name)
				return false
			case 0:
				if !visit(t) {
					return false
				}
			}
		}
		path = path[:len(path)-1]
		state[c] = 2
		return true
	}
	for _, c := range m.order {
		if state[c] == 0 && !visit(c) {
			return
		}
	}
}

// cubeRef is a reference in Cube's SQL: {CUBE}, {cube}, {member},
// {cube.member}, optionally written ${...} as in JavaScript models, with the
// dot that may follow a cube.
var cubeRef = regexp.MustCompile(`\$?\{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}(\.)?`)

// contextVars are Cube's template variables that depend on the query or the
// user: SQL that uses them has no meaning outside Cube.
var contextVars = []string{"FILTER_PARAMS", "FILTER_GROUP", "SECURITY_CONTEXT", "COMPILE_CONTEXT", "SQL_UTILS", "securityContext"}

// renderer writes a cube's SQL in terms of tables, for one rollup over
// fact, and records the cubes it reads.
type renderer struct {
	m    *cubeModel
	fact *cube
	// qualifyFact writes the fact table's columns as table.column (join
	// conditions, refresh keys); otherwise bare, as rollup columns are.
	qualifyFact bool
	// relations writes a lone {cube} as its table (refresh keys, build
	// ranges): the SQL reads the table itself.
	relations bool
	used      map[*cube]bool
	depth     int
}

// prefix is how a column of c is written.
func (rd *renderer) prefix(c *cube) string {
	if c == rd.fact && !rd.qualifyFact {
		return ""
	}
	return c.short + "."
}

// use records that the SQL reads c.
func (rd *renderer) use(c *cube) error {
	if c.noTable != nil {
		return c.noTable
	}
	rd.used[c] = true
	return nil
}

// sql writes s, SQL of cube c, with its references replaced.
func (rd *renderer) sql(c *cube, s string) (string, error) {
	for _, v := range contextVars {
		if strings.Contains(s, v) {
			return "", skip("the SQL uses Cube's %s, which depends on the query and has no pgrollup equivalent", v)
		}
	}
	if rd.depth > 20 {
		return "", bad("references nest too deep; a dimension refers to itself")
	}
	rd.depth++
	defer func() { rd.depth-- }()
	if err := rd.use(c); err != nil {
		return "", err
	}
	var out strings.Builder
	last := 0
	for _, mm := range cubeRef.FindAllStringSubmatchIndex(s, -1) {
		out.WriteString(s[last:mm[0]])
		last = mm[1]
		first, second, dot := refParts(s, mm)
		owner := rd.m.cubes[first]
		if first == "CUBE" {
			owner = c
		}
		if owner == nil || second != "" {
			// {member} of c, or {cube.member}.
			name := first
			if owner == nil {
				owner = c
			} else {
				name = second
			}
			text, err := rd.dimension(owner, name)
			if err != nil {
				return "", err
			}
			out.WriteString(text)
			if dot {
				out.WriteString(".")
			}
			continue
		}
		if err := rd.use(owner); err != nil {
			return "", err
		}
		switch {
		case dot:
			out.WriteString(rd.prefix(owner))
		case rd.relations:
			out.WriteString(owner.table)
		default:
			return "", bad("{%s} names a cube where a column is expected", first)
		}
	}
	out.WriteString(s[last:])
	return out.String(), nil
}

// dimension writes the SQL of member name of c, which must be a dimension.
func (rd *renderer) dimension(c *cube, name string) (string, error) {
	mb := c.members[name]
	if mb == nil {
		return "", bad("cube %s has no member %s", c.name, name)
	}
	if mb.kind != "dimension" {
		return "", skip("the SQL refers to %s %s.%s where a column is expected", mb.kind, c.name, name)
	}
	if mb.broken {
		return "", errReported
	}
	if mb.why != "" {
		return "", skip("dimension %s.%s: %s", c.name, name, mb.why)
	}
	if err := rd.use(c); err != nil {
		return "", err
	}
	if ident.MatchString(mb.sql) {
		return rd.prefix(c) + mb.sql, nil
	}
	return rd.sql(c, mb.sql)
}

// lookup resolves a pre-aggregation's reference: name, CUBE.name or
// cube.name.
func (m *cubeModel) lookup(owner *cube, ref string) (*cube, *member, error) {
	c, name := owner, ref
	if cn, mn, ok := strings.Cut(ref, "."); ok {
		name = mn
		if cn != "CUBE" {
			if c = m.cubes[cn]; c == nil {
				return nil, nil, bad("%s: no cube %s", ref, cn)
			}
		}
	}
	mb := c.members[name]
	if mb == nil {
		return nil, nil, bad("%s: cube %s has no member %s", ref, c.name, name)
	}
	return c, mb, nil
}

// measure writes the stored measures member mb of the fact cube needs: one
// aggregate, or for a number measure the aggregates it is computed from.
func (rd *renderer) measure(mb *member) (ms []string, comments []string, err error) {
	c := rd.fact
	if mb.broken {
		return nil, nil, errReported
	}
	if mb.why != "" {
		return nil, nil, skip("%s", mb.why)
	}
	if mb.typ == "number" {
		return rd.numberMeasure(mb)
	}
	if why := cubeUnstored[mb.typ]; why != "" {
		return nil, nil, skip("%s", why)
	}
	arg := ""
	if mb.sql != "" {
		if ident.MatchString(mb.sql) {
			if err := rd.use(c); err != nil {
				return nil, nil, err
			}
			arg = mb.sql
		} else if arg, err = rd.sql(c, mb.sql); err != nil {
			return nil, nil, err
		}
	}
	var filters []string
	for _, fs := range mb.filters {
		s, err := rd.sql(c, fs)
		if err != nil {
			return nil, nil, err
		}
		filters = append(filters, s)
	}
	if len(filters) > 0 {
		// Cube writes a filtered measure as the aggregate of a CASE, and so
		// must the stored measure be for its statements to match.
		if arg == "" {
			arg = "1"
		}
		arg = "CASE WHEN " + strings.Join(filters, " AND ") + " THEN " + arg + " END"
	}
	return []string{aggregate(cubeAggregates[mb.typ], arg, mb.typ == "count_distinct")}, nil, nil
}

// numberMeasure translates a measure of type number that is arithmetic over
// other measures: the rollup stores those, and a query computes the
// arithmetic from them, as Cube does.
func (rd *renderer) numberMeasure(mb *member) ([]string, []string, error) {
	c := rd.fact
	rest := cubeRef.ReplaceAllString(mb.sql, " 1 ")
	if !arithmetic(rest) {
		return nil, nil, skip("type number with sql %q is custom SQL, not arithmetic over other measures; pgrollup stores aggregates only", mb.sql)
	}
	if rd.depth > 20 {
		return nil, nil, bad("measures refer to each other in a cycle")
	}
	rd.depth++
	defer func() { rd.depth-- }()
	var ms, parts []string
	refs := cubeRef.FindAllStringSubmatch(mb.sql, -1)
	if len(refs) == 0 {
		return nil, nil, skip("type number with sql %q refers to no measure", mb.sql)
	}
	for _, r := range refs {
		ref := r[1]
		if r[2] != "" {
			ref += "." + r[2]
		}
		oc, om, err := rd.m.lookup(c, ref)
		if err != nil {
			return nil, nil, err
		}
		if om.kind != "measure" || oc != c {
			return nil, nil, skip("type number refers to %s, not a measure of cube %s", ref, c.name)
		}
		sub, _, err := rd.measure(om)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ref, err)
		}
		ms = append(ms, sub...)
		parts = append(parts, ref+" = "+strings.Join(sub, ", "))
	}
	return ms, []string{fmt.Sprintf("measure %s (number, %s) is computed at query time from %s", mb.name, mb.sql, strings.Join(parts, "; "))}, nil
}

// translate turns c's pre-aggregations into rollups, and the joins they use
// into c's entry of tables.
func (m *cubeModel) translate(c *cube, ns names) {
	var table *Table
	for _, n := range items(c.preAggs) {
		r, joins, ok := m.preAggregation(c, n, ns)
		if !ok {
			continue
		}
		if len(joins) > 0 {
			if table == nil {
				table = &Table{Name: c.table, Origin: fmt.Sprintf("%s:%d: cube %s", c.f.name, c.node.Line, c.name), at: Problem{File: c.f.name, Line: c.node.Line, Msg: "cube " + c.name}}
			}
			for _, j := range joins {
				if !containsJoin(table.Joins, j) {
					table.Joins = append(table.Joins, j)
				}
			}
		}
		c.f.res.Rollups = append(c.f.res.Rollups, r)
	}
	if table != nil {
		c.f.res.Tables = append(c.f.res.Tables, *table)
	}
}

func containsJoin(js []config.Join, j config.Join) bool {
	for _, x := range js {
		if x.Table == j.Table {
			return true
		}
	}
	return false
}

// Pre-aggregation keys the importer reads, and those that change nothing in
// what a rollup answers.
var (
	cubePreAggKeys = map[string]bool{
		"name": true, "type": true, "measures": true, "dimensions": true, "segments": true,
		"time_dimension": true, "time_dimensions": true, "granularity": true, "partition_granularity": true,
		"refresh_key": true, "build_range_start": true, "build_range_end": true,
	}
	cubePreAggIgnored = map[string]string{
		"indexes":                           "indexes are ignored: pgrollup's rollup files are read whole by DuckDB",
		"external":                          "external is ignored: every pgrollup rollup is stored outside the warehouse",
		"scheduled_refresh":                 "scheduled_refresh is ignored: the refresh key says when pgrollup builds",
		"allow_non_strict_date_range_match": "allow_non_strict_date_range_match is ignored: pgrollup answers any range of whole buckets",
		"sql_alias":                         "sql_alias is ignored",
		"build_range":                       "build_range is ignored",
		"refresh_range_start":               "refresh_range_start is ignored: use build_range_start",
		"refresh_range_end":                 "refresh_range_end is ignored: use build_range_end",
		"unique_key_columns":                "unique_key_columns is ignored",
		"read_only":                         "read_only is ignored",
		"streaming_offset":                  "streaming_offset is ignored",
	}
)

// preAggregation translates one pre-aggregation of c into a rollup and the
// joins it needs; ok is false when it was left out (and reported).
func (m *cubeModel) preAggregation(c *cube, n *yaml.Node, ns names) (Rollup, []config.Join, bool) {
	f := c.f
	name := scalar(get(n, "name"))
	if name == "" {
		f.errorf(n, "pre-aggregation of cube %s without a name", c.name)
		return Rollup{}, nil, false
	}
	what := fmt.Sprintf("cube %s, pre-aggregation %s", c.name, name)
	switch typ := strings.ToLower(scalar(get(n, "type"))); typ {
	case "", "rollup":
	case "original_sql":
		f.skipf(n, "%s: not translated: type original_sql stores the cube's SQL unaggregated; pgrollup stores rollups only", what)
		return Rollup{}, nil, false
	case "rollup_join":
		f.skipf(n, "%s: not translated: type rollup_join joins pre-aggregations of different data sources; declare the join in tables instead", what)
		return Rollup{}, nil, false
	case "rollup_lambda":
		f.skipf(n, "%s: not translated: type rollup_lambda unions a rollup with streaming or source data; pgrollup serves from one rollup or passes through", what)
		return Rollup{}, nil, false
	default:
		f.errorf(get(n, "type"), "%s: unknown pre-aggregation type %q", what, typ)
		return Rollup{}, nil, false
	}
	if c.noTable != nil {
		f.report(n, what, c.noTable)
		return Rollup{}, nil, false
	}
	for _, p := range pairs(n) {
		if note := cubePreAggIgnored[p.key]; note != "" {
			f.notef(p.k, "%s: %s", what, note)
		} else if !cubePreAggKeys[p.key] {
			f.notef(p.k, "%s: %s is not read", what, p.key)
		}
	}
	if get(n, "union_with_source_data") != nil && scalar(get(n, "union_with_source_data")) == "true" {
		f.skipf(n, "%s: not translated: union_with_source_data is a lambda pre-aggregation over streaming data", what)
		return Rollup{}, nil, false
	}
	r := Rollup{Rollup: config.Rollup{Name: ns.name(c.name, name), Table: c.table},
		Origin: fmt.Sprintf("%s:%d: %s", f.name, n.Line, what), at: Problem{File: f.name, Line: n.Line, Msg: what}}
	rd := &renderer{m: m, fact: c, used: map[*cube]bool{}}
	ok := true
	// A part without equivalent leaves the whole rollup out, except a
	// measure: the rollup still answers the others.
	fail := func(at *yaml.Node, what string, err error) {
		f.report(at, what, err)
		ok = false
	}
	for _, ref := range f.stringList(get(n, "measures"), what+": measures") {
		mc, mb, err := m.lookup(c, scalar(ref))
		switch {
		case err != nil:
			fail(ref, what, err)
		case mb.kind != "measure":
			fail(ref, what, bad("%s is a %s, not a measure", scalar(ref), mb.kind))
		case mc != c:
			f.skipf(ref, "%s: measure %s: not translated: it is a measure of joined cube %s; a pgrollup rollup stores measures of its fact table", what, scalar(ref), mc.name)
		default:
			ms, comments, err := rd.measure(mb)
			if err != nil {
				var b *badInput
				if errors.As(err, &b) {
					fail(ref, what+": measure "+scalar(ref), err)
				} else {
					f.report(ref, what+": measure "+scalar(ref), err)
				}
				continue
			}
			addMeasures(&r.Rollup, ms...)
			r.Comments = append(r.Comments, comments...)
		}
	}
	for _, ref := range f.stringList(get(n, "dimensions"), what+": dimensions") {
		dc, mb, err := m.lookup(c, scalar(ref))
		if err == nil {
			var col string
			if col, err = rd.dimension(dc, mb.name); err == nil && !plainColumn.MatchString(col) {
				err = skip("dimension %s is the expression %s; pgrollup dimensions are plain columns", scalar(ref), col)
			}
			if err == nil && !contains(r.Dimensions, col) {
				r.Dimensions = append(r.Dimensions, col)
			}
		}
		if err != nil {
			fail(ref, what+": dimension "+scalar(ref), err)
		}
	}
	for _, ref := range f.stringList(get(n, "segments"), what+": segments") {
		sc, mb, err := m.lookup(c, scalar(ref))
		if err == nil && mb.kind != "segment" {
			err = bad("%s is a %s, not a segment", scalar(ref), mb.kind)
		} else if err == nil && mb.broken {
			err = errReported
		}
		var s string
		if err == nil {
			s, err = rd.sql(sc, mb.sql)
		}
		if err != nil {
			fail(ref, what+": segment "+scalar(ref), err)
			continue
		}
		r.Filters = append(r.Filters, s)
	}
	m.timeDimension(rd, &r, n, what, fail)
	if pg := get(n, "partition_granularity"); pg != nil {
		g, err := granularity(scalar(pg))
		if err != nil {
			fail(pg, what+": partition_granularity", err)
		}
		r.PartitionGranularity = g
	}
	m.refreshKey(rd, &r, n, what, fail)
	m.buildRange(rd, &r, n, what, fail)
	if ok && len(r.Measures) == 0 && len(r.Dimensions) == 0 && r.TimeDimension == "" {
		f.skipf(n, "%s: not translated: nothing of it is left to store", what)
		ok = false
	}
	var joins []config.Join
	if ok {
		var err error
		var at *yaml.Node
		if joins, at, err = m.joinsFor(c, rd.used); err != nil {
			if at == nil {
				at = n
			}
			fail(at, what, err)
		}
	}
	return r, joins, ok
}

// timeDimension reads time_dimension (or a time_dimensions list of one)
// and granularity.
func (m *cubeModel) timeDimension(rd *renderer, r *Rollup, n *yaml.Node, what string, fail func(*yaml.Node, string, error)) {
	c := rd.fact
	td, gn := get(n, "time_dimension"), get(n, "granularity")
	if tds := items(get(n, "time_dimensions")); len(tds) > 0 {
		if len(tds) > 1 || td != nil {
			fail(get(n, "time_dimensions"), what, skip("a pgrollup rollup has one time dimension"))
			return
		}
		td, gn = get(tds[0], "dimension"), get(tds[0], "granularity")
	}
	if td == nil {
		if gn != nil {
			fail(gn, what, bad("granularity without time_dimension"))
		}
		return
	}
	if gn == nil {
		fail(td, what, bad("time_dimension without granularity"))
		return
	}
	tc, mb, err := m.lookup(c, scalar(td))
	if err == nil && tc != c {
		err = skip("time dimension %s is a column of joined cube %s; a pgrollup rollup's time dimension is a column of its fact table", scalar(td), tc.name)
	}
	var col string
	if err == nil {
		if col, err = rd.dimension(tc, mb.name); err == nil && !ident.MatchString(col) {
			err = skip("time dimension %s is the expression %s, not a column", scalar(td), col)
		}
	}
	if err != nil {
		fail(td, what+": time_dimension", err)
		return
	}
	g, err := granularity(scalar(gn))
	if err != nil {
		fail(gn, what+": granularity", err)
		return
	}
	r.TimeDimension, r.Granularity = col, g
}

// cronFields is a cron expression as Cube's refresh_key.every accepts one.
var cronFields = regexp.MustCompile(`^(\S+\s+){4,5}\S+$`)

// refreshKey reads refresh_key; without one, Cube refreshes a
// pre-aggregation every hour, and so does the rollup.
func (m *cubeModel) refreshKey(rd *renderer, r *Rollup, n *yaml.Node, what string, fail func(*yaml.Node, string, error)) {
	rk := get(n, "refresh_key")
	if rk == nil {
		r.Refresh.Every = config.Duration(time.Hour)
		r.Comments = append(r.Comments, "refresh: Cube's default refresh_key, every 1 hour")
		return
	}
	if every := get(rk, "every"); every != nil {
		s := scalar(every)
		if d, err := config.ParseDuration(s); err == nil && d > 0 {
			r.Refresh.Every = d
		} else if cronFields.MatchString(s) {
			r.Refresh.Cron = s
		} else {
			fail(every, what+": refresh_key.every", skip("%q is neither an interval of fixed length (seconds to weeks) nor a cron expression", s))
		}
	}
	if tz := scalar(get(rk, "timezone")); tz != "" {
		r.Refresh.Timezone = tz
	}
	if s := scalar(get(rk, "sql")); s != "" {
		rel := &renderer{m: m, fact: rd.fact, qualifyFact: true, relations: true, used: map[*cube]bool{}}
		sql, err := rel.sql(rd.fact, s)
		if err != nil {
			fail(get(rk, "sql"), what+": refresh_key.sql", err)
		}
		r.Refresh.SQL = sql
	}
	if inc := get(rk, "incremental"); inc != nil {
		r.Refresh.Incremental = scalar(inc) == "true"
	}
	if uw := get(rk, "update_window"); uw != nil {
		d, err := config.ParseDuration(scalar(uw))
		if err != nil {
			fail(uw, what+": refresh_key.update_window", skip("%v", err))
		}
		r.Refresh.UpdateWindow = d
	}
}

// buildRange reads build_range_start and build_range_end; when only one is
// given, the other is the time dimension's first or last value, the range
// Cube builds by default.
func (m *cubeModel) buildRange(rd *renderer, r *Rollup, n *yaml.Node, what string, fail func(*yaml.Node, string, error)) {
	start, end := get(n, "build_range_start"), get(n, "build_range_end")
	if start == nil && end == nil {
		return
	}
	if r.TimeDimension == "" {
		fail(n, what, bad("build_range_start and build_range_end need a time_dimension"))
		return
	}
	rel := &renderer{m: m, fact: rd.fact, qualifyFact: true, relations: true, used: map[*cube]bool{}}
	read := func(k *yaml.Node, key, dflt string) string {
		if k == nil {
			return fmt.Sprintf("SELECT %s(%s) FROM %s", dflt, r.TimeDimension, rd.fact.table)
		}
		sql, err := rel.sql(rd.fact, scalar(get(k, "sql")))
		if err == nil && sql == "" {
			err = bad("%s needs sql", key)
		}
		if err != nil {
			fail(k, what+": "+key, err)
		}
		return sql
	}
	r.BuildRange = &config.BuildRange{Start: read(start, "build_range_start", "min"), End: read(end, "build_range_end", "max")}
}

// joinsFor is the joins from fact to every cube in used, in an order in
// which each condition reads only the fact table and earlier joins: the
// shortest path of followed joins to each, breadth first.
func (m *cubeModel) joinsFor(fact *cube, used map[*cube]bool) ([]config.Join, *yaml.Node, error) {
	type step struct {
		from *cube
		j    *cubeJoin
	}
	via := map[*cube]step{fact: {}}
	order := []*cube{fact}
	for i := 0; i < len(order); i++ {
		c := order[i]
		for _, j := range c.joins {
			t := m.cubes[j.target]
			if _, seen := via[t]; seen || t == nil || cubeRelationships[strings.ToLower(j.relationship)] == "" {
				continue
			}
			via[t] = step{c, j}
			order = append(order, t)
		}
	}
	need := map[*cube]bool{}
	for u := range used {
		if _, ok := via[u]; !ok {
			return nil, nil, skip("it reads cube %s, which %s does not reach through many_to_one or one_to_one joins", u.name, fact.name)
		}
		for c := u; c != fact; c = via[c].from {
			need[c] = true
		}
	}
	var joins []config.Join
	tables := map[string]string{strings.ToLower(fact.short): fact.name}
	for _, c := range order {
		if !need[c] {
			continue
		}
		st := via[c]
		if other, dup := tables[strings.ToLower(c.short)]; dup {
			return nil, st.j.node, skip("cubes %s and %s are both tables named %s; pgrollup joins each table once, without aliases", other, c.name, c.short)
		}
		tables[strings.ToLower(c.short)] = c.name
		rd := &renderer{m: m, fact: fact, qualifyFact: true, used: map[*cube]bool{}}
		on, err := rd.sql(st.from, st.j.sql)
		if err != nil {
			return nil, st.j.node, fmt.Errorf("join %s.%s: %w", st.from.name, c.name, err)
		}
		joins = append(joins, config.Join{Table: c.table, On: on, Type: config.JoinLeft, Relationship: cubeRelationships[strings.ToLower(st.j.relationship)]})
	}
	return joins, nil, nil
}
