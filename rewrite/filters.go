package rewrite

import (
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// where classifies the WHERE conjuncts for the candidate (rule 6): the
// rollup's own filters, grain-aligned ranges on the raw time column, and
// predicates evaluable on rollup rows. It returns the DuckDB predicates and
// records its failures as one group: the worst conjunct's failure, or else
// a rollup filter the conjuncts do not imply.
func (m *matcher) where(conj []*expr) []string {
	cr := m.cr
	parent := m.steps
	var group []step
	m.steps = &group
	failedBefore := m.failed
	m.failed = false
	// Clock-relative filters are held to the version's window instead
	// (rollingWindow.check).
	implied := append([]bool(nil), cr.relative...)
	var out []string
	for _, w := range conj {
		k := key(w)
		exact := false
		for i, fk := range cr.fkeys {
			// A clock-relative filter means its build's instants, not the
			// query's: the window check compares those.
			if fk == k && !cr.relative[i] {
				implied[i], exact = true, true
			}
		}
		if exact {
			continue
		}
		if i, ok := m.sameAsFilter(w); ok && !cr.relative[i] {
			implied[i] = true
			continue
		}
		if s, ok, r := m.timeRange(w); ok {
			if r != nil {
				m.fail(r)
				continue
			}
			out = append(out, s...)
			continue
		}
		s, t, r := m.typed(w, plain(pgtype.BoolOID), m.row)
		if r != nil {
			m.fail(r)
			continue
		}
		if t.Known() && t.OID != pgtype.BoolOID {
			m.fail(reason(ReasonShape, "argument of WHERE must be type boolean"))
			continue
		}
		out = append(out, s)
	}
	var orElse *Reason
	if !m.failed {
		for i, f := range cr.filters {
			if !implied[i] && !m.implied(f, conj) {
				orElse = reason(ReasonFilterNotImplied, "the query does not restrict rows to rollup %s's filter %q", cr.st.Def.Name, strings.Join(cr.st.Def.Filters, " AND "))
				break
			}
		}
	}
	m.steps = parent
	m.failed = failedBefore || m.failed || orElse != nil
	*m.steps = append(*m.steps, step{isGrp: true, group: group, orElse: orElse, slot: -1})
	return out
}

// timeBound is what checking one bound on the raw time column needs, fixed
// when the statement is prepared, so that bounds from parameters and now()
// are checked the same way at execution.
type timeBound struct {
	op     string
	v      *expr
	kind   valueKind          // the time column's kind
	exact  bool               // the raw column is itself a bucket (a date at day grain)
	grain  config.Granularity // the rollup's
	cutLoc *time.Location     // the clock the rollup's buckets are cut on
	col    string             // "r"."t"
	name   string             // the time column, for messages
	rollup string
	clock  string // the rollup's clock, for messages
}

// check folds the bound, checks that it falls on a bucket boundary and
// narrows [lo, hi); it returns the DuckDB predicate.
func (b *timeBound) check(f *foldCtx, raiseLo, lowerHi func(time.Time)) (string, *Reason) {
	v, ok := f.foldTime(b.v, b.kind)
	if !ok {
		return "", reason(ReasonFilterNotEvaluable, "cannot read the bound of %s as a time", b.name)
	}
	orig := v
	if v, ok = f.convertTime(v, b.kind); !ok {
		return "", reason(ReasonFilterNotEvaluable, "cannot compare %s with that value", b.name)
	}
	op := b.op
	if b.kind == vDate {
		if orig.kind != vDate {
			// Postgres compares a date with a time as the date's midnight
			// (in the session's zone for timestamptz): the same as comparing
			// dates only when the time is a midnight.
			if back, ok := f.convertTime(v, orig.kind); !ok || !back.t.Equal(orig.t) {
				return "", reason(ReasonUnalignedRange, "%s %s %s compares the date column with a time that is not a midnight; compare it with a date",
					b.name, b.op, timeLiteral(orig))
			}
		}
		// A date column's values are whole days: <= d is < d + 1 and > d
		// is >= d + 1, so BETWEEN two dates bounds whole days.
		switch op {
		case "<=":
			op, v.t = "<", v.t.AddDate(0, 0, 1)
		case ">":
			op, v.t = ">=", v.t.AddDate(0, 0, 1)
		}
	}
	switch {
	case b.exact:
		// A date at day grain: every comparison is exact (<= and > are
		// < and >= by now).
		switch op {
		case ">=":
			raiseLo(v.t)
		case "<":
			lowerHi(v.t)
		case "=":
			raiseLo(v.t)
			lowerHi(v.t.Add(24 * time.Hour))
		}
	case (op == ">=" || op == "<") && bucketEdge(v.t, b.cutLoc, b.grain):
		if op == ">=" {
			raiseLo(v.t)
		} else {
			lowerHi(v.t)
		}
	case (op == ">=" || op == "<") && truncTime(v.t.In(b.cutLoc), b.grain).Equal(v.t):
		return "", reason(ReasonUnalignedRange, "%s %s %s is the value date_trunc gives a %s of rollup %s, but that %s starts earlier: %s shows its midnight twice; use >= and < on other bucket boundaries",
			b.name, op, timeLiteral(v), b.grain, b.rollup, b.grain, b.clock)
	default:
		return "", reason(ReasonUnalignedRange, "%s %s %s does not fall on a %s boundary of rollup %s (in %s); use >= and < on bucket boundaries",
			b.name, op, timeLiteral(v), b.grain, b.rollup, b.clock)
	}
	return b.col + " " + op + " " + timeLiteral(v), nil
}

// timeRange recognises a comparison of the raw time column with a constant
// time; ok is false when w is not one. Bounds must fall on the rollup's
// bucket boundaries unless the raw column is itself exact.
func (m *matcher) timeRange(w *expr) ([]string, bool, *Reason) {
	if m.cr.timeCol == nil {
		return nil, false, nil
	}
	isTime := func(e *expr) bool { return e.kind == kCol && e.col != nil && m.cr.isTime(e.col) }
	type bound struct {
		op string
		v  *expr
	}
	var bs []bound
	switch {
	case w.kind == kOp && len(w.args) == 2 && isTime(w.args[0]):
		bs = []bound{{w.name, w.args[1]}}
	case w.kind == kOp && len(w.args) == 2 && isTime(w.args[1]):
		op, ok := flipped[w.name]
		if !ok {
			op = w.name
		}
		bs = []bound{{op, w.args[0]}}
	case w.kind == kBetween && !w.not && isTime(w.args[0]):
		bs = []bound{{">=", w.args[1]}, {"<=", w.args[2]}}
	default:
		return nil, false, nil
	}
	for _, b := range bs {
		switch b.op {
		case ">=", ">", "<", "<=", "=":
		default:
			return nil, false, nil
		}
	}
	k := kindOfType(m.cr.timeType)
	if k == 0 {
		k = vInstant
	}
	cutLoc := time.UTC
	if k == vInstant {
		cutLoc = m.buildLoc
	}
	var out []string
	for _, b := range bs {
		tb := &timeBound{op: b.op, v: b.v, kind: k, exact: m.exactRaw(), grain: m.cr.grain, cutLoc: cutLoc,
			col: `"r".` + sqlquote.Ident(layout.Time), name: m.timeName(), rollup: m.cr.st.Def.Name, clock: m.zoneOf()}
		if b.v.kind == kParam {
			if _, bound := m.paramType(b.v.param); !bound {
				return nil, true, reason(ReasonParameter, "parameter $%d is not bound", b.v.param)
			}
		}
		if dependsOnExecution(b.v) {
			out = append(out, m.deferSQL(func(x *execCtx) (string, *Reason) {
				return tb.check(&x.foldCtx, x.raiseLo, x.lowerHi)
			}))
			continue
		}
		s, r := tb.check(m.fc, m.raiseLo, m.lowerHi)
		if r != nil {
			return nil, true, r
		}
		out = append(out, s)
	}
	return out, true, nil
}

func (m *matcher) zoneOf() string {
	if kindOfType(m.cr.timeType) == vInstant || !m.cr.timeType.Known() {
		return m.buildZone
	}
	return "local time"
}

func (m *matcher) raiseLo(t time.Time) {
	if m.lo.IsZero() || t.After(m.lo) {
		m.lo = t
	}
}

func (m *matcher) lowerHi(t time.Time) {
	if m.hi.IsZero() || t.Before(m.hi) {
		m.hi = t
	}
}

// constraint is the set of values of one column for which a predicate is true.
type constraint struct {
	col     string
	kind    int // cIn, cNotIn, cNull, cNotNull, cRange
	vals    []string
	lo, hi  *big.Rat
	loInc   bool
	hiInc   bool
	numeric bool
}

const (
	cIn = iota + 1
	cNotIn
	cNull
	cNotNull
	cRange
)

// constraintOf reads simple one-column predicates: =, <>, IN, NOT IN,
// IS [NOT] NULL, and numeric ranges.
func constraintOf(e *expr) (constraint, bool) {
	colOf := func(x *expr) (string, bool) {
		if x.kind == kCast && x.args[0].kind == kCol && x.typ.Typmod == -1 && isTextOID(x.typ.OID) {
			x = x.args[0]
		}
		if x.kind == kCol && x.col != nil {
			return key(x), true
		}
		return "", false
	}
	val := func(x *expr) (string, bool) {
		for x.kind == kCast {
			x = x.args[0]
		}
		if x.kind == kConst && x.lit != litNull && x.lit != litBool {
			return x.str, true
		}
		if x.kind == kOp && x.name == "-" && len(x.args) == 1 && x.args[0].kind == kConst && (x.args[0].lit == litInt || x.args[0].lit == litNumeric) {
			return "-" + x.args[0].str, true
		}
		return "", false
	}
	switch e.kind {
	case kNullTest:
		c, ok := colOf(e.args[0])
		if !ok {
			return constraint{}, false
		}
		if e.not {
			return constraint{col: c, kind: cNotNull}, true
		}
		return constraint{col: c, kind: cNull}, true
	case kIn:
		c, ok := colOf(e.args[0])
		if !ok {
			return constraint{}, false
		}
		var vs []string
		for _, a := range e.args[1:] {
			v, ok := val(a)
			if !ok {
				return constraint{}, false
			}
			vs = append(vs, v)
		}
		if e.not {
			return constraint{col: c, kind: cNotIn, vals: vs}, true
		}
		return constraint{col: c, kind: cIn, vals: vs}, true
	case kNot:
		inner, ok := constraintOf(e.args[0])
		if !ok {
			return constraint{}, false
		}
		switch inner.kind {
		case cIn:
			inner.kind = cNotIn
			return inner, true
		case cNull:
			inner.kind = cNotNull
			return inner, true
		}
		return constraint{}, false
	case kOp:
		if len(e.args) != 2 {
			return constraint{}, false
		}
		op := e.name
		l, r := e.args[0], e.args[1]
		c, ok := colOf(l)
		if !ok {
			if c, ok = colOf(r); !ok {
				return constraint{}, false
			}
			l, r = r, l
			if f, ok := flipped[op]; ok {
				op = f
			}
		}
		v, ok := val(r)
		if !ok {
			return constraint{}, false
		}
		switch op {
		case "=":
			return constraint{col: c, kind: cIn, vals: []string{v}}, true
		case "<>":
			return constraint{col: c, kind: cNotIn, vals: []string{v}}, true
		case "<", "<=", ">", ">=":
			x, ok := new(big.Rat).SetString(v)
			if !ok {
				return constraint{}, false
			}
			k := constraint{col: c, kind: cRange, numeric: true}
			switch op {
			case "<":
				k.hi = x
			case "<=":
				k.hi, k.hiInc = x, true
			case ">":
				k.lo = x
			case ">=":
				k.lo, k.loInc = x, true
			}
			return k, true
		}
	case kBetween:
		if e.not {
			return constraint{}, false
		}
		c, ok := colOf(e.args[0])
		lv, ok1 := val(e.args[1])
		hv, ok2 := val(e.args[2])
		if !ok || !ok1 || !ok2 {
			return constraint{}, false
		}
		lo, ok1 := new(big.Rat).SetString(lv)
		hi, ok2 := new(big.Rat).SetString(hv)
		if !ok1 || !ok2 {
			return constraint{}, false
		}
		return constraint{col: c, kind: cRange, lo: lo, hi: hi, loInc: true, hiInc: true, numeric: true}, true
	}
	return constraint{}, false
}

// sameAsFilter reports whether w restricts a column to exactly the values
// one of the rollup's filters does, with the values written as string
// constants of the column's own type: 'paid' in a list, or 'paid'::text as
// a bound parameter's value is written in. Such a conjunct holds on every rollup row, and
// implies the filter. It returns the filter's index.
func (m *matcher) sameAsFilter(w *expr) (int, bool) {
	var c *expr
	var vals []*expr
	switch {
	case w.kind == kOp && w.name == "=" && len(w.args) == 2 && w.args[0].kind == kCol:
		c, vals = w.args[0], w.args[1:]
	case w.kind == kOp && w.name == "=" && len(w.args) == 2 && w.args[1].kind == kCol:
		c, vals = w.args[1], w.args[:1]
	case w.kind == kIn && !w.not && w.args[0].kind == kCol:
		c, vals = w.args[0], w.args[1:]
	default:
		return 0, false
	}
	if c.col == nil || c.col.column == nil {
		return 0, false
	}
	colType := c.col.column.Type.OID
	switch colType {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID:
	default:
		// Others read text by the session's settings (TimeZone,
		// DateStyle), which may differ from the build's.
		return 0, false
	}
	sameType := func(oid uint32) bool {
		textual := func(o uint32) bool { return o == pgtype.TextOID || o == pgtype.VarcharOID }
		return oid == colType || textual(oid) && textual(colType)
	}
	for _, v := range vals {
		// A string constant, untyped (Postgres gives it the column's
		// type) or cast once to the column's type (or between text and
		// varchar): the value is read by the type's own input function and
		// compared by its own equality, as the filter's is.
		if v.kind == kCast && v.typ.Typmod == -1 && sameType(v.typ.OID) {
			v = v.args[0]
		}
		if v.kind != kConst || v.lit != litString {
			return 0, false
		}
	}
	qc, ok := constraintOf(w)
	if !ok || qc.kind != cIn {
		return 0, false
	}
	for i, f := range m.cr.filters {
		fc, ok := constraintOf(f)
		if ok && fc.kind == cIn && fc.col == qc.col && subset(qc, fc) && subset(fc, qc) {
			return i, true
		}
	}
	return 0, false
}

// implied reports whether the query's conjuncts restrict rows to f.
func (m *matcher) implied(f *expr, conj []*expr) bool {
	fc, ok := constraintOf(f)
	if !ok {
		return false
	}
	var merged *constraint
	for _, w := range conj {
		qc, ok := constraintOf(w)
		if !ok || qc.col != fc.col {
			continue
		}
		if subset(qc, fc) {
			return true
		}
		if qc.kind == cRange {
			if merged == nil {
				c := qc
				merged = &c
			} else {
				if qc.lo != nil && (merged.lo == nil || qc.lo.Cmp(merged.lo) > 0 || (qc.lo.Cmp(merged.lo) == 0 && !qc.loInc)) {
					merged.lo, merged.loInc = qc.lo, qc.loInc
				}
				if qc.hi != nil && (merged.hi == nil || qc.hi.Cmp(merged.hi) < 0 || (qc.hi.Cmp(merged.hi) == 0 && !qc.hiInc)) {
					merged.hi, merged.hiInc = qc.hi, qc.hiInc
				}
			}
		}
	}
	return merged != nil && subset(*merged, fc)
}

// subset reports whether every value satisfying q satisfies f.
func subset(q, f constraint) bool {
	contains := func(vs []string, v string) bool {
		for _, x := range vs {
			if x == v {
				return true
			}
		}
		return false
	}
	switch q.kind {
	case cIn:
		switch f.kind {
		case cIn:
			for _, v := range q.vals {
				if !contains(f.vals, v) {
					return false
				}
			}
			return true
		case cNotIn:
			for _, v := range q.vals {
				if contains(f.vals, v) {
					return false
				}
			}
			return true
		case cNotNull:
			return true
		case cRange:
			for _, v := range q.vals {
				x, ok := new(big.Rat).SetString(v)
				if !ok || !inRange(x, f) {
					return false
				}
			}
			return true
		}
	case cNotIn:
		switch f.kind {
		case cNotIn:
			for _, v := range f.vals {
				if !contains(q.vals, v) {
					return false
				}
			}
			return true
		case cNotNull:
			return true
		}
	case cNull:
		return f.kind == cNull
	case cNotNull:
		return f.kind == cNotNull
	case cRange:
		switch f.kind {
		case cNotNull:
			return true
		case cRange:
			if f.lo != nil {
				if q.lo == nil || q.lo.Cmp(f.lo) < 0 || (q.lo.Cmp(f.lo) == 0 && q.loInc && !f.loInc) {
					return false
				}
			}
			if f.hi != nil {
				if q.hi == nil || q.hi.Cmp(f.hi) > 0 || (q.hi.Cmp(f.hi) == 0 && q.hiInc && !f.hiInc) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func inRange(x *big.Rat, f constraint) bool {
	if f.lo != nil {
		c := x.Cmp(f.lo)
		if c < 0 || (c == 0 && !f.loInc) {
			return false
		}
	}
	if f.hi != nil {
		c := x.Cmp(f.hi)
		if c > 0 || (c == 0 && !f.hiInc) {
			return false
		}
	}
	return true
}
