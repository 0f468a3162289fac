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
}

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
		if rec == nil {
			return nil, reason(ReasonFilterNotImplied, "rollup %s's filter %q is relative to the time of its build, and its version records no folded bound for it; "+
				"only a comparison of the time dimension with now(), current_date, current_timestamp or localtimestamp arithmetic is folded (rebuild it if it was built by an older pgrollup)",
				cr.st.Def.Name, text)
		}
		op, ok := "", false
		if f.kind == kOp && len(f.args) == 2 {
			switch {
			case f.args[0].kind == kCol && f.args[0].col != nil && cr.isTime(f.args[0].col):
				op, ok = f.name, true
			case f.args[1].kind == kCol && f.args[1].col != nil && cr.isTime(f.args[1].col):
				op, ok = flipped[f.name], true
			}
		}
		if !ok || op != rec.Op {
			return nil, reason(ReasonFilterNotImplied, "rollup %s's filter %q is relative to the time of its build and does not bound its time dimension; "+
				"a rolling window is matched only on the time dimension", cr.st.Def.Name, text)
		}
		k := kindOfType(cr.timeType)
		if k == 0 {
			k = vInstant
		}
		v := tval{kind: kindOfType(Type{OID: rec.TypeOID}), t: rec.Value}
		// The build compared the column with its bound as Postgres does in
		// build_timezone; the converted bound must mean the same rows.
		fc := &foldCtx{loc: m.buildLoc}
		cv, ok := fc.convertTime(v, k)
		back, ok2 := fc.convertTime(cv, v.kind)
		if v.kind == 0 || !ok || !ok2 || !back.t.Equal(v.t) {
			return nil, reason(ReasonFilterNotImplied, "rollup %s was built with %s, which is not a whole value of %s's type", cr.st.Def.Name, rec.SQL, m.timeName())
		}
		step := time.Microsecond
		if k == vDate {
			step = 24 * time.Hour
		}
		if w == nil {
			w = &rollingWindow{}
		}
		// Half-open ends: > x is >= x plus one step of the column's
		// resolution, <= x is < x plus one.
		bound := cv.t
		if op == ">" || op == "<=" {
			bound = bound.Add(step)
		}
		switch {
		case op != ">=" && op != ">" && op != "<" && op != "<=":
			return nil, reason(ReasonFilterNotImplied, "rollup %s was built with %s; only >=, >, < and <= windows are matched", cr.st.Def.Name, rec.SQL)
		case op == ">=" || op == ">":
			if w.lo.IsZero() || bound.After(w.lo) {
				w.lo = bound
			}
		case w.hi.IsZero() || bound.Before(w.hi):
			w.hi = bound
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
func (w *rollingWindow) check(cr *compiledRollup, lo, hi time.Time) *Reason {
	if w == nil {
		return nil
	}
	if (w.lo.IsZero() || (!lo.IsZero() && !lo.Before(w.lo))) && (w.hi.IsZero() || (!hi.IsZero() && !hi.After(w.hi))) {
		return nil
	}
	built := ""
	if !cr.st.BuiltAt.IsZero() {
		built = " at " + cr.st.BuiltAt.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	return reason(ReasonNotCovered, "rollup %s holds only the rows with %s (its filter %q, folded when it was built%s); the query's time range%s reaches outside that window; bound the time column inside it",
		cr.st.Def.Name, w.built, strings.Join(cr.st.Def.Filters, " AND "), built, rangeText(lo, hi))
}
