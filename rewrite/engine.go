package rewrite

import (
	"sort"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Engine makes decisions, caching the analysis of statement texts. It is safe
// for concurrent use.
type Engine struct {
	cache *lru.Cache[string, *Analysis]
}

// NewEngine returns an Engine caching the analyses of up to size statement
// texts (a default when size <= 0).
func NewEngine(size int) *Engine {
	if size <= 0 {
		size = 4096
	}
	c, _ := lru.New[string, *Analysis](size)
	return &Engine{cache: c}
}

// Decide decides one execution of a statement. text is the statement text
// (the cache key); tree is its parse, which the proxy caches too. Decide does
// no I/O and never panics on any parse tree.
func (e *Engine) Decide(text string, tree *pg_query.ParseResult, sess Session, cat *Catalog) Decision {
	a, ok := e.cache.Get(text)
	if !ok {
		a = Analyze(tree)
		e.cache.Add(text, a)
	}
	return DecideAnalysis(a, sess, cat)
}

// DecideAnalysis decides one execution of an analysed statement.
func DecideAnalysis(a *Analysis, sess Session, cat *Catalog) Decision {
	if a.reason != nil {
		return passthrough(a.reason, nil)
	}
	q, r := bind(a, cat, &sess)
	var crs []*compiledRollup
	if q != nil {
		for _, cr := range cat.rollups() {
			if cr.fact.full() == q.fact.full() || (cr.err != nil && tableOf(cr) == q.fact.full()) {
				crs = append(crs, cr)
			}
		}
	} else if r.Code == ReasonNoRollup {
		return passthrough(r, nil)
	} else {
		// The failure applies to every rollup over the first table.
		name := a.core.from[0].name
		for _, cr := range cat.rollups() {
			if _, n := splitTable(cr.st.Def.Table); n == name {
				crs = append(crs, cr)
			}
		}
	}
	if q != nil && len(crs) == 0 {
		return passthrough(reason(ReasonNoRollup, "no rollup reads %s", q.fact.full()), nil)
	}
	sc := &sessionCtx{now: sess.Now, params: sess.Params}
	if sc.now.IsZero() {
		sc.now = time.Now()
	}
	zone := sess.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	sc.zone, sc.zoneErr = canonicalZone(zone)
	if sc.zoneErr == nil {
		sc.loc, sc.zoneErr = loadZone(sc.zone)
	}
	buildZone, bzErr := canonicalZone(cat.BuildTimezone)
	if cat.BuildTimezone == "" {
		buildZone, bzErr = "UTC", nil
	}

	var cands []Candidate
	var plans []*plan
	for _, cr := range crs {
		var p *plan
		var rr *Reason
		switch {
		case r != nil:
			rr = r
		case cr.err != nil:
			rr = cr.err
		case sc.zoneErr != nil:
			rr = reason(ReasonTimeZone, "session TimeZone %q is not supported: %v", sess.TimeZone, sc.zoneErr)
		case bzErr != nil:
			rr = reason(ReasonTimeZone, "build_timezone %q is not supported: %v", cat.BuildTimezone, bzErr)
		default:
			m := &matcher{sessionCtx: sc, sess: sc, q: q, cat: cat, cr: cr, buildZone: buildZone}
			p, rr = m.plan(&sess)
		}
		if rr != nil {
			cands = append(cands, Candidate{Rollup: cr.st.Def.Name, Reason: *rr})
			continue
		}
		plans = append(plans, p)
		cands = append(cands, Candidate{Rollup: cr.st.Def.Name, Match: true, Reason: Reason{Code: ReasonMatched}})
	}
	if len(plans) == 0 {
		return passthrough(bestReason(cands), cands)
	}
	// Rule 10: the fewest rows, then the fewest bytes, then the name.
	sort.SliceStable(plans, func(i, j int) bool {
		a, b := plans[i].cr.st, plans[j].cr.st
		if a.Rows != b.Rows {
			return a.Rows < b.Rows
		}
		if a.Bytes != b.Bytes {
			return a.Bytes < b.Bytes
		}
		return a.Def.Name < b.Def.Name
	})
	best := plans[0]
	for i := range cands {
		if cands[i].Match && cands[i].Rollup != best.cr.st.Def.Name {
			cands[i].Match = false
			cands[i].Reason = Reason{Code: ReasonNotChosen, Message: "rollup " + best.cr.st.Def.Name + " also matches and is smaller"}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Match && !cands[j].Match })
	return Decision{
		Route:      RouteRollup,
		Reason:     Reason{Code: ReasonMatched, Message: "answered from rollup " + best.cr.st.Def.Name},
		Rollup:     best.cr.st.Def.Name,
		Version:    best.cr.st.Version,
		Files:      best.files,
		SQL:        best.sql,
		Columns:    best.cols,
		Candidates: cands,
	}
}

func tableOf(cr *compiledRollup) string {
	s, n := splitTable(cr.st.Def.Table)
	return s + "." + n
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

// plan is a matched candidate's rewrite.
type plan struct {
	cr    *compiledRollup
	files []string
	sql   string
	cols  []ResultColumn
}

// plan applies rules 1-9 to the candidate and writes its SQL.
func (m *matcher) plan(sess *Session) (*plan, *Reason) {
	if r := m.matchJoins(); r != nil {
		return nil, r
	}
	where, r := m.implicitJoins()
	if r != nil {
		return nil, r
	}
	core := m.q.core
	sel := make([]string, len(core.targets))
	types := make([]Type, len(core.targets))
	for i, t := range core.targets {
		s, ty, r := m.grp(t.expr)
		m.fail(r)
		sel[i], types[i] = s, ty
	}
	groups := make([]string, 0, len(m.q.groupBy))
	for _, g := range m.q.groupBy {
		s, _, r := m.row(g)
		m.fail(r)
		groups = append(groups, s)
	}
	preds, r := m.where(where)
	m.fail(r)
	having := ""
	if core.having != nil {
		s, _, r := m.typed(core.having, plain(OIDBool), m.grp)
		m.fail(r)
		having = s
	}
	var order []string
	for _, o := range m.q.order {
		var s string
		var t Type
		if o.target >= 0 {
			s, t = itoa(o.target+1), types[o.target]
		} else {
			var r *Reason
			s, t, r = m.grp(o.expr)
			m.fail(r)
		}
		m.fail(m.orderable(t))
		order = append(order, s+sortSuffix(o.desc, o.nulls))
	}
	limit, offset, r := m.limits(core.limit, core.offset)
	m.fail(r)
	if m.best != nil {
		return nil, m.best
	}
	files, r := m.checkData(m.now, m.cat.MaxStaleness)
	if r != nil {
		return nil, r
	}
	switch {
	case sess.TxFailed:
		return nil, reason(ReasonTxFailed, "the transaction is aborted; Postgres reports the error")
	case sess.TxWrote:
		return nil, reason(ReasonTxWrote, "this transaction modified data, which the rollup does not see")
	case sess.CanRead != nil && !sess.CanRead(m.cr.st.Def.Name):
		return nil, reason(ReasonPrivilege, "the user may not read every table and column rollup %s reads, or row-level security applies", m.cr.st.Def.Name)
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	if core.distinct {
		b.WriteString("DISTINCT ")
	}
	cols := make([]ResultColumn, len(core.targets))
	for i, s := range sel {
		if i > 0 {
			b.WriteString(", ")
		}
		d, ok := duckType(types[i])
		if ok && types[i].OID != OIDNumeric {
			s = "CAST(" + s + " AS " + d + ")"
		}
		b.WriteString(s + " AS " + quoteIdent("c"+itoa(i)))
		cols[i] = m.describe(core.targets[i], types[i])
	}
	b.WriteString(" FROM read_parquet([")
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteLiteral(f))
	}
	b.WriteString("]) AS \"r\"")
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
	sql := b.String()
	var r2 *Reason
	sql, cols, r2 = m.wrap(sql, cols, types)
	if r2 != nil {
		return nil, r2
	}
	return &plan{cr: m.cr, files: files, sql: sql, cols: cols}, nil
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
		if e.kind == kConst && e.lit == litNumeric && intRE.MatchString(e.str) {
			return " " + kw + " " + strings.TrimSpace(e.str), nil
		}
		if e.kind == kParam {
			p, ok := m.param(e.param)
			if !ok {
				return "", reason(ReasonParameter, "parameter $%d is not bound", e.param)
			}
			if p.Null {
				return "", nil
			}
			if intRE.MatchString(p.Value) && !strings.HasPrefix(strings.TrimSpace(p.Value), "-") {
				return " " + kw + " " + strings.TrimSpace(p.Value), nil
			}
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
	if ty.OID == OIDNumeric {
		c.DuckType = "DECIMAL"
	}
	// Plain column references carry their origin, and keep their typmod.
	if t.expr.kind == kCol && t.expr.col != nil {
		c.TableOID = t.expr.col.entry.table.OID
		c.AttNum = t.expr.col.column.AttNum
		c.Type = t.expr.col.column.Type
	}
	return c
}

// wrap applies the outer SELECT ... FROM (...) layers.
func (m *matcher) wrap(sql string, cols []ResultColumn, types []Type) (string, []ResultColumn, *Reason) {
	for li, w := range m.q.wraps {
		alias := "w" + itoa(li)
		var picks []int
		var out []ResultColumn
		for _, t := range w.targets {
			if t.expr.kind == kStar {
				if len(t.expr.qual) > 1 || (len(t.expr.qual) == 1 && t.expr.qual[0] != w.alias) {
					return "", nil, reason(ReasonShape, "unknown qualifier in the outer select list")
				}
				for i := range cols {
					picks = append(picks, i)
					out = append(out, cols[i])
				}
				continue
			}
			if len(t.expr.qual) > 1 || (len(t.expr.qual) == 1 && t.expr.qual[0] != w.alias) {
				return "", nil, reason(ReasonUnknownColumn, "column %s does not exist", dotted(t.expr))
			}
			i := columnIndex(cols, t.expr.name)
			if i < 0 {
				return "", nil, reason(ReasonUnknownColumn, "column %s does not exist or is ambiguous", dotted(t.expr))
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
			b.WriteString(quoteIdent(alias) + "." + quoteIdent("c"+itoa(p)) + " AS " + quoteIdent("c"+itoa(i)))
		}
		b.WriteString(" FROM (" + sql + ") AS " + quoteIdent(alias))
		var order []string
		for _, o := range w.orderBy {
			idx := -1
			if n, ok := constInt(o.expr); ok && o.expr.kind == kConst {
				if n < 1 || int(n) > len(picks) {
					return "", nil, reason(ReasonShape, "ORDER BY position %d is not in select list", n)
				}
				idx = picks[n-1]
			} else if o.expr.kind == kCol && len(o.expr.qual) == 0 && columnIndex(out, o.expr.name) >= 0 {
				idx = picks[columnIndex(out, o.expr.name)]
			} else if o.expr.kind == kCol && (len(o.expr.qual) == 0 || (len(o.expr.qual) == 1 && o.expr.qual[0] == w.alias)) {
				idx = columnIndex(cols, o.expr.name)
			}
			if idx < 0 {
				return "", nil, reason(ReasonShape, "unsupported ORDER BY around a subquery")
			}
			if r := m.orderable(cols[idx].Type); r != nil {
				return "", nil, r
			}
			order = append(order, quoteIdent(alias)+"."+quoteIdent("c"+itoa(idx))+sortSuffix(o.desc, o.nulls))
		}
		if len(order) > 0 {
			b.WriteString(" ORDER BY " + strings.Join(order, ", "))
		}
		l, off, r := m.limits(w.limit, w.offset)
		if r != nil {
			return "", nil, r
		}
		b.WriteString(l + off)
		sql, cols = b.String(), out
	}
	_ = types
	return sql, cols, nil
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
