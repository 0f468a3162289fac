package rewrite

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/config"
)

// boundQuery is the statement bound to the catalog's tables: the same for
// every candidate rollup.
type boundQuery struct {
	core     *selectCore // a private copy whose column references are bound
	wraps    []*wrapLayer
	scope    *scope
	fact     *rangeEntry
	joins    []*queryJoin
	where    []*expr // WHERE conjuncts left after implicit join conditions
	groupBy  []*expr
	gkeys    map[string]bool
	order    []orderRef
	distinct bool
}

type queryJoin struct {
	entry *rangeEntry
	typ   string
	onKey string
}

// orderRef is an ORDER BY item: an output column or an expression.
type orderRef struct {
	target int // index into targets, or -1
	expr   *expr
	desc   bool
	nulls  int
}

// matcher prepares one candidate rollup for a bound query: it translates the
// statement into DuckDB SQL over the rollup, recording what fails and what
// must wait for the execution's values (see slots.go).
type matcher struct {
	q         *boundQuery
	cat       *Catalog
	cr        *compiledRollup
	zones     *zoneCache
	zone      string // the session's zone, canonical
	sz        *zoneInfo
	loc       *time.Location
	buildZone string
	buildLoc  *time.Location
	ptypes    []uint32 // the parameters' types; their values come at execution
	fc        *foldCtx // folds what does not depend on the execution

	slots  []slotFn
	steps  *[]step
	failed bool

	// Time range the statement's constant bounds restrict the time column
	// to: [lo, hi). Bounds from parameters and now() join at execution.
	lo, hi time.Time
}

// paramType returns the type of parameter n ($1 is 1), if it is bound.
func (m *matcher) paramType(n int) (uint32, bool) {
	if n < 1 || n > len(m.ptypes) {
		return 0, false
	}
	return m.ptypes[n-1], true
}

// bind resolves the statement against the catalog; a failure applies to
// every candidate.
func bind(a *Analysis, cat *Catalog, sess *Session) (*boundQuery, *Reason) {
	core := cloneCore(a.core)
	q := &boundQuery{core: core, wraps: a.wraps, scope: &scope{partial: cat.PartialColumns}, distinct: core.distinct}
	path := sess.SearchPath
	if len(path) == 0 {
		path = []string{"public"}
	}
	var rowFilters []*expr
	for i, t := range core.from {
		ent := &rangeEntry{name: t.name, alias: t.alias, aliased: t.alias != t.name || t.view}
		if sess.Tables != nil {
			written := t.name
			if t.schema != "" {
				written = t.schema + "." + t.name
			}
			q, ok := sess.Tables[written]
			if !ok {
				return nil, reason(ReasonContext, "in this session %s is not the table rollups were built from (database, search_path or a temp table)", written)
			}
			ent.table = cat.table(q)
			ent.schema = q[:strings.IndexByte(q, '.')]
			if ent.table == nil {
				return nil, reason(ReasonNoRollup, "no rollup reads %s", q)
			}
			if f, ok := sess.RowFilters[q]; ok {
				if i > 0 && t.joinType != config.JoinInner {
					return nil, reason(ReasonContext, "row-level security on %s, read through an outer join, is not evaluated on rollups", q)
				}
				e, r := rowFilter(f, q, ent.alias)
				if r != nil {
					return nil, r
				}
				rowFilters = append(rowFilters, e)
			}
		} else if t.schema != "" {
			ent.schema = t.schema
			ent.table = cat.table(t.schema + "." + t.name)
		} else {
			for _, s := range path {
				if tb := cat.table(s + "." + t.name); tb != nil {
					ent.schema, ent.table = s, tb
					break
				}
			}
			if ent.schema == "" {
				ent.schema = path[0]
			}
		}
		ent.setSchema(ent.schema)
		if ent.table == nil {
			return nil, reason(ReasonNoRollup, "no rollup reads %s", ent.full())
		}
		for _, o := range q.scope.entries {
			if o.alias == ent.alias {
				return nil, reason(ReasonShape, "table name %q specified more than once", ent.alias)
			}
		}
		q.scope.entries = append(q.scope.entries, ent)
	}
	for _, c := range core.from[0].viewCols {
		if _, r := q.scope.resolveColumn(c); r != nil {
			return nil, r
		}
	}
	if r := bindOn(core.from, q.scope); r != nil {
		return nil, r
	}
	pooled, r := factFirst(cat, core, q.scope)
	if r != nil {
		return nil, r
	}
	q.fact = q.scope.entries[0]
	for i, t := range core.from[1:] {
		qj := &queryJoin{entry: q.scope.entries[i+1], typ: t.joinType}
		if t.on != nil {
			qj.onKey = joinKey(t.on)
		}
		q.joins = append(q.joins, qj)
	}
	for _, t := range core.targets {
		if r := q.scope.bindAll(t.expr); r != nil {
			return nil, r
		}
	}
	if core.where != nil {
		if r := q.scope.bindAll(core.where); r != nil {
			return nil, r
		}
		q.where = conjuncts(core.where)
	}
	q.where = append(q.where, pooled...)
	for _, f := range rowFilters {
		if r := q.scope.bindAll(f); r != nil {
			return nil, reason(ReasonContext, "row-level security: %s", r.Message)
		}
		q.where = append(q.where, conjuncts(f)...)
	}
	// GROUP BY: an ordinal, an input column, else an output column name.
	for _, g := range core.groupBy {
		if n, ok := constInt(g); ok && g.kind == kConst {
			if n < 1 || int(n) > len(core.targets) {
				return nil, reason(ReasonShape, "GROUP BY position %d is not in select list", n)
			}
			q.groupBy = append(q.groupBy, core.targets[n-1].expr)
			continue
		}
		if g.kind == kCol && len(g.qual) == 0 {
			if b, r := q.scope.resolveColumn(g); r == nil {
				g.col = b
				q.groupBy = append(q.groupBy, g)
				continue
			}
			if i := outputIndex(core.targets, g.name); i >= 0 {
				q.groupBy = append(q.groupBy, core.targets[i].expr)
				continue
			}
		}
		if r := q.scope.bindAll(g); r != nil {
			return nil, r
		}
		q.groupBy = append(q.groupBy, g)
	}
	q.gkeys = map[string]bool{}
	for _, g := range q.groupBy {
		q.gkeys[key(g)] = true
	}
	if q.distinct && len(q.groupBy) == 0 {
		for _, t := range core.targets {
			q.gkeys[key(t.expr)] = true
		}
	}
	if core.having != nil {
		if r := q.scope.bindAll(core.having); r != nil {
			return nil, r
		}
	}
	// ORDER BY: an ordinal, an output column name, else an expression.
	for _, s := range core.orderBy {
		o := orderRef{target: -1, desc: s.desc, nulls: s.nulls}
		if n, ok := constInt(s.expr); ok && s.expr.kind == kConst {
			if n < 1 || int(n) > len(core.targets) {
				return nil, reason(ReasonShape, "ORDER BY position %d is not in select list", n)
			}
			o.target = int(n - 1)
		} else if s.expr.kind == kCol && len(s.expr.qual) == 0 && outputIndex(core.targets, s.expr.name) >= 0 {
			o.target = outputIndex(core.targets, s.expr.name)
			if o.target == -2 {
				return nil, reason(ReasonShape, "ORDER BY %q is ambiguous", s.expr.name)
			}
		} else {
			if r := q.scope.bindAll(s.expr); r != nil {
				return nil, r
			}
			k := key(s.expr)
			for i, t := range core.targets {
				if key(t.expr) == k {
					o.target = i
					break
				}
			}
			if o.target < 0 {
				if q.distinct {
					return nil, reason(ReasonShape, "for SELECT DISTINCT, ORDER BY expressions must appear in select list")
				}
				o.expr = s.expr
			}
		}
		q.order = append(q.order, o)
	}
	if r := q.nondeterministicIn(); r != nil {
		return nil, r
	}
	// The first wrapper names the aggregate's output columns: a name that is
	// not one is Postgres's own error, whatever the rollup.
	if len(q.wraps) > 0 {
		for _, t := range q.wraps[0].targets {
			if t.expr.kind == kCol && outputIndex(core.targets, t.expr.name) < 0 {
				return nil, reason(ReasonUnknownColumn, "column %s does not exist or is ambiguous", dotted(t.expr))
			}
		}
	}
	return q, nil
}

// bindOn binds the ON conditions of explicit joins. As in Postgres, an ON
// condition sees only the tables of its own FROM item up to its join: in
// FROM a, b JOIN c ON ..., not a. A reference to another is Postgres's own
// error, which the warehouse reports.
func bindOn(from []*tableRef, sc *scope) *Reason {
	for i, t := range from {
		if t.on == nil {
			continue
		}
		if r := sc.bindAll(t.on); r != nil {
			return r
		}
		var bad *expr
		walk(t.on, func(e *expr) bool {
			if e.kind == kCol && e.col != nil && bad == nil {
				j := slices.Index(sc.entries, e.col.entry)
				if j < 0 || j > i || from[j].item != t.item {
					bad = e
				}
			}
			return bad == nil
		})
		if bad != nil {
			return reason(ReasonUnknownColumn, "invalid reference to FROM-clause entry in %s: a JOIN's ON condition sees only the tables of its own FROM item", dotted(bad))
		}
	}
	return nil
}

// factFirst makes the table the rollups are built over the first in FROM
// when the statement names it later, as star-schema queries often do
// (FROM customer, lineorder, ... or customers JOIN orders ON ...). Inner
// joins commute, so the tables before it may be moved after it as long as
// they are all joined by inner joins (a comma or INNER JOIN); their ON
// conditions, which for inner joins mean the same in WHERE, join the WHERE
// conjuncts returned, where the declared join conditions are looked for as
// for FROM a, b. The joins after it keep their place: they join the inner
// join of everything before them, whatever its order. A fact table behind
// an outer join, or after one, stays where it is and the statement passes
// through.
func factFirst(cat *Catalog, core *selectCore, sc *scope) ([]*expr, *Reason) {
	facts := map[string]bool{}
	for _, cr := range cat.rollups() {
		facts[tableOf(cr)] = true
	}
	fi := slices.IndexFunc(sc.entries, func(e *rangeEntry) bool { return facts[e.full()] })
	if fi <= 0 {
		return nil, nil
	}
	var pooled []*expr
	for i := 1; i <= fi; i++ {
		switch t := core.from[i]; {
		case t.joinType == config.JoinInner:
		case i == fi:
			return nil, reason(ReasonJoin, "the rollups' table %s is on the nullable side of a %s join", sc.entries[fi].full(), t.joinType)
		default:
			return nil, reason(ReasonJoin, "%s is joined by a %s join before the rollups' table %s in FROM; only inner joins may precede it", sc.entries[i].full(), t.joinType, sc.entries[fi].full())
		}
	}
	for i := 1; i <= fi; i++ {
		t := core.from[i]
		pooled = append(pooled, conjuncts(t.on)...)
		t.on = nil
	}
	core.from[0].joinType = config.JoinInner
	core.from[fi].joinType = ""
	moveFirst(core.from, fi)
	moveFirst(sc.entries, fi)
	return pooled, nil
}

// moveFirst moves s[i] to the front, keeping the others' order.
func moveFirst[T any](s []T, i int) {
	x := s[i]
	copy(s[1:i+1], s[:i])
	s[0] = x
}

// outputIndex finds the select-list item named name: -1 none, -2 several.
func outputIndex(ts []target, name string) int {
	found := -1
	for i, t := range ts {
		if t.name == name {
			if found >= 0 {
				return -2
			}
			found = i
		}
	}
	return found
}

// matchJoins applies rule 1's join condition: every query join is one the
// rollup's table declares, with the same condition and type, and inner joins
// agree exactly with the joins the rollup was built with (an inner join
// drops fact rows; a declared many-to-one left join never does).
func (m *matcher) matchJoins() *Reason {
	cr := m.cr
	used := map[*declaredJoin]bool{}
	var order []*declaredJoin // used, in the query's order, for a stable reason
	for _, qj := range m.q.joins {
		var dj *declaredJoin
		for _, d := range cr.declared {
			if d.entry.full() == qj.entry.full() {
				dj = d
			}
		}
		if dj == nil {
			return reason(ReasonJoin, "join to %s is not declared for %s", qj.entry.full(), cr.fact.full())
		}
		if qj.onKey != "" && qj.onKey != dj.onKey {
			if strings.Contains(qj.onKey, dj.onKey) {
				// The declared condition and more: a filter written into ON
				// (Tableau, BI joins with a bound value) changes which rows
				// join, which the rollup's join did not do.
				return reason(ReasonJoin, "join to %s adds conditions to the declared %q in ON, which rollups do not answer; for an inner join, write them in WHERE", qj.entry.full(), dj.join.On)
			}
			return reason(ReasonJoin, "join to %s uses a different condition than the declared %q", qj.entry.full(), dj.join.On)
		}
		if qj.typ != dj.typ {
			return reason(ReasonJoin, "join to %s is %s but declared %s", qj.entry.full(), qj.typ, dj.typ)
		}
		if !used[dj] {
			order = append(order, dj)
		}
		used[dj] = true
	}
	for _, b := range cr.built {
		if b.typ == config.JoinInner && !used[b] {
			return reason(ReasonJoin, "rollup %s is built with an inner join to %s that the query does not make", cr.st.Def.Name, b.entry.full())
		}
	}
	for _, dj := range order {
		if dj.typ == config.JoinInner {
			built := false
			for _, b := range cr.built {
				built = built || b == dj
			}
			if !built {
				return reason(ReasonJoin, "the query's inner join to %s drops rows that rollup %s keeps", dj.entry.full(), cr.st.Def.Name)
			}
		}
	}
	return nil
}

// implicitJoins moves WHERE conjuncts that are the conditions of implicit
// (FROM a, b) joins into the joins. The result is per candidate because the
// declared conditions differ.
func (m *matcher) implicitJoins() ([]*expr, *Reason) {
	where := m.q.where
	for _, qj := range m.q.joins {
		if qj.onKey != "" {
			continue
		}
		var dj *declaredJoin
		for _, d := range m.cr.declared {
			if d.entry.full() == qj.entry.full() {
				dj = d
			}
		}
		if dj == nil {
			return nil, reason(ReasonJoin, "join to %s is not declared for %s", qj.entry.full(), m.cr.fact.full())
		}
		need := map[string]bool{}
		for _, c := range conjuncts(dj.on) {
			need[key(c)] = true
		}
		var rest []*expr
		for _, w := range where {
			if k := key(w); need[k] {
				delete(need, k)
				continue
			}
			rest = append(rest, w)
		}
		if len(need) > 0 {
			return nil, reason(ReasonJoin, "FROM lists %s without the declared join condition %q", qj.entry.full(), dj.join.On)
		}
		where = rest
	}
	return where, nil
}

// checkData applies rule 8 to a rollup for a query restricted to [lo, hi)
// and returns the files to read.
func checkData(st *RollupState, lo, hi, now time.Time, maxStale time.Duration) ([]string, *Reason) {
	if st.Status != StatusActive || st.Version == "" {
		return nil, reason(ReasonNotBuilt, "rollup %s has no active version (status %s)", st.Def.Name, st.Status)
	}
	if maxStale > 0 && !st.BuiltAt.IsZero() && now.Sub(st.BuiltAt) > maxStale {
		return nil, reason(ReasonStale, "rollup %s was built %s ago, more than max_staleness %s", st.Def.Name, now.Sub(st.BuiltAt).Round(time.Second), maxStale)
	}
	if !st.AllTime {
		if !covered(st.Partitions, lo, hi) {
			return nil, reason(ReasonNotCovered, "rollup %s does not cover the query's time range%s", st.Def.Name, rangeText(lo, hi))
		}
	}
	var files []string
	for _, p := range st.Partitions {
		if !overlaps(p, lo, hi) {
			continue
		}
		if p.Truncated {
			return nil, reason(ReasonTruncated, "rollup %s was truncated by max_rows in a partition the query reads", st.Def.Name)
		}
		files = append(files, p.Files...)
	}
	if len(files) == 0 {
		// The WHERE clause excludes every row anyway; read one partition so the
		// relation has its columns.
		for _, p := range st.Partitions {
			if len(p.Files) > 0 && !p.Truncated {
				files = append(files, p.Files[0])
				break
			}
		}
		if len(files) == 0 {
			return nil, reason(ReasonNotBuilt, "rollup %s has no files", st.Def.Name)
		}
	}
	return files, nil
}

func overlaps(p Partition, lo, hi time.Time) bool {
	if !hi.IsZero() && !p.Start.IsZero() && !p.Start.Before(hi) {
		return false
	}
	if !lo.IsZero() && !p.End.IsZero() && !p.End.After(lo) {
		return false
	}
	return true
}

// covered reports whether the union of the partitions contains [lo, hi).
func covered(parts []Partition, lo, hi time.Time) bool {
	ps := parts
	if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i].Start.Before(ps[j].Start) }) {
		ps = append([]Partition(nil), parts...)
		sort.Slice(ps, func(i, j int) bool { return ps[i].Start.Before(ps[j].Start) })
	}
	pos := lo // the point up to which coverage is proven; zero = -infinity
	started := false
	for _, p := range ps {
		if !started {
			if !(p.Start.IsZero() || (!pos.IsZero() && !p.Start.After(pos))) {
				return false
			}
			started = true
		} else if !p.Start.IsZero() && !pos.IsZero() && p.Start.After(pos) {
			return false // a gap
		}
		if p.End.IsZero() {
			return true
		}
		if pos.IsZero() || p.End.After(pos) {
			pos = p.End
		}
		if !hi.IsZero() && !pos.Before(hi) {
			return true
		}
	}
	return false
}

func rangeText(lo, hi time.Time) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "unbounded"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	}
	return " [" + f(lo) + ", " + f(hi) + ")"
}
