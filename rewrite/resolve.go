package rewrite

import (
	"sort"
	"strings"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// rangeEntry is a table visible to column references, like a Postgres RTE.
type rangeEntry struct {
	schema  string // resolved schema
	name    string // relation name
	alias   string // name that qualifies its columns
	aliased bool   // an alias hides the relation name
	table   *Table
	qname   string // schema.name, set by setSchema
}

// setSchema sets the resolved schema and the qualified name with it.
func (r *rangeEntry) setSchema(s string) *rangeEntry {
	r.schema, r.qname = s, s+"."+r.name
	return r
}

func (r *rangeEntry) full() string { return r.qname }

// colBinding is a resolved column reference.
type colBinding struct {
	entry  *rangeEntry
	column *Column
}

// scope resolves column references against the tables in FROM.
type scope struct {
	entries []*rangeEntry
	partial bool // column lists are incomplete (offline)
	// factOnly: unqualified names belong to the first entry (config
	// definitions say "status" for the fact table's column).
	factOnly bool
}

// resolveColumn binds a column reference the way Postgres would, or says why not.
func (s *scope) resolveColumn(e *expr) (*colBinding, *Reason) {
	name := e.name
	var cands []*rangeEntry
	switch len(e.qual) {
	case 0:
		cands = s.entries
		if s.factOnly {
			cands = s.entries[:1]
		}
	case 1:
		for _, r := range s.entries {
			if r.alias == e.qual[0] {
				cands = append(cands, r)
			}
		}
	case 2:
		for _, r := range s.entries {
			if !r.aliased && r.schema == e.qual[0] && r.name == e.qual[1] {
				cands = append(cands, r)
			}
		}
	default:
		return nil, reason(ReasonUnknownColumn, "cross-database reference %s is passed through", dotted(e))
	}
	if len(e.qual) > 0 && len(cands) == 0 {
		return nil, reason(ReasonUnknownColumn, "missing FROM-clause entry for %s", strings.Join(e.qual, "."))
	}
	var found *colBinding
	for _, r := range cands {
		if r.table == nil {
			continue
		}
		if c := r.table.column(name); c != nil {
			if found != nil {
				return nil, reason(ReasonAmbiguousColumn, "column reference %q is ambiguous", name)
			}
			found = &colBinding{entry: r, column: c}
		}
	}
	if found == nil {
		if s.partial {
			return nil, reason(ReasonNotDimension, "column %s is not a dimension of any rollup", dotted(e))
		}
		return nil, reason(ReasonUnknownColumn, "column %s does not exist", dotted(e))
	}
	return found, nil
}

func dotted(e *expr) string {
	if len(e.qual) == 0 {
		return e.name
	}
	return strings.Join(e.qual, ".") + "." + e.name
}

// bindAll resolves every column reference in e in place.
func (s *scope) bindAll(e *expr) *Reason {
	var bad *Reason
	walk(e, func(x *expr) bool {
		if bad != nil {
			return false
		}
		if x.kind == kCol && x.col == nil {
			b, r := s.resolveColumn(x)
			if r != nil {
				bad = r
				return false
			}
			x.col = b
		}
		return true
	})
	return bad
}

// key renders a resolved expression canonically: two expressions with the same
// key compute the same value on every row. Casts of a column to its own type
// (which Postgres adds or drops freely) are removed; names are resolved.
func key(e *expr) string {
	if e != nil && e.memo != "" {
		return e.memo
	}
	var b strings.Builder
	writeKey(&b, e)
	k := b.String()
	if e != nil && e.private && (e.kind != kCol || e.col != nil) && bound(e) {
		e.memo = k
	}
	return k
}

// bound reports whether every column under e is resolved, so its key is final.
func bound(e *expr) bool {
	ok := true
	walk(e, func(x *expr) bool {
		if x.kind == kCol && x.col == nil {
			ok = false
		}
		return ok
	})
	return ok
}

// writeConst writes a literal as SQL: NULL, a quoted string, or its text.
func writeConst(b *strings.Builder, e *expr) {
	switch e.lit {
	case litNull:
		b.WriteString("NULL")
	case litString:
		b.WriteString(sqlquote.Literal(e.str))
	default:
		b.WriteString(e.str)
	}
}

func writeKey(b *strings.Builder, e *expr) {
	if e == nil {
		b.WriteString("~")
		return
	}
	if e.memo != "" {
		b.WriteString(e.memo)
		return
	}
	switch e.kind {
	case kCol:
		if e.col != nil {
			b.WriteString(e.col.entry.full())
			b.WriteByte('.')
			b.WriteString(e.col.column.Name)
			return
		}
		b.WriteString(dotted(e))
	case kConst:
		writeConst(b, e)
	case kParam:
		b.WriteString("$" + itoa(e.param))
	case kCast:
		if e.args[0].kind == kCol && e.args[0].col != nil && e.args[0].col.column.Type.OID == e.typ.OID && e.typ.Typmod == -1 && e.typ.OID != 0 {
			writeKey(b, e.args[0])
			return
		}
		b.WriteString("cast(")
		writeKey(b, e.args[0])
		b.WriteString(" as " + itoa(int(e.typ.OID)) + "/" + itoa(int(e.typ.Typmod)) + ")")
	case kFunc:
		b.WriteString(e.name)
		b.WriteByte('(')
		if e.distinct {
			b.WriteString("distinct ")
		}
		if e.star || (e.name == "count" && len(e.args) == 1 && isNonNullConst(e.args[0])) {
			b.WriteByte('*')
		}
		if !(e.name == "count" && len(e.args) == 1 && isNonNullConst(e.args[0])) {
			for i, a := range e.args {
				if i > 0 {
					b.WriteByte(',')
				}
				writeKey(b, a)
			}
		}
		b.WriteByte(')')
		if e.filter != nil {
			b.WriteString(" filter(")
			writeKey(b, e.filter)
			b.WriteByte(')')
		}
	case kAnd, kOr:
		// Conjunct and disjunct order does not change the value.
		parts := make([]string, len(e.args))
		for i, a := range e.args {
			parts[i] = key(a)
		}
		sort.Strings(parts)
		if e.kind == kAnd {
			b.WriteString("and(")
		} else {
			b.WriteString("or(")
		}
		b.WriteString(strings.Join(parts, ","))
		b.WriteByte(')')
	case kOp:
		if len(e.args) == 2 && (e.name == "=" || e.name == "<>" || e.name == "+" || e.name == "*") {
			l, r := key(e.args[0]), key(e.args[1])
			if r < l {
				l, r = r, l
			}
			b.WriteString("(" + l + " " + e.name + " " + r + ")")
			return
		}
		if len(e.args) == 2 {
			if flip, ok := flipped[e.name]; ok && key(e.args[1]) < key(e.args[0]) {
				b.WriteString("(" + key(e.args[1]) + " " + flip + " " + key(e.args[0]) + ")")
				return
			}
		}
		b.WriteByte('(')
		for i, a := range e.args {
			if i > 0 || len(e.args) == 1 {
				b.WriteString(" " + e.name + " ")
			}
			writeKey(b, a)
		}
		b.WriteByte(')')
	default:
		b.WriteString(kindNames[e.kind])
		if e.not {
			b.WriteString("not")
		}
		b.WriteString(e.name)
		b.WriteByte('(')
		if e.caseArg != nil {
			writeKey(b, e.caseArg)
			b.WriteByte(';')
		}
		for i, a := range e.args {
			if i > 0 {
				b.WriteByte(',')
			}
			writeKey(b, a)
		}
		b.WriteByte(')')
	}
}

var flipped = map[string]string{"<": ">", ">": "<", "<=": ">=", ">=": "<="}

var kindNames = map[kind]string{
	kAnd: "and", kOr: "or", kNot: "not", kIn: "in", kBetween: "between", kNullTest: "isnull",
	kCase: "case", kCoalesce: "coalesce", kNullIf: "nullif", kMinMax: "minmax", kSVF: "svf", kStar: "*",
	kCollate: "collate",
}

func isNonNullConst(e *expr) bool {
	return e.kind == kConst && e.lit != litNull
}

// conjuncts splits an AND tree into its parts.
func conjuncts(e *expr) []*expr {
	if e == nil {
		return nil
	}
	if e.kind == kAnd {
		var out []*expr
		for _, a := range e.args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*expr{e}
}
