package rewrite

import (
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Engine makes decisions. It caches, bounded, the analysis of statement texts
// and each statement's preparation against a catalog snapshot (names bound,
// every candidate rollup translated), so that a repeated statement costs only
// the per-execution work: folding parameters and now(), the time range, the
// data and session checks. It is safe for concurrent use.
type Engine struct {
	analyses *lru.Cache[string, *Analysis]
	prepared *lru.Cache[prepKey, *prepared]
	zones    *zoneCache
	// cat is the catalog the prepared statements were last made against;
	// a new snapshot drops them (catalogs are replaced, never mutated).
	cat atomic.Pointer[Catalog]
}

// prepKey identifies a preparation: everything it reads besides the
// statement's analysis. Catalogs are immutable, so their pointer is their
// identity.
type prepKey struct {
	text string
	cat  *Catalog
	env  string // session zone, search path and parameter types
}

// NewEngine returns an Engine caching the analyses and preparations of up to
// size statements (a default when size <= 0).
func NewEngine(size int) *Engine {
	if size <= 0 {
		size = 4096
	}
	a, _ := lru.New[string, *Analysis](size)
	p, _ := lru.New[prepKey, *prepared](size)
	return &Engine{analyses: a, prepared: p, zones: &zoneCache{}}
}

// Decide decides one execution of a statement. text is the statement text
// (the cache key); tree is its parse, which the proxy caches too. Decide does
// no I/O and never panics on any parse tree.
func (e *Engine) Decide(text string, tree *pg_query.ParseResult, sess Session, cat *Catalog) Decision {
	if old := e.cat.Load(); old != cat {
		if e.cat.CompareAndSwap(old, cat) && old != nil {
			e.prepared.Purge()
		}
	}
	if len(text) > maxCachedText {
		// A statement this big is rare, and its analysis would pin its
		// parse tree: decided afresh each time, and forgotten.
		return prepare(Analyze(tree), &sess, cat, e.zones).execute(&sess, cat)
	}
	k := prepKey{text: text, cat: cat, env: envKey(&sess)}
	p, ok := e.prepared.Get(k)
	if !ok {
		a, ok := e.analyses.Get(text)
		if !ok {
			a = Analyze(tree)
			e.analyses.Add(text, a)
		}
		p = prepare(a, &sess, cat, e.zones)
		e.prepared.Add(k, p)
	}
	return p.execute(&sess, cat)
}

// maxCachedText is the largest statement text whose analysis and
// preparations the Engine keeps. A parse tree takes about a hundred times
// its text in memory, and what is cached refers to it.
const maxCachedText = 32 << 10

// DecideAnalysis decides one execution of an analysed statement, without
// caching anything.
func DecideAnalysis(a *Analysis, sess Session, cat *Catalog) Decision {
	return prepare(a, &sess, cat, nil).execute(&sess, cat)
}

// envKey renders what a preparation reads from the session: the TimeZone
// setting, the search path and the types (not the values) of the parameters.
func envKey(sess *Session) string {
	if len(sess.SearchPath) == 0 && len(sess.Params) == 0 && sess.ContextKey == "" {
		return sess.TimeZone
	}
	var b strings.Builder
	b.WriteString(sess.TimeZone)
	b.WriteByte(0)
	b.WriteString(sess.ContextKey)
	b.WriteByte(0)
	for _, s := range sess.SearchPath {
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(0)
	for _, p := range sess.Params {
		b.WriteString(strconv.FormatUint(uint64(p.Type), 10))
		b.WriteByte(',')
	}
	return b.String()
}

// prepared is a statement bound to one catalog snapshot in one session
// environment: a statement-level reason, or its candidate rollups each either
// rejected already or translated up to the per-execution parts.
type prepared struct {
	reason *Reason
	cands  []*candidate
	loc    *time.Location
	zones  *zoneCache
}

// candidate is one rollup over the statement's table, prepared.
type candidate struct {
	cr     *compiledRollup
	reject *Reason // rejected whatever the execution's values
	steps  []step
	slots  []slotFn
	segs   []segment // the DuckDB SQL, nil when a step always fails
	cols   []ResultColumn
	lo, hi time.Time // the time range the statement's constant bounds give
	window *rollingWindow
}

// prepare binds the statement to the catalog and translates it for every
// candidate rollup; zones may be nil (no caching).
func prepare(a *Analysis, sess *Session, cat *Catalog, zones *zoneCache) *prepared {
	if a.reason != nil {
		return &prepared{reason: a.reason}
	}
	q, r := bind(a, cat, sess)
	var crs []*compiledRollup
	if q != nil {
		for _, cr := range cat.rollups() {
			if cr.fact.full() == q.fact.full() || (cr.err != nil && tableOf(cr) == q.fact.full()) {
				crs = append(crs, cr)
			}
		}
	} else if r.Code == ReasonNoRollup {
		return &prepared{reason: r}
	} else {
		// The failure applies to every rollup over the first table in FROM
		// that rollups are built over.
		for _, t := range a.core.from {
			for _, cr := range cat.rollups() {
				if _, n := splitTable(cr.st.Def.Table); n == t.name {
					crs = append(crs, cr)
				}
			}
			if len(crs) > 0 {
				break
			}
		}
	}
	if q != nil && len(crs) == 0 {
		return &prepared{reason: reason(ReasonNoRollup, "no rollup reads %s", q.fact.full())}
	}
	zone := sess.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	sz := zones.get(zone)
	bzName := cat.BuildTimezone
	if bzName == "" {
		bzName = "UTC"
	}
	bz := zones.get(bzName)
	p := &prepared{loc: sz.loc, zones: zones}
	ptypes := make([]uint32, len(sess.Params))
	for i, pr := range sess.Params {
		ptypes[i] = pr.Type
	}
	for _, cr := range crs {
		c := &candidate{cr: cr}
		switch {
		case r != nil:
			c.reject = r
		case cr.err != nil:
			c.reject = cr.err
		case sz.err != nil:
			c.reject = reason(ReasonTimeZone, "session TimeZone %q is not supported: %v", sess.TimeZone, sz.err)
		case bz.err != nil:
			c.reject = reason(ReasonTimeZone, "build_timezone %q is not supported: %v", cat.BuildTimezone, bz.err)
		default:
			m := &matcher{
				q: q, cat: cat, cr: cr, zones: zones,
				zone: sz.name, sz: sz, loc: sz.loc, buildZone: bz.name, buildLoc: bz.loc,
				ptypes: ptypes, fc: &foldCtx{loc: sz.loc, zones: zones},
			}
			m.prepare(c)
		}
		p.cands = append(p.cands, c)
	}
	return p
}

func tableOf(cr *compiledRollup) string {
	s, n := splitTable(cr.st.Def.Table)
	return s + "." + n
}

// execute decides one execution of a prepared statement.
func (p *prepared) execute(sess *Session, cat *Catalog) Decision {
	if p.reason != nil {
		return passthrough(p.reason, nil)
	}
	x := &execCtx{foldCtx: foldCtx{loc: p.loc, now: sess.Now, params: sess.Params, live: true, zones: p.zones}}
	if x.now.IsZero() {
		x.now = time.Now()
	}
	cands := make([]Candidate, 0, len(p.cands))
	var best *plan
	for _, c := range p.cands {
		pl, r := c.execute(x, sess, cat)
		if r != nil {
			cands = append(cands, Candidate{Rollup: c.cr.st.Def.Name, Reason: *r})
			continue
		}
		matched := Reason{Code: ReasonMatched}
		switch {
		case c.window != nil && c.window.built != "":
			// EXPLAIN shows which window answered.
			matched.Message = "inside the window rollup " + c.cr.st.Def.Name + " was built with: " + c.window.built
		case c.window != nil:
			matched.Message = "inside the window rollup " + c.cr.st.Def.Name + "'s filters fold to when built now"
		}
		cands = append(cands, Candidate{Rollup: c.cr.st.Def.Name, Match: true, Reason: matched})
		if best == nil || smaller(pl.cr.st, best.cr.st) {
			best = pl
		}
	}
	if best == nil {
		return passthrough(bestReason(cands), cands)
	}
	for i := range cands {
		if cands[i].Match && cands[i].Rollup != best.cr.st.Def.Name {
			cands[i].Match = false
			cands[i].Reason = Reason{Code: ReasonNotChosen, Message: "rollup " + best.cr.st.Def.Name + " also matches and is smaller"}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Match && !cands[j].Match })
	return Decision{
		Outcome:    OutcomeRollup,
		Reason:     Reason{Code: ReasonMatched, Message: "answered from rollup " + best.cr.st.Def.Name},
		Rollup:     best.cr.st.Def.Name,
		Version:    best.cr.st.Version,
		Files:      best.files,
		SQL:        best.sql,
		Columns:    best.cols,
		Candidates: cands,
	}
}

// smaller is rule 10's order: the fewest rows, then the fewest bytes, then the name.
func smaller(a, b *RollupState) bool {
	if a.Rows != b.Rows {
		return a.Rows < b.Rows
	}
	if a.Bytes != b.Bytes {
		return a.Bytes < b.Bytes
	}
	return a.Def.Name < b.Def.Name
}

// execute applies the per-execution parts of rules 6, 8 and 9 to a prepared
// candidate and fills in its SQL.
func (c *candidate) execute(x *execCtx, sess *Session, cat *Catalog) (*plan, *Reason) {
	if c.reject != nil {
		return nil, c.reject
	}
	x.lo, x.hi = c.lo, c.hi
	vals := make([]string, len(c.slots))
	if r := runSteps(c.steps, c.slots, x, vals); r != nil {
		return nil, r
	}
	if c.segs == nil {
		// Unreachable: a candidate without SQL has a failing step.
		return nil, reason(ReasonShape, "internal error: no SQL for rollup %s", c.cr.st.Def.Name)
	}
	if c.cr.st.Status == StatusActive && c.cr.st.Version != "" {
		if r := c.window.check(c.cr, x); r != nil {
			return nil, r
		}
	}
	maxStale := cat.MaxStaleness
	switch st := sess.Staleness; {
	case st.Invalid != "":
		return nil, reason(ReasonStale, "this session's pgrollup.max_staleness %q is not a duration such as '5min' or '0'", st.Invalid)
	case st.Set && st.Max == 0:
		return nil, reason(ReasonStale, "this session's pgrollup.max_staleness is 0: only the warehouse is as fresh as the warehouse")
	case st.Set:
		maxStale = st.Max
	}
	files, r := checkData(c.cr.st, x.lo, x.hi, x.now, maxStale)
	if r != nil {
		return nil, r
	}
	switch {
	case sess.TxFailed:
		return nil, reason(ReasonTxFailed, "the transaction is aborted; Postgres reports the error")
	case sess.TxWrote:
		return nil, reason(ReasonTxWrote, "this transaction modified data, which the rollup does not see")
	case sess.CanRead != nil && !sess.CanRead(c.cr.st.Def.Name):
		return nil, reason(ReasonPrivilege, "the user may not read every table and column rollup %s reads, or row-level security applies", c.cr.st.Def.Name)
	}
	return &plan{cr: c.cr, files: files, sql: assemble(c.segs, vals, files), cols: c.cols}, nil
}

// bestReason picks the passthrough reason: the candidate that got furthest
// through the rules (a later rule means a closer miss), then by name.
func bestReason(cands []Candidate) *Reason {
	var best *Candidate
	for i := range cands {
		c := &cands[i]
		if best == nil || c.Reason.Code.Rule() > best.Reason.Code.Rule() {
			best = c
		}
	}
	if best == nil {
		return reason(ReasonNoRollup, "no rollup matches")
	}
	r := best.Reason
	return &r
}

// numericTextOrder orders the text of numerics (oidNumericText, s its
// DuckDB SQL) by their values, as Postgres orders the numerics: by the floor
// of the value, then by the rest's digits, padded to the largest display
// scale Postgres has (1000) so that they compare as text; a negative value's
// rest is 1 - its fraction, the digits' nines' complement (its
// fraction's last digit is not 0, so the complement of a nonzero fraction
// is never all zeros, which a whole number gets). Both keys are NULL exactly
// when the value is, so NULLS FIRST and LAST keep their meaning.
func numericTextOrder(s, suffix string) []string {
	frac := "split_part(v, '.', 2)"
	whole := "rtrim(" + frac + ", '0') = ''"
	floor := "list_transform([" + s + "], lambda v: CASE WHEN v IS NULL THEN NULL WHEN starts_with(v, '-') THEN -CAST(split_part(substr(v, 2), '.', 1) AS HUGEINT) - CASE WHEN " + whole + " THEN 0 ELSE 1 END ELSE CAST(split_part(v, '.', 1) AS HUGEINT) END)[1]"
	padded := "rpad(" + frac + ", 1000, '0')"
	rest := "list_transform([" + s + "], lambda v: CASE WHEN v IS NULL THEN NULL WHEN NOT starts_with(v, '-') THEN " + padded + " WHEN " + whole + " THEN repeat('0', 1000) ELSE translate(" + padded + ", '0123456789', '9876543210') END)[1]"
	return []string{floor + suffix, rest + suffix}
}

// computedAsText reports whether e is one of the expressions the rewriter
// computes as Postgres's text of a numeric (oidNumericText): avg, and the
// shapes of numericDivision and coalescedSum. Only these are returned as
// they are; an expression over one is refused.
func computedAsText(e *expr) bool {
	switch e.kind {
	case kFunc:
		return e.name == "avg"
	case kOp:
		return e.name == "/" && len(e.args) == 2 && e.args[0].kind == kFunc && e.args[0].name == "sum"
	case kCoalesce:
		return len(e.args) == 2 && e.args[0].kind == kFunc && e.args[0].name == "sum"
	}
	return false
}

// plan is a matched candidate's rewrite.
type plan struct {
	cr    *compiledRollup
	files []string
	sql   string
	cols  []ResultColumn
}

// prepare applies rules 1-7 to the candidate and writes its SQL template.
func (m *matcher) prepare(c *candidate) {
	if r := m.matchJoins(); r != nil {
		c.reject = r
		return
	}
	where, r := m.implicitJoins()
	if r != nil {
		c.reject = r
		return
	}
	if c.window, r = m.window(); r != nil {
		c.reject = r
		return
	}
	m.steps = &c.steps
	core := m.q.core
	sel := make([]string, len(core.targets))
	types := make([]Type, len(core.targets))
	typed := make([]bool, len(core.targets))
	for i, t := range core.targets {
		s, ty, r := m.grp(t.expr)
		m.fail(r)
		sel[i], types[i], typed[i] = s, ty, r == nil
	}
	groups := make([]string, 0, len(m.q.groupBy))
	for _, g := range m.q.groupBy {
		s, _, r := m.row(g)
		m.fail(r)
		groups = append(groups, s)
	}
	preds := m.where(where)
	having := ""
	if core.having != nil {
		s, _, r := m.typed(core.having, plain(pgtype.BoolOID), m.grp)
		m.fail(r)
		having = s
	}
	var order []string
	for _, o := range m.q.order {
		var s string
		var t Type
		if o.target >= 0 {
			s, t = itoa(o.target+1), types[o.target]
			if t.OID == oidNumericText {
				s = sel[o.target]
			}
		} else {
			var r *Reason
			s, t, r = m.grp(o.expr)
			m.fail(r)
		}
		if t.OID == oidNumericText {
			order = append(order, numericTextOrder(s, sortSuffix(o.desc, o.nulls))...)
			continue
		}
		m.fail(m.orderable(t, m.orderExpr(o)))
		order = append(order, s+sortSuffix(o.desc, o.nulls))
	}
	limit, offset, r := m.limits(core.limit, core.offset)
	m.fail(r)

	var b strings.Builder
	b.WriteString("SELECT ")
	if core.distinct {
		b.WriteString("DISTINCT ")
	}
	for i, t := range core.targets {
		if types[i].OID != oidNumericText {
			continue
		}
		// An average computed as text is only returned, never computed with,
		// and DISTINCT would compare its text, not its value.
		if !computedAsText(t.expr) {
			m.fail(reason(ReasonExpression, "expressions over avg of integers or numeric are not supported on rollups"))
		} else if core.distinct {
			m.fail(reason(ReasonExpression, "SELECT DISTINCT with avg of integers or numeric, a numeric division or a coalesced numeric sum is not supported on rollups"))
		}
	}
	cols := make([]ResultColumn, len(core.targets))
	for i, s := range sel {
		if i > 0 {
			b.WriteString(", ")
		}
		d, ok := duckType(types[i])
		if ok && types[i].OID != pgtype.NumericOID {
			s = "CAST(" + s + " AS " + d + ")"
		}
		b.WriteString(s + " AS " + sqlquote.Ident("c"+itoa(i)))
		cols[i] = m.describe(core.targets[i], types[i])
		if typed[i] && !cols[i].Type.Known() && !m.cat.PartialColumns {
			// The answer path converts DuckDB's values to the described
			// type; without one it could only fail after the decision.
			m.fail(reason(ReasonExpression, "the type Postgres gives result column %d (%s) is not known to pgrollup", i+1, cols[i].Name))
		}
	}
	b.WriteString(" FROM read_parquet([" + filesMark + "]) AS \"r\"")
	if len(preds) > 0 {
		b.WriteString(" WHERE ")
		for i, p := range preds {
			if i > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString("(" + p + ")")
		}
	}
	if len(groups) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(groups, ", "))
	}
	if having != "" {
		b.WriteString(" HAVING " + having)
	}
	if len(order) > 0 {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	b.WriteString(limit + offset)
	sql, cols := m.wrap(b.String(), cols)
	c.slots, c.cols, c.lo, c.hi = m.slots, cols, m.lo, m.hi
	if m.failed {
		return
	}
	segs, ok := parseTemplate(sql)
	if !ok {
		m.fail(reason(ReasonShape, "internal error: malformed SQL template"))
		return
	}
	c.segs = segs
}

func sortSuffix(desc bool, nulls int) string {
	s := " ASC"
	nf := false
	if desc {
		s, nf = " DESC", true
	}
	switch nulls {
	case nullsFirst:
		nf = true
	case nullsLast:
		nf = false
	}
	// Postgres's defaults, spelled out: DuckDB puts NULLs last either way.
	if nf {
		return s + " NULLS FIRST"
	}
	return s + " NULLS LAST"
}

// limits translates LIMIT and OFFSET constants or parameters.
func (m *matcher) limits(limit, offset *expr) (string, string, *Reason) {
	one := func(e *expr, kw string) (string, *Reason) {
		if e == nil {
			return "", nil
		}
		if e.kind == kConst && e.lit == litNull {
			return "", nil
		}
		if n, ok := constInt(e); ok && e.kind == kConst {
			if n < 0 {
				return "", reason(ReasonShape, "negative %s is an error in Postgres", kw)
			}
			return " " + kw + " " + itoa(int(n)), nil
		}
		if e.kind == kConst && e.lit == litNumeric && intRE.MatchString(e.str) && !strings.HasPrefix(strings.TrimSpace(e.str), "-") {
			return " " + kw + " " + strings.TrimSpace(e.str), nil
		}
		if e.kind == kParam {
			pt, ok := m.paramType(e.param)
			if !ok {
				return "", reason(ReasonParameter, "parameter $%d is not bound", e.param)
			}
			if pt != 0 && pt != pgtype.UnknownOID && !isIntegerOID(pt) {
				return "", reason(ReasonShape, "argument of %s must be type bigint (Postgres reports this)", kw)
			}
			n := e.param
			return m.deferSQL(func(x *execCtx) (string, *Reason) {
				p, _ := x.param(n)
				if p.Null {
					return "", nil
				}
				if intRE.MatchString(p.Value) && !strings.HasPrefix(strings.TrimSpace(p.Value), "-") && len(strings.TrimSpace(p.Value)) <= 18 {
					return " " + kw + " " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(p.Value), "+")), nil
				}
				return "", reason(ReasonShape, "unsupported %s value", kw)
			}), nil
		}
		return "", reason(ReasonShape, "unsupported %s", kw)
	}
	l, r := one(limit, "LIMIT")
	if r != nil {
		return "", "", r
	}
	o, r := one(offset, "OFFSET")
	return l, o, r
}

// describe is the RowDescription entry Postgres would send for a target.
func (m *matcher) describe(t target, ty Type) ResultColumn {
	c := ResultColumn{Name: t.name, Type: ty}
	c.DuckType, _ = duckType(ty)
	switch ty.OID {
	case pgtype.NumericOID:
		c.DuckType = "DECIMAL"
	case oidNumericText:
		c.Type, c.DuckType = plain(pgtype.NumericOID), "VARCHAR"
	}
	// Plain column references carry their origin, and keep their typmod.
	if col := identityColumn(t.expr); col != nil {
		c.TableOID = col.col.entry.table.OID
		c.AttNum = col.col.column.AttNum
		c.Type = col.col.column.Type
	}
	if isTextOID(c.Type.OID) {
		switch ec := collationOf(t.expr); {
		case ec.unsure || ec.conflict || ec.coll != nil && ec.coll.SQL == "":
			c.collationUnsure = true
		case ec.coll != nil:
			c.Collation = ec.coll.SQL
		}
	}
	return c
}

// identityColumn returns the bound column e references when Postgres sees a
// plain column reference in it: the column itself, or the column under casts
// to its own type with its own type modifier (CAST(status AS TEXT) of a text
// column, order_date::date, amount::numeric(12,2) of a numeric(12,2)), which
// Postgres's parser drops. A cast that changes only the modifier
// (amount::numeric, v::varchar of a varchar(50)) stays in the expression as
// a relabelling, and the result then has no origin; so does a cast to
// another type, binary compatible or not (v::text). It returns nil
// otherwise, and when the column's type is unknown.
func identityColumn(e *expr) *expr {
	var casts []*expr
	for e.kind == kCast {
		casts = append(casts, e)
		e = e.args[0]
	}
	if e.kind != kCol || e.col == nil {
		return nil
	}
	if len(casts) == 0 {
		return e
	}
	t := e.col.column.Type
	if !t.Known() {
		return nil
	}
	for _, c := range casts {
		if c.typ != t {
			return nil
		}
	}
	return e
}

// wrap applies the outer SELECT ... FROM (...) layers. Its failures are
// recorded as steps.
func (m *matcher) wrap(sql string, cols []ResultColumn) (string, []ResultColumn) {
	// srcs[i]: the aggregate's select-list entry column i shows, whose
	// expression gives the collation an ORDER BY around it uses.
	core := m.q.core
	srcs := make([]int, len(cols))
	for i := range srcs {
		srcs[i] = i
	}
	for li, w := range m.q.wraps {
		alias := "w" + itoa(li)
		var picks []int
		var out []ResultColumn
		for _, t := range w.targets {
			if t.expr.kind == kStar {
				if len(t.expr.qual) > 1 || (len(t.expr.qual) == 1 && t.expr.qual[0] != w.alias) {
					m.fail(reason(ReasonShape, "unknown qualifier in the outer select list"))
					return sql, cols
				}
				for i := range cols {
					picks = append(picks, i)
					out = append(out, cols[i])
				}
				continue
			}
			if len(t.expr.qual) > 1 || (len(t.expr.qual) == 1 && t.expr.qual[0] != w.alias) {
				m.fail(reason(ReasonUnknownColumn, "column %s does not exist", dotted(t.expr)))
				return sql, cols
			}
			i := columnIndex(cols, t.expr.name)
			if i < 0 {
				m.fail(reason(ReasonUnknownColumn, "column %s does not exist or is ambiguous", dotted(t.expr)))
				return sql, cols
			}
			picks = append(picks, i)
			c := cols[i]
			c.Name = t.name
			out = append(out, c)
		}
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, p := range picks {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(sqlquote.Ident(alias) + "." + sqlquote.Ident("c"+itoa(p)) + " AS " + sqlquote.Ident("c"+itoa(i)))
		}
		b.WriteString(" FROM (" + sql + ") AS " + sqlquote.Ident(alias))
		var order []string
		for _, o := range w.orderBy {
			idx := -1
			if n, ok := constInt(o.expr); ok && o.expr.kind == kConst {
				if n < 1 || int(n) > len(picks) {
					m.fail(reason(ReasonShape, "ORDER BY position %d is not in select list", n))
					return sql, cols
				}
				idx = picks[n-1]
			} else if o.expr.kind == kCol && len(o.expr.qual) == 0 && columnIndex(out, o.expr.name) >= 0 {
				idx = picks[columnIndex(out, o.expr.name)]
			} else if o.expr.kind == kCol && (len(o.expr.qual) == 0 || (len(o.expr.qual) == 1 && o.expr.qual[0] == w.alias)) {
				idx = columnIndex(cols, o.expr.name)
			}
			if idx < 0 {
				m.fail(reason(ReasonShape, "unsupported ORDER BY around a subquery"))
				return sql, cols
			}
			t := cols[idx].Type
			if t.OID == pgtype.NumericOID && cols[idx].DuckType == "VARCHAR" {
				order = append(order, numericTextOrder(sqlquote.Ident(alias)+"."+sqlquote.Ident("c"+itoa(idx)), sortSuffix(o.desc, o.nulls))...)
				continue
			}
			if r := m.orderable(t, core.targets[srcs[idx]].expr); r != nil {
				m.fail(r)
				return sql, cols
			}
			order = append(order, sqlquote.Ident(alias)+"."+sqlquote.Ident("c"+itoa(idx))+sortSuffix(o.desc, o.nulls))
		}
		if len(order) > 0 {
			b.WriteString(" ORDER BY " + strings.Join(order, ", "))
		}
		l, off, r := m.limits(w.limit, w.offset)
		if r != nil {
			m.fail(r)
			return sql, cols
		}
		b.WriteString(l + off)
		next := make([]int, len(picks))
		for i, p := range picks {
			next[i] = srcs[p]
		}
		sql, cols, srcs = b.String(), out, next
	}
	return sql, cols
}

func columnIndex(cols []ResultColumn, name string) int {
	found := -1
	for i, c := range cols {
		if c.Name == name {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}
