package rewrite

import (
	"strconv"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// A prepared candidate is translated once per statement text, catalog
// snapshot and session environment (zone, search path, parameter types), but
// parts of it depend on values that change with every execution: bound
// parameters and now(). Those parts are deferred: the translation emits a
// placeholder for each one into the SQL and records a slot, a function that
// computes the part's SQL (or a reason to refuse) from the execution's values.
//
// Whether a candidate matches may depend on those values too (a parameter may
// be off a bucket boundary), so the failures found while translating are
// recorded in order together with the slots, as steps, and replayed at each
// execution: the result is the failure with the lowest rule, the earliest on
// ties, exactly as if the whole translation had run with the values.

// execCtx is one execution: the values folded into deferred parts and the
// time range they restrict the query to.
type execCtx struct {
	foldCtx
	lo, hi time.Time
}

func (x *execCtx) raiseLo(t time.Time) {
	if x.lo.IsZero() || t.After(x.lo) {
		x.lo = t
	}
}

func (x *execCtx) lowerHi(t time.Time) {
	if x.hi.IsZero() || t.Before(x.hi) {
		x.hi = t
	}
}

// slotFn computes a deferred part of the SQL for one execution. It must only
// read x and values captured at preparation time, never the matcher, because
// executions run concurrently.
type slotFn func(x *execCtx) (string, *Reason)

// step is one entry of a candidate's failure program: a failure found while
// preparing, a slot to evaluate, or a group (the WHERE clause) whose own
// failure, or else orElse, counts as one failure.
type step struct {
	reason *Reason
	slot   int // index into the slots, or -1
	group  []step
	isGrp  bool
	orElse *Reason
}

// Placeholders in prepared SQL: NUL bytes never occur in statement text
// (Analyze refuses string constants holding one), so they cannot be forged.
const (
	markByte  = '\x00'
	filesMark = "\x00f\x00"
)

func slotMark(i int) string { return "\x00" + strconv.Itoa(i) + "\x00" }

// segment is a piece of a prepared SQL template: literal text, then
// optionally a slot's SQL (slot >= 0) or the file list (slot == segFiles).
type segment struct {
	text string
	slot int
}

const (
	segNone  = -1
	segFiles = -2
)

// parseTemplate splits prepared SQL at its placeholders.
func parseTemplate(sql string) ([]segment, bool) {
	var segs []segment
	for {
		i := strings.IndexByte(sql, markByte)
		if i < 0 {
			segs = append(segs, segment{text: sql, slot: segNone})
			return segs, true
		}
		j := strings.IndexByte(sql[i+1:], markByte)
		if j < 0 {
			return nil, false
		}
		name := sql[i+1 : i+1+j]
		seg := segment{text: sql[:i]}
		if name == "f" {
			seg.slot = segFiles
		} else {
			n, err := strconv.Atoi(name)
			if err != nil || n < 0 {
				return nil, false
			}
			seg.slot = n
		}
		segs = append(segs, seg)
		sql = sql[i+2+j:]
	}
}

// assemble fills a template with the slots' SQL and the file list.
func assemble(segs []segment, vals []string, files []string) string {
	n := 0
	for _, s := range segs {
		n += len(s.text)
		if s.slot >= 0 {
			n += len(vals[s.slot])
		}
	}
	for _, f := range files {
		n += len(f) + 4
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range segs {
		b.WriteString(s.text)
		switch {
		case s.slot >= 0:
			b.WriteString(vals[s.slot])
		case s.slot == segFiles:
			for i, f := range files {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(sqlquote.Literal(f))
			}
		}
	}
	return b.String()
}

// runSteps replays a failure program, evaluating every slot into vals, and
// returns the failure with the lowest rule (the earliest on ties).
func runSteps(steps []step, slots []slotFn, x *execCtx, vals []string) *Reason {
	var best *Reason
	note := func(r *Reason) {
		if r != nil && (best == nil || r.Code.Rule() < best.Code.Rule()) {
			best = r
		}
	}
	for i := range steps {
		s := &steps[i]
		switch {
		case s.isGrp:
			g := runSteps(s.group, slots, x, vals)
			if g == nil {
				g = s.orElse
			}
			note(g)
		case s.slot >= 0:
			v, r := slots[s.slot](x)
			vals[s.slot] = v
			note(r)
		default:
			note(s.reason)
		}
	}
	return best
}

// deferSQL records fn as a slot of the candidate being prepared and returns
// its placeholder.
func (m *matcher) deferSQL(fn slotFn) string {
	i := len(m.slots)
	m.slots = append(m.slots, fn)
	*m.steps = append(*m.steps, step{slot: i})
	return slotMark(i)
}

// fail records a failure found while preparing.
func (m *matcher) fail(r *Reason) {
	if r == nil {
		return
	}
	m.failed = true
	*m.steps = append(*m.steps, step{reason: r, slot: -1})
}

// mark and rollback bracket a tentative translation whose failure is not a
// failure of the candidate (another translation is tried instead): its slots
// must not be replayed.
type markPos struct{ slots, steps int }

func (m *matcher) mark() markPos { return markPos{len(m.slots), len(*m.steps)} }

func (m *matcher) rollback(p markPos) {
	m.slots = m.slots[:p.slots]
	*m.steps = (*m.steps)[:p.steps]
}

// dependsOnExecution reports whether e reads a bound parameter or the clock,
// so that its value must be computed at each execution.
func dependsOnExecution(e *expr) bool {
	found := false
	walk(e, func(x *expr) bool {
		switch {
		case x.kind == kParam, x.kind == kSVF:
			found = true
		case x.kind == kFunc && (x.name == "now" || x.name == "transaction_timestamp"):
			found = true
		}
		return !found
	})
	return found
}
