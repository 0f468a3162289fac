package rewrite

import (
	"strings"
	"time"
)

// Window is one of a rollup's filter conjuncts that is relative to the clock
// (`created_at >= date_trunc('day', now()) - interval '52 weeks'`), as the
// active version's build folded it: the version holds exactly the rows whose
// column compares with Value as Op says, Value computed once at the build's
// now() in build_timezone (rollup.Window).
type Window struct {
	// Conjunct is the conjunct's position among the definition's filters,
	// each split at its top-level ANDs, in order.
	Conjunct int
	// Op is the comparison with the column on its left: >=, >, < or <=.
	Op string
	// Value is an instant for a timestamptz bound, the wall clock held in UTC
	// for timestamp and date bounds.
	Value time.Time
	// TypeOID is the bound's type: timestamptz, timestamp or date.
	TypeOID uint32
	// SQL is the condition the build read rows with, for messages.
	SQL string
}

// rollingWindow is the range of the raw time column over which a version
// built with clock-relative filters holds every row: [lo, hi), a zero end
// unbounded. Its ends are in the time column's units (instants for
// timestamptz, wall clocks held in UTC otherwise), as the query's range is.
type rollingWindow struct {
	lo, hi time.Time
	built  string // the conditions the build read, for messages
	// offline: bounds no build folded (pgrollup explain's catalog), folded
	// at each execution as a build at that instant would.
	offline []offlineEnd
	kind    valueKind
	loc     *time.Location // build_timezone
}

// offlineEnd is a clock-relative bound of the time column, op with the
// column on its left.
type offlineEnd struct {
	op    string
	bound *expr
	text  string // the column, for messages
}

// narrowWindow narrows [lo, hi) by the build's condition `column op v`, with
// v converted to the column's kind k as Postgres compares them in loc. ok is
// false when the converted bound would not mean the same rows.
func narrowWindow(lo, hi time.Time, op string, v tval, k valueKind, loc *time.Location) (time.Time, time.Time, bool) {
	fc := &foldCtx{loc: loc}
	cv, ok := fc.convertTime(v, k)
	back, ok2 := fc.convertTime(cv, v.kind)
	if v.kind == 0 || !ok || !ok2 || !back.t.Equal(v.t) {
		return lo, hi, false
	}
	step := time.Microsecond
	if k == vDate {
		step = 24 * time.Hour
	}
	// Half-open ends: > x is >= x plus one step of the column's resolution,
	// <= x is < x plus one.
	bound := cv.t
	if op == ">" || op == "<=" {
		bound = bound.Add(step)
	}
	switch op {
	case ">=", ">":
		if lo.IsZero() || bound.After(lo) {
			lo = bound
		}
	case "<", "<=":
		if hi.IsZero() || bound.Before(hi) {
			hi = bound
		}
	default:
		return lo, hi, false
	}
	return lo, hi, true
}

// offlineVersion is the version of every rollup of an offline catalog.
const offlineVersion = "offline"

// readsClock reports whether a rollup's filter conjunct depends on when it is
// evaluated; such a filter means what its build's clock made it mean.
func readsClock(e *expr) bool {
	found := false
	walk(e, func(x *expr) bool {
		switch {
		case x.kind == kSVF:
			found = true
		case x.kind == kFunc:
			switch x.name {
			case "now", "transaction_timestamp", "statement_timestamp", "clock_timestamp", "timeofday", "random":
				found = true
			}
		}
		return !found
	})
	return found
}

// window works out the time range the active version's clock-relative
// filters restrict its rows to. A relative filter that the version recorded
// no folded value for, or that bounds anything but the time dimension, makes
// the rollup unusable: what its rows mean is known only at its build's
// instant.
func (m *matcher) window() (*rollingWindow, *Reason) {
	cr := m.cr
	if cr.st.Version == "" {
		return nil, nil // nothing built: rule 8 says so
	}
	var w *rollingWindow
	for i, f := range cr.filters {
		if !cr.relative[i] {
			continue
		}
		var rec *Window
		for j := range cr.st.Windows {
			if cr.st.Windows[j].Conjunct == i {
				rec = &cr.st.Windows[j]
			}
		}
		text := strings.Join(cr.st.Def.Filters, " AND ")
		offline := rec == nil && cr.st.Version == offlineVersion
		if rec == nil && !offline {
			return nil, reason(ReasonFilterNotImplied, "rollup %s's filter %q is relative to the time of its build, and its version records no folded bound for it; "+
				"only a comparison of the time dimension with now(), current_date, current_timestamp or localtimestamp arithmetic is folded (rebuild it if it was built by an older pgrollup)",
				cr.st.Def.Name, text)
		}
		op, bound, ok := "", (*expr)(nil), false
		if f.kind == kOp && len(f.args) == 2 {
			switch {
			case f.args[0].kind == kCol && f.args[0].col != nil && cr.isTime(f.args[0].col):
				op, bound, ok = f.name, f.args[1], true
			case f.args[1].kind == kCol && f.args[1].col != nil && cr.isTime(f.args[1].col):
				op, bound, ok = flipped[f.name], f.args[0], true
			}
		}
		if !ok || (rec != nil && op != rec.Op) {
			return nil, reason(ReasonFilterNotImplied, "rollup %s's filter %q is relative to the time of its build and does not bound its time dimension; "+
				"a rolling window is matched only on the time dimension", cr.st.Def.Name, text)
		}
		k := kindOfType(cr.timeType)
		if k == 0 {
			k = vInstant
		}
		if w == nil {
			w = &rollingWindow{kind: k, loc: m.buildLoc}
		}
		if offline {
			w.offline = append(w.offline, offlineEnd{op: op, bound: bound, text: m.timeName()})
			continue
		}
		v := tval{kind: kindOfType(Type{OID: rec.TypeOID}), t: rec.Value}
		// The build compared the column with its bound as Postgres does in
		// build_timezone; the converted bound must mean the same rows.
		if w.lo, w.hi, ok = narrowWindow(w.lo, w.hi, op, v, k, m.buildLoc); !ok {
			return nil, reason(ReasonFilterNotImplied, "rollup %s was built with %s, which is not a whole value of %s's type or not a >=, >, < or <= bound", cr.st.Def.Name, rec.SQL, m.timeName())
		}
		if w.built != "" {
			w.built += " AND "
		}
		w.built += rec.SQL
	}
	return w, nil
}

// check applies the window to a query restricted to [lo, hi) of the time
// column: every row the query reads must be one the build read.
func (w *rollingWindow) check(cr *compiledRollup, x *execCtx) *Reason {
	if w == nil {
		return nil
	}
	lo, hi := x.lo, x.hi
	wlo, whi, built := w.lo, w.hi, w.built
	for _, e := range w.offline {
		fc := &foldCtx{loc: w.loc, now: x.now, live: true, zones: x.zones}
		v, ok := fc.foldTime(e.bound, w.kind)
		if ok {
			wlo, whi, ok = narrowWindow(wlo, whi, e.op, v, w.kind, w.loc)
		}
		if !ok {
			return reason(ReasonFilterNotImplied, "rollup %s's filter %q cannot be folded to a bound of %s", cr.st.Def.Name, strings.Join(cr.st.Def.Filters, " AND "), e.text)
		}
		if built != "" {
			built += " AND "
		}
		built += e.text + " " + e.op + " " + timeLiteral(v)
	}
	if (wlo.IsZero() || (!lo.IsZero() && !lo.Before(wlo))) && (whi.IsZero() || (!hi.IsZero() && !hi.After(whi))) {
		return nil
	}
	at := ""
	if !cr.st.BuiltAt.IsZero() {
		at = " at " + cr.st.BuiltAt.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	return reason(ReasonNotCovered, "rollup %s holds only the rows with %s (its filter %q, folded when it was built%s); the query's time range%s reaches outside that window; bound the time column inside it",
		cr.st.Def.Name, built, strings.Join(cr.st.Def.Filters, " AND "), at, rangeText(lo, hi))
}
