package rewrite

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// compiledRollup is a rollup definition resolved against the catalog's tables:
// what its dimensions, measures and filters are, and where each lives in the
// Parquet files.
type compiledRollup struct {
	st  *RollupState
	err *Reason // the definition cannot be used; the rollup never matches

	fact     *rangeEntry
	declared []*declaredJoin // every join declared for the fact table
	built    []*declaredJoin // the joins the rollup is built with: those its definition references
	dims     []dimDef
	timeCol  *colBinding
	timeType Type
	grain    config.Granularity
	measures []measureDef
	parts    map[string]storedPart // "sum(key)", "count(*)", ... -> stored column
	filters  []*expr
	fkeys    []string
	relative []bool // per filter: it reads the clock (a rolling window)
}

type declaredJoin struct {
	join  config.Join
	entry *rangeEntry
	on    *expr
	onKey string
	typ   string
}

type dimDef struct {
	col  *colBinding
	key  string
	phys string // Parquet column: layout.Dimension
	// asText: the column's type has no DuckDB equivalent, so the builder
	// stores its text (numeric without a scale, time, interval, ...; see
	// layout.StorageType). Text
	// neither orders nor groups like the value (1.0 and 1.00), so such a
	// dimension is never used.
	asText bool
}

type measureDef struct {
	fn     string // sum, count, min, max, avg, count_distinct
	arg    *expr  // nil for count(*)
	argKey string
	filter *expr
	text   string
}

// storedPart is one additive (or min/max) part stored in the rollup.
type storedPart struct {
	phys    string // Parquet column: layout.Measure
	fn      string // the part: layout.PartSum, PartCount, PartMin, PartMax or PartCountDistinct
	argType Type   // type of the aggregated expression, as Postgres describes it
	// scale and digits: for a numeric argument, the display scale of
	// every value (-1: it varies) and a bound on its digits (-1: none).
	scale, digits int
	// argErr says why the argument could not be typed; a part that needs
	// its type (all but count) then answers nothing.
	argErr  *typeError
	measure int
	text    string // the measure as configured, for reasons
}

// definitionRef is a column a definition reads.
type definitionRef struct{ table, column string }

// parseDefExpr parses one SQL expression from a config string.
func parseDefExpr(sql string) (*expr, error) {
	tree, err := pg_query.Parse("SELECT " + sql)
	if err != nil {
		return nil, fmt.Errorf("%q does not parse: %w", sql, err)
	}
	if len(tree.Stmts) != 1 {
		return nil, fmt.Errorf("%q is not one expression", sql)
	}
	s := tree.Stmts[0].Stmt.GetSelectStmt()
	if s == nil || len(s.TargetList) != 1 || len(s.FromClause) != 0 || s.WhereClause != nil || len(s.GroupClause) != 0 || len(s.SortClause) != 0 || s.LimitCount != nil || s.Op != pg_query.SetOperation_SETOP_NONE {
		return nil, fmt.Errorf("%q is not one expression", sql)
	}
	rt := s.TargetList[0].GetResTarget()
	if rt == nil || rt.Name != "" {
		return nil, fmt.Errorf("%q is not one expression", sql)
	}
	e, err := convert(rt.Val)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", sql, err)
	}
	return e, nil
}

// parseDimension splits "status" or "customers.country" into qualifier and column.
func parseDimension(d string) *expr {
	parts := strings.Split(d, ".")
	return &expr{kind: kCol, name: parts[len(parts)-1], qual: parts[:len(parts)-1]}
}

// definitionColumns lists the columns a rollup definition reads, attributing
// unqualified names to the fact table. NewOfflineCatalog uses it to build the offline
// column lists.
func definitionColumns(r config.Rollup, joins []config.Join) ([]definitionRef, error) {
	fs, fn := splitTable(r.Table)
	owner := func(qual []string) (string, error) {
		switch len(qual) {
		case 0:
			return fs + "." + fn, nil
		case 1, 2:
			q := strings.Join(qual, ".")
			if q == fn || q == fs+"."+fn {
				return fs + "." + fn, nil
			}
			for _, j := range joins {
				js, jn := splitTable(j.Table)
				if q == jn || q == js+"."+jn {
					return js + "." + jn, nil
				}
			}
			return "", fmt.Errorf("%s is neither %s nor a declared join", q, r.Table)
		}
		return "", fmt.Errorf("bad qualifier %s", strings.Join(qual, "."))
	}
	var out []definitionRef
	add := func(e *expr) error {
		var err error
		walk(e, func(x *expr) bool {
			if x.kind == kCol && err == nil {
				var t string
				t, err = owner(x.qual)
				out = append(out, definitionRef{t, x.name})
			}
			return err == nil
		})
		return err
	}
	for _, d := range r.Dimensions {
		if err := add(parseDimension(d)); err != nil {
			return nil, err
		}
	}
	if r.TimeDimension != "" {
		if err := add(parseDimension(r.TimeDimension)); err != nil {
			return nil, err
		}
	}
	for _, m := range r.Measures {
		e, err := parseDefExpr(m)
		if err != nil {
			return nil, err
		}
		if err := add(e); err != nil {
			return nil, err
		}
	}
	for _, f := range r.Filters {
		e, err := parseDefExpr(f)
		if err != nil {
			return nil, err
		}
		if err := add(e); err != nil {
			return nil, err
		}
	}
	for _, j := range joins {
		e, err := parseDefExpr(j.On)
		if err != nil {
			return nil, err
		}
		if err := add(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func compileRollup(st *RollupState, cat *Catalog) *compiledRollup {
	cr := &compiledRollup{st: st, parts: map[string]storedPart{}}
	if err := cr.compile(cat); err != nil {
		cr.err = reason(ReasonNotBuilt, "rollup %s has a definition the rewriter cannot use: %v", st.Def.Name, err)
	}
	return cr
}

func (cr *compiledRollup) compile(cat *Catalog) error {
	def := cr.st.Def
	fs, fn := splitTable(def.Table)
	cr.fact = (&rangeEntry{name: fn, alias: fn, table: cat.table(fs + "." + fn)}).setSchema(fs)
	if cr.fact.table == nil {
		return fmt.Errorf("table %s is not in the catalog", def.Table)
	}
	sc := &scope{entries: []*rangeEntry{cr.fact}, factOnly: true}
	for _, j := range cr.st.Joins {
		js, jn := splitTable(j.Table)
		ent := (&rangeEntry{name: jn, alias: jn, table: cat.table(js + "." + jn)}).setSchema(js)
		if ent.table == nil {
			return fmt.Errorf("joined table %s is not in the catalog", j.Table)
		}
		typ := j.Type
		if typ == "" {
			typ = config.JoinLeft
		}
		if typ != config.JoinLeft && typ != config.JoinInner {
			return fmt.Errorf("join to %s has unknown type %q", j.Table, j.Type)
		}
		if j.Relationship != "" && j.Relationship != "many_to_one" && j.Relationship != "one_to_one" {
			return fmt.Errorf("join to %s has relationship %q; only many_to_one and one_to_one keep fact rows", j.Table, j.Relationship)
		}
		cr.declared = append(cr.declared, &declaredJoin{join: j, entry: ent, typ: typ})
		sc.entries = append(sc.entries, ent)
	}
	for _, dj := range cr.declared {
		on, err := parseDefExpr(dj.join.On)
		if err != nil {
			return fmt.Errorf("join to %s: %w", dj.join.Table, err)
		}
		if r := sc.bindAll(on); r != nil {
			return fmt.Errorf("join to %s: %s", dj.join.Table, r.Message)
		}
		dj.on, dj.onKey = on, joinKey(on)
	}
	used := map[*rangeEntry]bool{}
	bind := func(e *expr) error {
		if r := sc.bindAll(e); r != nil {
			return fmt.Errorf("%s", r.Message)
		}
		walk(e, func(x *expr) bool {
			if x.kind == kCol {
				used[x.col.entry] = true
			}
			return true
		})
		return nil
	}
	for i, d := range def.Dimensions {
		e := parseDimension(d)
		if err := bind(e); err != nil {
			return fmt.Errorf("dimension %s: %w", d, err)
		}
		dt := e.col.column.Type
		_, exact := duckType(dt)
		cr.dims = append(cr.dims, dimDef{col: e.col, key: key(e), phys: layout.Dimension(i), asText: dt.Known() && !exact})
	}
	if def.TimeDimension != "" {
		e := parseDimension(def.TimeDimension)
		if err := bind(e); err != nil {
			return fmt.Errorf("time dimension %s: %w", def.TimeDimension, err)
		}
		cr.timeCol, cr.timeType, cr.grain = e.col, e.col.column.Type, def.Granularity
		if cr.grain == "" {
			return fmt.Errorf("time dimension %s has no granularity", def.TimeDimension)
		}
		if _, ok := grainRank[cr.grain]; !ok {
			return fmt.Errorf("unknown granularity %q", cr.grain)
		}
		if t := cr.timeType.OID; t != 0 && !isTimeOID(t) {
			return fmt.Errorf("time dimension %s is not a date or timestamp", def.TimeDimension)
		}
	}
	for i, m := range def.Measures {
		e, err := parseDefExpr(m)
		if err != nil {
			return fmt.Errorf("measure: %w", err)
		}
		if err := bind(e); err != nil {
			return fmt.Errorf("measure %s: %w", m, err)
		}
		if err := cr.addMeasure(i, m, e); err != nil {
			return fmt.Errorf("measure %s: %w", m, err)
		}
	}
	for _, f := range def.Filters {
		e, err := parseDefExpr(f)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		if err := bind(e); err != nil {
			return fmt.Errorf("filter %s: %w", f, err)
		}
		for _, c := range conjuncts(e) {
			cr.filters = append(cr.filters, c)
			cr.fkeys = append(cr.fkeys, key(c))
			cr.relative = append(cr.relative, readsClock(c))
		}
	}
	for _, dj := range cr.declared {
		if used[dj.entry] {
			cr.built = append(cr.built, dj)
		}
	}
	return nil
}

func (cr *compiledRollup) addMeasure(i int, text string, e *expr) error {
	if e.kind != kFunc || !aggregateFuncs[e.name] {
		return fmt.Errorf("a measure must be one aggregate call")
	}
	md := measureDef{fn: e.name, filter: e.filter, text: text}
	var info argInfo
	var infoErr *typeError
	var hasAgg bool
	for _, a := range e.args {
		walk(a, func(x *expr) bool {
			if x.kind == kFunc && aggregateFuncs[x.name] {
				hasAgg = true
			}
			return true
		})
	}
	if e.filter != nil {
		walk(e.filter, func(x *expr) bool {
			if x.kind == kFunc && aggregateFuncs[x.name] {
				hasAgg = true
			}
			return true
		})
	}
	if hasAgg {
		return fmt.Errorf("nested aggregates")
	}
	switch {
	case e.star || (e.name == "count" && len(e.args) == 1 && isNonNullConst(e.args[0])):
		if e.name != "count" || e.distinct {
			return fmt.Errorf("only count may take *")
		}
		md.fn = "count"
	case len(e.args) == 1:
		md.arg, md.argKey = e.args[0], key(e.args[0])
		info, infoErr = typeOfArg(e.args[0])
	default:
		return fmt.Errorf("an aggregate of one argument is expected")
	}
	if e.distinct {
		if e.name != "count" {
			return fmt.Errorf("only count(distinct x) is supported")
		}
		md.fn = "count_distinct"
	}
	fk := ""
	if e.filter != nil {
		fk = " filter(" + key(e.filter) + ")"
	}
	parts := layout.Parts(e.name, e.distinct)
	if parts == nil {
		return fmt.Errorf("aggregate %s cannot be stored in a rollup", e.name)
	}
	for _, part := range parts {
		pk := partKey(part, md.argKey) + fk
		if _, ok := cr.parts[pk]; !ok {
			cr.parts[pk] = storedPart{phys: layout.Measure(i, part), fn: part, argType: info.typ, scale: info.scale, digits: info.digits, argErr: infoErr, measure: i, text: text}
		}
	}
	cr.measures = append(cr.measures, md)
	return nil
}

// partKey names a stored part: "sum(public.orders.amount)", "count(*)".
func partKey(fn, argKey string) string {
	if argKey == "" {
		return fn + "(*)"
	}
	return fn + "(" + argKey + ")"
}

// joinKey normalises a join condition: its conjuncts, sorted, each with
// commuted sides ordered, so "a.k = b.k" and "b.k = a.k" compare equal.
func joinKey(on *expr) string {
	cs := conjuncts(on)
	ks := make([]string, len(cs))
	for i, c := range cs {
		ks[i] = key(c)
	}
	sort.Strings(ks)
	return strings.Join(ks, " AND ")
}

// dim returns the dimension bound to column b, if any.
func (cr *compiledRollup) dim(b *colBinding) *dimDef {
	for i := range cr.dims {
		d := &cr.dims[i]
		if d.col.entry.full() == b.entry.full() && d.col.column.Name == b.column.Name {
			return d
		}
	}
	return nil
}

// isTime reports whether b is the rollup's time dimension.
func (cr *compiledRollup) isTime(b *colBinding) bool {
	return cr.timeCol != nil && cr.timeCol.entry.full() == b.entry.full() && cr.timeCol.column.Name == b.column.Name
}
