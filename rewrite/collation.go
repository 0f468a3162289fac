package rewrite

import (
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// Collation is a text column's collation as the warehouse's catalog
// (pg_collation) describes it.
type Collation struct {
	// Name is pg_collation.collname: "C", "POSIX", "en_US", "en-US-x-icu".
	Name string
	// SQL names it in a statement whatever the session's search_path:
	// schema-qualified and quoted, as pg_catalog."C".
	SQL string
	// Bytewise: a libc collation whose LC_COLLATE is C or POSIX. Postgres
	// then compares text byte by byte, exactly as DuckDB compares VARCHAR.
	Bytewise bool
	// Nondeterministic: an ICU collation that calls different strings equal
	// (deterministic = false), so that even equality, and therefore GROUP BY
	// and DISTINCT, depend on it.
	Nondeterministic bool
}

// Collations the warehouse has in every database, which a statement may
// name with COLLATE: both compare bytewise.
var (
	collationC     = &Collation{Name: "C", SQL: `pg_catalog."C"`, Bytewise: true}
	collationPOSIX = &Collation{Name: "POSIX", SQL: `pg_catalog."POSIX"`, Bytewise: true}
)

// collStrength is Postgres's collation derivation (parse_collate.c).
type collStrength uint8

const (
	collNone     collStrength = iota // the value is not text: no collation
	collImplicit                     // columns, constants and what is computed from them
	collExplicit                     // a COLLATE clause
)

// exprColl is the collation Postgres derives for an expression.
type exprColl struct {
	coll     *Collation // nil: the database's default collation
	strength collStrength
	// conflict: two different implicit collations meet, so the collation is
	// indeterminate and Postgres refuses to order with it.
	conflict bool
	// unsure: the rewriter cannot tell the collation.
	unsure bool
}

// merge combines the collation of one more input as Postgres's
// merge_collation_state does: an explicit collation wins, and among implicit
// ones a collation other than the default wins over the default.
func (c exprColl) merge(o exprColl) exprColl {
	switch {
	case o.unsure || c.unsure:
		return exprColl{unsure: true}
	case o.strength == collNone:
		return c
	case c.strength == collNone || o.strength > c.strength:
		return o
	case o.strength < c.strength:
		return c
	case sameCollation(c.coll, o.coll):
		c.conflict = c.conflict || o.conflict
		return c
	case c.strength == collExplicit:
		// Two different explicit collations: Postgres's own error.
		return exprColl{unsure: true}
	case c.coll == nil:
		return o
	case o.coll == nil:
		return c
	}
	c.conflict = true
	return c
}

func sameCollation(a, b *Collation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Name == b.Name
}

// collationOf derives the collation of a bound expression as Postgres would,
// for the expressions the rewriter translates: a column has its own
// collation, a constant or parameter the default, COLLATE its own, and a
// value computed from text the combination of its text inputs. Anything
// else is unsure.
func collationOf(e *expr) exprColl {
	var c exprColl
	switch e.kind {
	case kCol:
		if e.col == nil {
			return exprColl{unsure: true}
		}
		t := e.col.column.Type
		if t.Known() && !isTextOID(t.OID) {
			return exprColl{}
		}
		return exprColl{coll: e.col.column.Collation, strength: collImplicit}
	case kConst:
		if e.lit == litString || e.lit == litNull {
			return exprColl{strength: collImplicit}
		}
		return exprColl{}
	case kParam:
		return exprColl{strength: collImplicit}
	case kCollate:
		if coll := namedCollation(e); coll != nil {
			return exprColl{coll: coll, strength: collExplicit}
		}
		return exprColl{unsure: true}
	case kCast:
		if !isTextOID(e.typ.OID) {
			return exprColl{}
		}
		c = collationOf(e.args[0])
		if c.strength == collNone && !c.unsure {
			// A value of another type cast to text: the default collation.
			c = exprColl{strength: collImplicit}
		}
		return c
	case kCase:
		for i := 1; i < len(e.args)-1; i += 2 {
			c = c.merge(collationOf(e.args[i]))
		}
		if last := e.args[len(e.args)-1]; last != nil {
			c = c.merge(collationOf(last))
		}
		return c
	case kCoalesce, kNullIf, kMinMax:
		for _, a := range e.args {
			c = c.merge(collationOf(a))
		}
		return c
	case kFunc:
		switch e.name {
		case "min", "max":
			for _, a := range e.args {
				c = c.merge(collationOf(a))
			}
			return c
		case "to_char":
			return exprColl{strength: collImplicit}
		case "count", "sum", "avg", "date_trunc", "extract", "date_part", "timezone":
			return exprColl{}
		}
	case kAnd, kOr, kNot, kIn, kBetween, kNullTest, kSVF:
		return exprColl{}
	case kOp:
		switch e.name {
		case "=", "<>", "<", "<=", ">", ">=", "~~", "!~~", "is distinct from", "is not distinct from", "+", "-", "*", "/":
			return exprColl{}
		}
	}
	return exprColl{unsure: true}
}

// namedCollation is the collation a COLLATE clause names, if it is one the
// rewriter knows: "C" or "POSIX", unqualified or in pg_catalog.
func namedCollation(e *expr) *Collation {
	if len(e.qual) > 1 || (len(e.qual) == 1 && e.qual[0] != "pg_catalog") {
		return nil
	}
	switch e.name {
	case "C":
		return collationC
	case "POSIX":
		return collationPOSIX
	}
	return nil
}

// textCollation is the one place that decides whether DuckDB, which compares
// text byte by byte, can compute what Postgres computes under a collation:
// ordering, ranges, comparisons, min and max of text, whose operands are es.
// It returns nil when the collation Postgres uses for them (derived from es
// by Postgres's rules) compares bytewise too, and otherwise the `collation`
// refusal: then only the warehouse can compute it.
func (c *Catalog) textCollation(es ...*expr) *Reason {
	var ec exprColl
	for _, e := range es {
		if e != nil {
			ec = ec.merge(collationOf(e))
		}
	}
	switch {
	case ec.unsure:
		return reason(ReasonCollation, "ordering or comparing text needs a collation pgrollup cannot tell here; order by col COLLATE \"C\" to have it computed on rollups")
	case ec.conflict:
		return reason(ReasonCollation, "the text values compared have different collations, which Postgres does not order by")
	case ec.coll != nil && ec.coll.Bytewise:
		return nil
	case ec.coll != nil:
		return reason(ReasonCollation, "ordering or comparing text under collation %q needs the warehouse, as DuckDB compares bytewise; use COLLATE \"C\" to order bytewise", ec.coll.Name)
	case ec.strength != collNone && c.TextSortsBytewise:
		return nil
	}
	return reason(ReasonCollation, "ordering or comparing text under the database's default collation needs the warehouse, as DuckDB compares bytewise (only C and POSIX do); use COLLATE \"C\" to order bytewise")
}

// nondeterministic returns the `collation` refusal when e reads a column
// whose collation is nondeterministic: equality, grouping and DISTINCT
// then depend on the collation, which DuckDB does not have.
func nondeterministic(e *expr) *Reason {
	var r *Reason
	walk(e, func(x *expr) bool {
		if x.kind == kCol && x.col != nil && x.col.column.Collation != nil && x.col.column.Collation.Nondeterministic {
			r = reason(ReasonCollation, "column %s has the nondeterministic collation %q, under which even equality needs the warehouse", dotted(x), x.col.column.Collation.Name)
		}
		return r == nil
	})
	return r
}

// orderable checks that ordering values of t is the same in DuckDB; es are
// the values ordered or compared, whose collation decides for text.
func (m *matcher) orderable(t Type, es ...*expr) *Reason {
	if isTextOID(t.OID) && t.OID != pgtype.BPCharOID {
		if r := m.cat.textCollation(es...); r != nil {
			return r
		}
	}
	return orderableType(t)
}

// orderExpr is the expression an ORDER BY item of the aggregate orders by.
func (m *matcher) orderExpr(o orderRef) *expr {
	if o.target >= 0 {
		return m.q.core.targets[o.target].expr
	}
	return o.expr
}

// storedOrderable checks that the min or max stored in part p may be
// re-aggregated by DuckDB. The warehouse computed each stored value under
// the argument's collation; DuckDB may take the min of several of them only
// if it orders them the same way. At the rollup's exact grain each group is
// one stored row, whose value is returned as it is.
func (m *matcher) storedOrderable(t Type, p storedPart) *Reason {
	var arg *expr
	if p.measure >= 0 && p.measure < len(m.cr.measures) {
		arg = m.cr.measures[p.measure].arg
	}
	if arg != nil {
		if r := nondeterministic(arg); r != nil {
			return r
		}
	}
	r := m.orderable(t, arg)
	if r == nil || r.Code != ReasonCollation || !isTextOID(t.OID) || t.OID == pgtype.BPCharOID || arg == nil {
		return r
	}
	if m.exactGrain() == nil {
		return nil
	}
	return r
}

// nondeterministicIn returns the `collation` refusal when the statement
// reads a column of a nondeterministic collation anywhere.
func (q *boundQuery) nondeterministicIn() *Reason {
	es := append([]*expr{q.core.having}, q.where...)
	es = append(es, q.groupBy...)
	for _, t := range q.core.targets {
		es = append(es, t.expr)
	}
	for _, o := range q.order {
		es = append(es, o.expr)
	}
	for _, e := range es {
		if e == nil {
			continue
		}
		if r := nondeterministic(e); r != nil {
			return r
		}
	}
	return nil
}

// collateSQL translates x COLLATE "C" (or "POSIX") of text: the value is
// unchanged, and only the collation, which textCollation reads from the
// expression, makes ordering it bytewise. Other collations are left to the
// warehouse.
func (m *matcher) collateSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	if namedCollation(e) == nil {
		return "", errType, reason(ReasonCollation, "COLLATE %s is computed only by the warehouse; COLLATE \"C\" and \"POSIX\" are answered from rollups", sqlquote.Ident(e.name))
	}
	s, t, r := sub(e.args[0])
	if r != nil {
		return "", errType, r
	}
	if t.Known() && !isTextOID(t.OID) {
		return "", errType, reason(ReasonExpression, "COLLATE on %s is not supported on rollups", typeName(t))
	}
	return s, t, nil
}
