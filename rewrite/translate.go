package rewrite

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// sqlFn translates a sub-expression in some context.
type sqlFn func(*expr) (string, Type, *Reason)

var errType = unknownType

// row translates an expression evaluated on each rollup row: dimensions,
// time buckets derivable from the stored bucket, constants.
func (m *matcher) row(e *expr) (string, Type, *Reason) { return m.rowIn(e, false) }

func (m *matcher) rowIn(e *expr, inCut bool) (string, Type, *Reason) {
	if !inCut && m.cr.timeCol != nil {
		if s, t, ok, r := m.epochBucket(e); ok {
			return s, t, r
		}
		if c, ok, r := m.cutOf(e); ok {
			if r != nil {
				return "", errType, r
			}
			if r := m.checkCut(c); r != nil {
				return "", errType, r
			}
			return m.generic(e, func(x *expr) (string, Type, *Reason) { return m.rowIn(x, true) })
		}
	}
	switch e.kind {
	case kCol:
		if d := m.cr.dim(e.col); d != nil {
			if d.asText {
				return "", errType, reason(ReasonNotDimension, "dimension %s of rollup %s has type %s, which the rollup stores as text; it is not used on rollups", dotted(e), m.cr.st.Def.Name, typeName(e.col.column.Type))
			}
			return `"r".` + sqlquote.Ident(d.phys), e.col.column.Type, nil
		}
		if m.cr.isTime(e.col) {
			t := m.cr.timeType
			if !t.Known() {
				t = plain(pgtype.TimestamptzOID)
			}
			if inCut || m.exactRaw() {
				return `"r".` + sqlquote.Ident(layout.Time), t, nil
			}
			return "", errType, reason(ReasonGrain, "the raw time column %s is finer than rollup %s's %s grain; bucket it with date_trunc", e.name, m.cr.st.Def.Name, m.cr.grain)
		}
		return "", errType, reason(ReasonNotDimension, "column %s is not a dimension of rollup %s", dotted(e), m.cr.st.Def.Name)
	case kFunc:
		if aggregateFuncs[e.name] {
			return "", errType, reason(ReasonShape, "aggregate functions are not allowed here")
		}
	}
	return m.generic(e, func(x *expr) (string, Type, *Reason) { return m.rowIn(x, inCut) })
}

// grp translates an expression evaluated once per result group.
func (m *matcher) grp(e *expr) (string, Type, *Reason) {
	if e.kind != kConst && e.kind != kParam && m.q.gkeys[key(e)] {
		return m.row(e)
	}
	if e.kind == kFunc && aggregateFuncs[e.name] {
		return m.agg(e)
	}
	if s, t, ok, r := m.numericDivision(e); ok {
		return s, t, r
	}
	if s, t, ok, r := m.coalescedSum(e); ok {
		return s, t, r
	}
	if e.kind == kCol {
		return "", errType, reason(ReasonShape, "column %s must appear in the GROUP BY clause or be used in an aggregate function (Postgres reports this)", dotted(e))
	}
	return m.generic(e, m.grp)
}

// isUntyped reports whether e is a literal or parameter whose type comes from context.
func (m *matcher) isUntyped(e *expr) bool {
	switch e.kind {
	case kConst:
		return e.lit == litString || e.lit == litNull
	case kParam:
		t, ok := m.paramType(e.param)
		return ok && (t == 0 || t == pgtype.UnknownOID)
	}
	return false
}

var (
	intRE = regexp.MustCompile(`^\s*[+-]?[0-9]+\s*$`)
	numRE = regexp.MustCompile(`^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$`)
)

// literal renders the text s as a DuckDB value of Postgres type t, checked
// the way Postgres's input function would check it; ok is false when
// Postgres would reject it or the rewriter cannot be sure of the value. A
// time is folded from e (the literal or parameter s came from) with f.
func literal(f *foldCtx, s string, t Type, e *expr) (string, bool) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", false // no Postgres type's text form holds NUL
	}
	switch {
	case isTextOID(t.OID):
		if t.OID == pgtype.BPCharOID || t.Typmod >= 0 {
			return "", false // padding and length semantics
		}
		return sqlquote.Literal(s), true
	case isIntegerOID(t.OID):
		if !intRE.MatchString(s) {
			return "", false
		}
		d, _ := duckType(t)
		return "CAST(" + sqlquote.Literal(strings.TrimSpace(s)) + " AS " + d + ")", true
	case t.OID == pgtype.NumericOID || isFloatOID(t.OID):
		if !numRE.MatchString(s) {
			return "", false
		}
		if t.OID == pgtype.NumericOID {
			return "CAST(" + sqlquote.Literal(strings.TrimSpace(s)) + " AS DECIMAL(38," + itoa(literalScale(s)) + "))", true
		}
		d, _ := duckType(t)
		return "CAST(" + sqlquote.Literal(strings.TrimSpace(s)) + " AS " + d + ")", true
	case t.OID == pgtype.BoolOID:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "t", "true", "yes", "on", "1", "y":
			return "TRUE", true
		case "f", "false", "no", "off", "0", "n":
			return "FALSE", true
		}
		return "", false
	case isTimeOID(t.OID):
		v, ok := f.foldTime(e, kindOfType(t))
		if !ok {
			return "", false
		}
		v, ok = f.convertTime(v, kindOfType(t))
		if !ok {
			return "", false
		}
		return timeLiteral(v), true
	case !t.Known():
		return sqlquote.Literal(s), true
	}
	return "", false
}

func literalScale(s string) int {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "eE") {
		return 0
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// typed translates e, giving an untyped literal or parameter type t.
func (m *matcher) typed(e *expr, t Type, sub sqlFn) (string, Type, *Reason) {
	if !m.isUntyped(e) {
		return sub(e)
	}
	if e.kind == kConst && e.lit == litNull {
		return nullOf(t), t, nil
	}
	if e.kind == kParam {
		n := e.param
		return m.deferSQL(func(x *execCtx) (string, *Reason) {
			p, _ := x.param(n)
			if p.Null {
				return nullOf(t), nil
			}
			lit, ok := literal(&x.foldCtx, p.Value, t, e)
			if !ok {
				return "", reason(ReasonExpression, "value %s of $%d cannot be read as %s here", sqlquote.Literal(p.Value), n, typeName(t))
			}
			return lit, nil
		}), t, nil
	}
	lit, ok := literal(m.fc, e.str, t, e)
	if !ok {
		return "", errType, reason(ReasonExpression, "value %s cannot be read as %s here", sqlquote.Literal(e.str), typeName(t))
	}
	return lit, t, nil
}

// operandType is the type an untyped literal or parameter takes opposite a
// value of type t in an operator, IN or BETWEEN: t, without the length of a
// varchar. varchar has no operators of its own, so Postgres compares a
// varchar(n) column with a literal as text with text, and the literal is
// never cut to n characters, as a cast to varchar(n) would cut it.
func operandType(t Type) Type {
	if t.OID == pgtype.VarcharOID {
		t.Typmod = -1
	}
	return t
}

// nullOf is a NULL of Postgres type t in DuckDB.
func nullOf(t Type) string {
	if d, ok := duckType(t); ok {
		return "CAST(NULL AS " + d + ")"
	}
	return "NULL"
}

// foldable reports whether e is a constant time expression to fold once.
func foldable(e *expr) bool {
	switch e.kind {
	case kSVF:
		return true
	case kFunc:
		if e.name == "now" || e.name == "transaction_timestamp" {
			return true
		}
		if e.name == "to_timestamp" || e.name == "to_date" {
			return !hasColumnOrAgg(e)
		}
		if e.name == "date_trunc" || e.name == "timezone" {
			return !hasColumnOrAgg(e)
		}
	case kOp:
		return (e.name == "+" || e.name == "-") && len(e.args) == 2 && !hasColumnOrAgg(e) && (foldable(e.args[0]) || foldable(e.args[1]))
	case kCast:
		return isTimeOID(e.typ.OID) && !hasColumnOrAgg(e) && (e.args[0].kind == kConst || foldable(e.args[0]) || e.args[0].kind == kParam)
	}
	return false
}

func hasColumnOrAgg(e *expr) bool {
	found := false
	walk(e, func(x *expr) bool {
		if x.kind == kCol || (x.kind == kFunc && aggregateFuncs[x.name]) {
			found = true
		}
		return !found
	})
	return found
}

// generic translates the operators and functions whose DuckDB semantics the
// rewriter makes equal to Postgres's; sub translates the operands.
func (m *matcher) generic(e *expr, sub sqlFn) (string, Type, *Reason) {
	if foldable(e) {
		if dependsOnExecution(e) {
			k, ok := foldKind(e, vInstant, m.paramType, m.zones)
			if !ok {
				return "", errType, reason(ReasonExpression, "cannot fold this time expression once per execution")
			}
			return m.deferSQL(func(x *execCtx) (string, *Reason) {
				v, ok := x.foldTime(e, vInstant)
				if !ok || v.kind != k {
					return "", reason(ReasonExpression, "cannot fold this time expression once per execution")
				}
				return timeLiteral(v), nil
			}), timeType(k), nil
		}
		v, ok := m.fc.foldTime(e, vInstant)
		if !ok {
			return "", errType, reason(ReasonExpression, "cannot fold this time expression once per execution")
		}
		return timeLiteral(v), timeType(v.kind), nil
	}
	switch e.kind {
	case kConst:
		switch e.lit {
		case litInt:
			return "CAST(" + e.str + " AS INTEGER)", plain(pgtype.Int4OID), nil
		case litNumeric:
			if intRE.MatchString(e.str) {
				if len(strings.TrimLeft(e.str, "-+")) <= 18 {
					return "CAST(" + e.str + " AS BIGINT)", plain(pgtype.Int8OID), nil
				}
				return "", errType, reason(ReasonExpression, "integer literal %s is too large", e.str)
			}
			return "CAST(" + sqlquote.Literal(e.str) + " AS DECIMAL(38," + itoa(literalScale(e.str)) + "))", plain(pgtype.NumericOID), nil
		case litBool:
			return strings.ToUpper(e.str), plain(pgtype.BoolOID), nil
		case litNull:
			return "CAST(NULL AS VARCHAR)", plain(pgtype.TextOID), nil
		}
		return sqlquote.Literal(e.str), plain(pgtype.TextOID), nil
	case kParam:
		pt, ok := m.paramType(e.param)
		if !ok {
			return "", errType, reason(ReasonParameter, "parameter $%d is not bound", e.param)
		}
		t := plain(pt)
		if pt == 0 || pt == pgtype.UnknownOID {
			t = plain(pgtype.TextOID)
		}
		if _, ok := duckType(t); !ok {
			// numeric above all: its values have no DuckDB type of their own
			// (HAVING sum(amount) > $1 gets one from Postgres).
			return "", errType, reason(ReasonParameter, "parameter $%d has type %s, which pgrollup does not compute with on rollups; write the value into the statement, or bind it as an integer", e.param, typeName(t))
		}
		n := e.param
		return m.deferSQL(func(x *execCtx) (string, *Reason) {
			p, _ := x.param(n)
			if p.Null {
				return nullOf(t), nil
			}
			lit, ok := literal(&x.foldCtx, p.Value, t, e)
			if !ok {
				return "", reason(ReasonParameter, "parameter $%d cannot be read as %s here", n, typeName(t))
			}
			return lit, nil
		}), t, nil
	case kCast:
		return m.castSQL(e, sub)
	case kFunc:
		return m.funcSQL(e, sub)
	case kOp:
		return m.opSQL(e, sub)
	case kAnd, kOr:
		parts := make([]string, len(e.args))
		for i, a := range e.args {
			s, t, r := m.typed(a, plain(pgtype.BoolOID), sub)
			if r != nil {
				return "", errType, r
			}
			if t.OID != pgtype.BoolOID && t.Known() {
				return "", errType, reason(ReasonExpression, "AND/OR of a non-boolean")
			}
			parts[i] = "(" + s + ")"
		}
		op := " AND "
		if e.kind == kOr {
			op = " OR "
		}
		return strings.Join(parts, op), plain(pgtype.BoolOID), nil
	case kNot:
		s, _, r := m.typed(e.args[0], plain(pgtype.BoolOID), sub)
		if r != nil {
			return "", errType, r
		}
		return "NOT (" + s + ")", plain(pgtype.BoolOID), nil
	case kNullTest:
		s, _, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		if e.not {
			return "(" + s + ") IS NOT NULL", plain(pgtype.BoolOID), nil
		}
		return "(" + s + ") IS NULL", plain(pgtype.BoolOID), nil
	case kIn:
		l, lt, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		items := make([]string, 0, len(e.args)-1)
		for _, a := range e.args[1:] {
			s, t, r := m.typed(a, operandType(lt), sub)
			if r != nil {
				return "", errType, r
			}
			if r := comparable(lt, t); r != nil {
				return "", errType, r
			}
			items = append(items, s)
		}
		op := " IN ("
		if e.not {
			op = " NOT IN ("
		}
		return "(" + l + ")" + op + strings.Join(items, ", ") + ")", plain(pgtype.BoolOID), nil
	case kBetween:
		x, xt, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		if r := m.orderable(xt, e.args...); r != nil {
			return "", errType, r
		}
		lo, lt, r := m.typed(e.args[1], operandType(xt), sub)
		if r != nil {
			return "", errType, r
		}
		hi, ht, r := m.typed(e.args[2], operandType(xt), sub)
		if r != nil {
			return "", errType, r
		}
		if r := comparable(xt, lt); r != nil {
			return "", errType, r
		}
		if r := comparable(xt, ht); r != nil {
			return "", errType, r
		}
		op := " BETWEEN "
		if e.not {
			op = " NOT BETWEEN "
		}
		return "(" + x + ")" + op + "(" + lo + ") AND (" + hi + ")", plain(pgtype.BoolOID), nil
	case kCase:
		return m.caseSQL(e, sub)
	case kCoalesce, kMinMax:
		args := make([]*expr, len(e.args))
		copy(args, e.args)
		parts, t, r := m.common(args, sub)
		if r != nil {
			return "", errType, r
		}
		name := "COALESCE"
		if e.kind == kMinMax {
			if r := m.orderable(t, e.args...); r != nil {
				return "", errType, r
			}
			// Postgres's GREATEST/LEAST ignore NULLs, like DuckDB's.
			name = strings.ToUpper(e.name)
		}
		return name + "(" + strings.Join(parts, ", ") + ")", t, nil
	case kNullIf:
		parts, t, r := m.common(e.args, sub)
		if r != nil {
			return "", errType, r
		}
		return "NULLIF(" + parts[0] + ", " + parts[1] + ")", t, nil
	case kSVF:
		return "", errType, reason(ReasonExpression, "%s is not supported here", e.name)
	case kCollate:
		return m.collateSQL(e, sub)
	}
	return "", errType, reason(ReasonExpression, "expression not supported on rollups")
}

func timeType(k valueKind) Type {
	switch k {
	case vInstant:
		return plain(pgtype.TimestamptzOID)
	case vLocal:
		return plain(pgtype.TimestampOID)
	}
	return plain(pgtype.DateOID)
}

func typeName(t Type) string {
	for n, oid := range map[string]uint32{"boolean": pgtype.BoolOID, "smallint": pgtype.Int2OID, "integer": pgtype.Int4OID, "bigint": pgtype.Int8OID,
		"real": pgtype.Float4OID, "double precision": pgtype.Float8OID, "numeric": pgtype.NumericOID, "text": pgtype.TextOID, "character varying": pgtype.VarcharOID,
		"character": pgtype.BPCharOID, "date": pgtype.DateOID, "timestamp without time zone": pgtype.TimestampOID,
		"timestamp with time zone": pgtype.TimestamptzOID, "interval": pgtype.IntervalOID} {
		if oid == t.OID {
			return n
		}
	}
	if !t.Known() {
		return "an unknown type"
	}
	if t.OID == oidNumericText {
		return "numeric (an average)"
	}
	return "type " + itoa(int(t.OID))
}

// category groups types whose values compare with each other in both systems.
func category(t Type) int {
	switch {
	case !t.Known():
		return 0
	case isNumberOID(t.OID):
		return 1
	case isTextOID(t.OID):
		return 2
	case isTimeOID(t.OID):
		return 3
	case t.OID == pgtype.BoolOID:
		return 4
	}
	return 5 + int(t.OID)
}

func comparable(a, b Type) *Reason {
	if !a.Known() || !b.Known() {
		return nil
	}
	if category(a) != category(b) {
		return reason(ReasonExpression, "comparison of %s with %s is not supported on rollups", typeName(a), typeName(b))
	}
	if category(a) == 3 && a.OID != b.OID {
		// DuckDB would convert between them in its own TimeZone.
		return reason(ReasonExpression, "comparison of %s with %s is not supported on rollups", typeName(a), typeName(b))
	}
	return nil
}

// orderableType checks that ordering values of type t is the same in DuckDB,
// but for the collation of text (orderable).
func orderableType(t Type) *Reason {
	if t.OID == pgtype.BPCharOID || t.OID == pgtype.UUIDOID {
		return reason(ReasonCollation, "ordering %s is not supported on rollups", typeName(t))
	}
	if t.OID == oidNumericText {
		return reason(ReasonExpression, "comparing avg of integers or numeric with other values is not supported on rollups")
	}
	return nil
}

// common translates values that must share one type (CASE results,
// COALESCE), resolving it as Postgres would for the cases where both
// systems agree; mixed numeric scales are refused because Postgres keeps each
// value's scale while DuckDB unifies them.
func (m *matcher) common(args []*expr, sub sqlFn) ([]string, Type, *Reason) {
	var t Type
	have := false
	types := make([]Type, len(args))
	sqls := make([]string, len(args))
	for i, a := range args {
		if a == nil || m.isUntyped(a) {
			continue
		}
		s, at, r := sub(a)
		if r != nil {
			return nil, errType, r
		}
		sqls[i], types[i] = s, at
		if !have {
			t, have = at, true
			continue
		}
		switch {
		case at.OID == t.OID && at.Typmod == t.Typmod:
		case isIntegerOID(at.OID) && isIntegerOID(t.OID):
			if intRank(at.OID) > intRank(t.OID) {
				t = plain(at.OID)
			}
		case isTextOID(at.OID) && isTextOID(t.OID):
			t = plain(pgtype.TextOID)
		case at.OID == t.OID && at.OID != pgtype.NumericOID:
			t.Typmod = -1
		case !at.Known() || !t.Known():
			t = unknownType
		default:
			return nil, errType, reason(ReasonExpression, "mixing %s and %s is not supported on rollups", typeName(t), typeName(at))
		}
	}
	if !have {
		t = plain(pgtype.TextOID)
	}
	if t.OID == pgtype.NumericOID {
		for i, a := range args {
			if a == nil {
				continue
			}
			if m.isUntyped(a) || (types[i].OID != pgtype.NumericOID) || numericScale(types[i]) != numericScale(t) || numericScale(t) < 0 {
				if a.kind == kConst && a.lit == litNull {
					continue
				}
				return nil, errType, reason(ReasonExpression, "mixing numeric values of different scales is not supported on rollups")
			}
		}
	}
	d, dok := duckType(t)
	for i, a := range args {
		if a == nil {
			continue
		}
		if sqls[i] == "" {
			s, _, r := m.typed(a, t, sub)
			if r != nil {
				return nil, errType, r
			}
			sqls[i] = s
		}
		if dok && t.OID != pgtype.NumericOID {
			sqls[i] = "CAST(" + sqls[i] + " AS " + d + ")"
		}
	}
	if t.OID == pgtype.NumericOID {
		t.Typmod = -1
	}
	return sqls, t, nil
}

func intRank(oid uint32) int {
	switch oid {
	case pgtype.Int2OID:
		return 1
	case pgtype.Int4OID:
		return 2
	}
	return 3
}

func (m *matcher) caseSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	n := (len(e.args) - 1) / 2
	var results []*expr
	for i := 0; i < n; i++ {
		results = append(results, e.args[2*i+1])
	}
	results = append(results, e.args[len(e.args)-1])
	rs, t, r := m.common(results, sub)
	if r != nil {
		return "", errType, r
	}
	var b strings.Builder
	b.WriteString("CASE")
	var argType Type
	if e.caseArg != nil {
		s, at, r := sub(e.caseArg)
		if r != nil {
			return "", errType, r
		}
		argType = at
		b.WriteString(" (" + s + ")")
	}
	for i := 0; i < n; i++ {
		var c string
		var r *Reason
		if e.caseArg != nil {
			var ct Type
			c, ct, r = m.typed(e.args[2*i], argType, sub)
			if r == nil {
				r = comparable(argType, ct)
			}
		} else {
			c, _, r = m.typed(e.args[2*i], plain(pgtype.BoolOID), sub)
		}
		if r != nil {
			return "", errType, r
		}
		b.WriteString(" WHEN " + c + " THEN " + rs[i])
	}
	if rs[n] != "" {
		b.WriteString(" ELSE " + rs[n])
	}
	b.WriteString(" END")
	return b.String(), t, nil
}

func (m *matcher) opSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	if len(e.args) == 1 {
		if e.name != "-" && e.name != "+" {
			return "", errType, reason(ReasonExpression, "operator %s is not supported on rollups", e.name)
		}
		s, t, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		if !isNumberOID(t.OID) && t.Known() {
			return "", errType, reason(ReasonExpression, "unary %s on %s", e.name, typeName(t))
		}
		return "(" + e.name + "(" + s + "))", t, nil
	}
	a, b := e.args[0], e.args[1]
	if e.name == "~~" || e.name == "!~~" {
		return m.likeSQL(e, sub)
	}
	var ls, rs string
	var lt, rt Type
	var r *Reason
	// A time plus or minus whole days (dayShift). Each operand is
	// translated once: a chain of additions must not be translated again at
	// every level.
	leftDone := false
	if e.name == "+" || e.name == "-" {
		if d, ok := dayShift(b); ok && !m.isUntyped(a) {
			if ls, lt, r = sub(a); r != nil {
				return "", errType, r
			}
			if s, t, ok := m.shifted(ls, lt, d, e.name == "-"); ok {
				return s, t, nil
			}
			leftDone = true
		} else if d, ok := dayShift(a); ok && !d.isInt && e.name == "+" && !m.isUntyped(b) {
			s, t, r := sub(b)
			if r != nil {
				return "", errType, r
			}
			if s, t, ok := m.shifted(s, t, d, false); ok {
				return s, t, nil
			}
			return "", errType, reason(ReasonExpression, "interval + %s is not supported on rollups", typeName(t))
		}
	}
	switch {
	case leftDone:
		if rs, rt, r = m.typed(b, operandType(lt), sub); r != nil {
			return "", errType, r
		}
	case m.isUntyped(a) && m.isUntyped(b):
		return "", errType, reason(ReasonExpression, "an operator between two untyped literals is not supported")
	case m.isUntyped(a):
		if rs, rt, r = sub(b); r != nil {
			return "", errType, r
		}
		if ls, lt, r = m.typed(a, operandType(rt), sub); r != nil {
			return "", errType, r
		}
	default:
		if ls, lt, r = sub(a); r != nil {
			return "", errType, r
		}
		if rs, rt, r = m.typed(b, operandType(lt), sub); r != nil {
			return "", errType, r
		}
	}
	switch e.name {
	case "=", "<>", "is distinct from", "is not distinct from":
		if r := comparable(lt, rt); r != nil {
			return "", errType, r
		}
		op := e.name
		return "(" + ls + ") " + strings.ToUpper(op) + " (" + rs + ")", plain(pgtype.BoolOID), nil
	case "<", "<=", ">", ">=":
		if r := comparable(lt, rt); r != nil {
			return "", errType, r
		}
		if r := m.orderable(lt, a, b); r != nil {
			return "", errType, r
		}
		return "(" + ls + ") " + e.name + " (" + rs + ")", plain(pgtype.BoolOID), nil
	case "+", "-", "*", "/":
		return arith(e.name, ls, lt, rs, rt)
	}
	return "", errType, reason(ReasonExpression, "operator %s is not supported on rollups", e.name)
}

// shifted computes a time value s of type t plus n whole days (d, negated
// when neg) as Postgres does: an instant moves by calendar days on the
// session's clock (keeping its wall-clock time across a DST change), a
// timestamp by days, a date plus an interval becomes a timestamp and a date
// plus an integer stays a date. ok is false when t is not such a time.
func (m *matcher) shifted(s string, t Type, d shiftDays, neg bool) (string, Type, bool) {
	n := d.days
	if neg {
		n = -n
	}
	iv := "INTERVAL (" + itoa(n) + ") DAY"
	switch k := kindOfType(t); {
	case k == vDate && d.isInt:
		return "(" + s + " + CAST(" + itoa(n) + " AS INTEGER))", plain(pgtype.DateOID), true
	case d.isInt:
	case k == vInstant:
		return instantSQL(m.sz, localSQL(m.sz, s)+" + "+iv), plain(pgtype.TimestamptzOID), true
	case k == vLocal:
		return "(" + s + " + " + iv + ")", plain(pgtype.TimestampOID), true
	case k == vDate:
		return "(CAST(" + s + " AS TIMESTAMP) + " + iv + ")", plain(pgtype.TimestampOID), true
	}
	return "", errType, false
}

// arith types arithmetic as Postgres does, for the combinations DuckDB
// computes identically.
func arith(op, ls string, lt Type, rs string, rt Type) (string, Type, *Reason) {
	if !lt.Known() || !rt.Known() {
		return "(" + ls + " " + op + " " + rs + ")", unknownType, nil
	}
	if !isNumberOID(lt.OID) || !isNumberOID(rt.OID) {
		return "", errType, reason(ReasonExpression, "%s %s %s is not supported on rollups", typeName(lt), op, typeName(rt))
	}
	var t Type
	switch {
	case isFloatOID(lt.OID) || isFloatOID(rt.OID):
		t = plain(pgtype.Float8OID)
		if lt.OID == pgtype.Float4OID && rt.OID == pgtype.Float4OID {
			t = plain(pgtype.Float4OID)
		}
	case lt.OID == pgtype.NumericOID || rt.OID == pgtype.NumericOID:
		if op == "/" {
			return "", errType, reason(ReasonExpression, "numeric division follows Postgres's select_div_scale, which is not reproduced on rollups; cast to double precision")
		}
		// DuckDB's DECIMAL + and * keep the scales Postgres keeps.
		return "(" + ls + " " + op + " " + rs + ")", plain(pgtype.NumericOID), nil
	default:
		if op == "/" {
			return "", errType, reason(ReasonExpression, "integer division is not reproduced on rollups; cast to double precision")
		}
		t = plain(pgtype.Int4OID)
		if lt.OID == pgtype.Int8OID || rt.OID == pgtype.Int8OID {
			t = plain(pgtype.Int8OID)
		} else if lt.OID == pgtype.Int2OID && rt.OID == pgtype.Int2OID {
			t = plain(pgtype.Int2OID)
		}
	}
	d, _ := duckType(t)
	if op == "/" {
		// Postgres's float division is strict (NULL / 0 is NULL), returns NaN
		// for NaN / 0 and raises division_by_zero otherwise; DuckDB would
		// return NULL.
		return "CAST(CASE WHEN (" + rs + ") = 0 AND (" + ls + ") IS NOT NULL THEN CASE WHEN isnan(" + ls + ") THEN CAST('NaN' AS DOUBLE) ELSE error('division by zero') END ELSE (" + ls + ") / (" + rs + ") END AS " + d + ")", t, nil
	}
	return "CAST((" + ls + ") " + op + " (" + rs + ") AS " + d + ")", t, nil
}

// castSQL translates a cast for the type pairs where DuckDB's conversion
// equals Postgres's.
func (m *matcher) castSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	to := e.typ
	a := e.args[0]
	if m.isUntyped(a) {
		return m.typed(a, to, sub)
	}
	s, from, r := sub(a)
	if r != nil {
		return "", errType, r
	}
	if !from.Known() {
		if d, ok := duckType(to); ok {
			return "CAST(" + s + " AS " + d + ")", to, nil
		}
		return "", errType, reason(ReasonExpression, "cast to %s is not supported on rollups", typeName(to))
	}
	if from.OID == to.OID && to.Typmod == from.Typmod {
		return s, from, nil
	}
	if from.OID == to.OID && to.Typmod == -1 {
		// Postgres keeps the value and drops the modifier
		// (amount::numeric of a numeric(12,2), v::varchar of a
		// varchar(50)): RowDescription shows typmod -1.
		if from.OID == pgtype.BPCharOID {
			// char(n) values are stored unpadded and padded to the
			// described length; without one the padding would be lost.
			return "", errType, reason(ReasonExpression, "cast from %s(%d) to bpchar is not reproduced on rollups", typeName(from), from.Typmod-4)
		}
		return s, plain(to.OID), nil
	}
	switch {
	case isTimeOID(from.OID) && isTimeOID(to.OID):
		if to.Typmod != -1 {
			return "", errType, reason(ReasonExpression, "casts to a time type with a precision are not supported on rollups")
		}
		fk, tk := kindOfType(from), kindOfType(to)
		switch {
		case fk == vInstant && tk == vLocal:
			return localSQL(m.sz, s), to, nil
		case fk == vInstant && tk == vDate:
			return "CAST(" + localSQL(m.sz, s) + " AS DATE)", to, nil
		case fk == vLocal && tk == vDate:
			return "CAST(" + s + " AS DATE)", to, nil
		case fk == vDate && tk == vLocal:
			return "CAST(" + s + " AS TIMESTAMP)", to, nil
		case fk == vLocal && tk == vInstant:
			return instantSQL(m.sz, s), to, nil
		case fk == vDate && tk == vInstant:
			return instantSQL(m.sz, "CAST("+s+" AS TIMESTAMP)"), to, nil
		}
	case isTextOID(to.OID) && to.Typmod == -1 && to.OID != pgtype.BPCharOID:
		if isTextOID(from.OID) && from.OID != pgtype.BPCharOID {
			return s, to, nil
		}
		if isIntegerOID(from.OID) || from.OID == pgtype.BoolOID {
			return "CAST(" + s + " AS VARCHAR)", to, nil
		}
		if from.OID == pgtype.NumericOID && numericScale(from) >= 0 {
			return "CAST(" + s + " AS VARCHAR)", to, nil
		}
	case isIntegerOID(to.OID) && isIntegerOID(from.OID):
		d, _ := duckType(to)
		return "CAST(" + s + " AS " + d + ")", to, nil
	case isIntegerOID(to.OID) && from.OID == pgtype.NumericOID && integralExtract(a):
		// Postgres rounds a numeric cast to an integer; EXTRACT of these
		// fields is a whole number, so the cast is exact in both systems
		// (and out of range an error in both). Tableau and Metabase write
		// CAST(EXTRACT(YEAR FROM x) AS INTEGER).
		d, _ := duckType(to)
		return "CAST(" + s + " AS " + d + ")", to, nil
	case isFloatOID(to.OID) && (isIntegerOID(from.OID) || isFloatOID(from.OID) || from.OID == pgtype.NumericOID):
		d, _ := duckType(to)
		return "CAST(" + s + " AS " + d + ")", to, nil
	case to.OID == pgtype.NumericOID && isIntegerOID(from.OID):
		if to.Typmod == -1 {
			return "CAST(" + s + " AS DECIMAL(38,0))", plain(pgtype.NumericOID), nil
		}
		d, ok := duckType(to)
		if ok {
			return "CAST(" + s + " AS " + d + ")", to, nil
		}
	case to.OID == pgtype.NumericOID && from.OID == pgtype.NumericOID && to.Typmod != -1:
		fs, ts := numericScale(from), numericScale(to)
		d, ok := duckType(to)
		if ok && fs >= 0 && fs <= ts {
			return "CAST(" + s + " AS " + d + ")", to, nil
		}
	}
	return "", errType, reason(ReasonExpression, "cast from %s to %s is not reproduced on rollups", typeName(from), typeName(to))
}

// extractFields are the EXTRACT fields computed identically by DuckDB.
var extractFields = map[string]bool{
	"year": true, "quarter": true, "month": true, "week": true, "day": true, "hour": true,
	"dow": true, "isodow": true, "doy": true, "isoyear": true,
}

// integralExtract reports whether e is EXTRACT of a field whose value is
// always a whole number (every field of extractFields; not epoch, second or
// julian, which have fractions).
func integralExtract(e *expr) bool {
	if e.kind != kFunc || e.name != "extract" || len(e.args) != 2 {
		return false
	}
	f, ok := constString(e.args[0])
	return ok && extractFields[strings.ToLower(f)]
}

func (m *matcher) funcSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	switch e.name {
	case "date_trunc":
		if len(e.args) != 2 && len(e.args) != 3 {
			break
		}
		if r := m.earlier(e.args[1:2], sub, ReasonTimeBucket); r != nil {
			return "", errType, r
		}
		u, ok := constString(e.args[0])
		if !ok {
			return "", errType, reason(ReasonTimeBucket, "date_trunc needs a constant unit")
		}
		u = strings.ToLower(u)
		if _, ok := unitGrain(u); !ok || u == "dow" || u == "isodow" || u == "doy" || u == "isoyear" {
			return "", errType, reason(ReasonTimeBucket, "date_trunc unit %q is not supported on rollups", u)
		}
		zone := m.sz
		if len(e.args) == 3 {
			zs, ok := constString(e.args[2])
			if !ok {
				return "", errType, reason(ReasonTimeZone, "date_trunc needs a constant zone")
			}
			zi := m.zones.get(zs)
			if zi.err != nil {
				return "", errType, reason(ReasonTimeZone, "time zone %q is not supported: %v", zs, zi.err)
			}
			zone = zi
		}
		s, t, r := sub(e.args[1])
		if r != nil {
			return "", errType, r
		}
		ul := sqlquote.Literal(u)
		switch kindOfType(t) {
		case vInstant:
			if g, _ := unitGrain(u); g == config.Hour {
				// Postgres truncates an instant to the hour on the zone's
				// clock but keeps the instant's own UTC offset (only day
				// and coarser units look the offset up again), so the two
				// passes of a DST fall-back's repeated hour stay two
				// buckets: subtract the minutes and seconds the zone's
				// clock shows. Reading the truncated wall clock back in the
				// zone would merge them into the later one.
				local := localSQL(zone, s)
				return "(" + s + " - (" + local + " - date_trunc('hour', " + local + ")))", plain(pgtype.TimestamptzOID), nil
			}
			return instantSQL(zone, "date_trunc("+ul+", "+localSQL(zone, s)+")"), plain(pgtype.TimestamptzOID), nil
		case vLocal:
			if len(e.args) == 3 {
				break
			}
			return "date_trunc(" + ul + ", " + s + ")", plain(pgtype.TimestampOID), nil
		case vDate:
			if len(e.args) == 3 {
				break
			}
			return instantSQL(zone, "CAST(date_trunc("+ul+", "+s+") AS TIMESTAMP)"), plain(pgtype.TimestamptzOID), nil
		}
		return "", errType, reason(ReasonExpression, "date_trunc of %s is not supported on rollups", typeName(t))
	case "extract", "date_part":
		if len(e.args) != 2 {
			break
		}
		if r := m.earlier(e.args[1:], sub, ReasonTimeBucket); r != nil {
			return "", errType, r
		}
		f, ok := constString(e.args[0])
		if !ok {
			return "", errType, reason(ReasonTimeBucket, "%s needs a constant field", e.name)
		}
		f = strings.ToLower(f)
		if !extractFields[f] {
			return "", errType, reason(ReasonTimeBucket, "%s field %q is not supported on rollups", e.name, f)
		}
		s, t, r := sub(e.args[1])
		if r != nil {
			return "", errType, r
		}
		var local string
		switch kindOfType(t) {
		case vInstant:
			local = localSQL(m.sz, s)
		case vLocal:
			local = s
		case vDate:
			if f == "hour" && e.name == "extract" {
				return "", errType, reason(ReasonExpression, "EXTRACT(hour FROM date) is an error in Postgres")
			}
			local = s
		default:
			return "", errType, reason(ReasonExpression, "%s of %s is not supported on rollups", e.name, typeName(t))
		}
		x := "extract(" + f + " FROM " + local + ")"
		if e.name == "date_part" {
			return "CAST(" + x + " AS DOUBLE)", plain(pgtype.Float8OID), nil
		}
		return "CAST(" + x + " AS DECIMAL(18,0))", plain(pgtype.NumericOID), nil
	case "timezone":
		if len(e.args) != 2 {
			break
		}
		zs, ok := constString(e.args[0])
		if !ok {
			return "", errType, reason(ReasonTimeZone, "AT TIME ZONE needs a constant zone")
		}
		zi := m.zones.get(zs)
		if zi.err != nil {
			return "", errType, reason(ReasonTimeZone, "time zone %q is not supported: %v", zs, zi.err)
		}
		s, t, r := sub(e.args[1])
		if r != nil {
			return "", errType, r
		}
		switch kindOfType(t) {
		case vInstant:
			return localSQL(zi, s), plain(pgtype.TimestampOID), nil
		case vLocal:
			return instantSQL(zi, s), plain(pgtype.TimestamptzOID), nil
		case vDate:
			return localSQL(zi, instantSQL(m.sz, "CAST("+s+" AS TIMESTAMP)")), plain(pgtype.TimestampOID), nil
		}
		return "", errType, reason(ReasonExpression, "AT TIME ZONE of %s is not supported on rollups", typeName(t))
	case "to_char":
		return m.toCharSQL(e, sub)
	}
	if aggregateFuncs[e.name] {
		return "", errType, reason(ReasonShape, "aggregate functions are not allowed here")
	}
	if r := m.earlier(e.args, sub, ReasonExpression); r != nil {
		return "", errType, r
	}
	return "", errType, reason(ReasonExpression, "function %s is not reproduced on rollups", e.name)
}

// earlier translates args only to find a failure of a rule before code's: a
// column that is not a dimension is a better reason than a function the
// rollup cannot compute (the first failing rule). Nothing it translates is
// kept.
func (m *matcher) earlier(args []*expr, sub sqlFn, code ReasonCode) *Reason {
	for _, a := range args {
		if a == nil {
			continue
		}
		pos := m.mark()
		_, _, r := sub(a)
		m.rollback(pos)
		if r != nil && r.Code.Rule() < code.Rule() {
			return r
		}
	}
	return nil
}

// toCharFields are the to_char template patterns reproduced, with the DuckDB
// SQL of each over a wall-clock value v: zero-padded like Postgres (YYYY to
// at least four digits).
var toCharFields = []struct{ pattern, sql string }{
	{"YYYY", "printf('%04d', year(v))"},
	{"HH24", "printf('%02d', hour(v))"},
	{"MM", "printf('%02d', month(v))"},
	{"DD", "printf('%02d', day(v))"},
	{"MI", "printf('%02d', minute(v))"},
	{"SS", "printf('%02d', second(v))"},
	{"Q", "CAST(quarter(v) AS VARCHAR)"},
}

// toCharSeparators are the characters to_char copies as they are.
const toCharSeparators = "-/:., "

// toCharSQL translates to_char(time, 'template') for templates made only of
// the patterns in toCharFields and punctuation, read as Postgres reads them;
// any other letter (FM, TH, Mon, HH, ...) or quoting leaves it to Postgres.
func (m *matcher) toCharSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	if len(e.args) != 2 {
		return "", errType, reason(ReasonExpression, "to_char with %d arguments is not reproduced on rollups", len(e.args))
	}
	tpl, ok := constString(e.args[1])
	if !ok || tpl == "" {
		return "", errType, reason(ReasonExpression, "to_char is reproduced on rollups only with a constant template")
	}
	bad := reason(ReasonExpression, "to_char template %s is not reproduced on rollups", sqlquote.Literal(tpl))
	var parts []string
	for rest := tpl; rest != ""; {
		if strings.IndexByte(toCharSeparators, rest[0]) >= 0 {
			parts = append(parts, sqlquote.Literal(rest[:1]))
			rest = rest[1:]
			continue
		}
		matched := false
		for _, f := range toCharFields {
			// Postgres takes the longest pattern (SSSS, DDD, MS, ...): a
			// pattern counts only when punctuation or the end follows it.
			after := strings.TrimPrefix(rest, f.pattern)
			if len(after) < len(rest) && (after == "" || strings.IndexByte(toCharSeparators, after[0]) >= 0) {
				parts = append(parts, f.sql)
				rest, matched = after, true
				break
			}
		}
		if !matched {
			return "", errType, bad
		}
	}
	s, t, r := sub(e.args[0])
	if r != nil {
		return "", errType, r
	}
	var local string
	switch kindOfType(t) {
	case vInstant:
		local = localSQL(m.sz, s)
	case vLocal:
		local = s
	case vDate:
		// to_char(date) reads the date at midnight: the same fields.
		local = "CAST(" + s + " AS TIMESTAMP)"
	default:
		return "", errType, reason(ReasonExpression, "to_char of %s is not reproduced on rollups", typeName(t))
	}
	// Postgres prints BC years differently and infinity as NULL; years
	// before 1 are left to it (the error makes the statement fall back).
	body := "CASE WHEN NOT isfinite(v) THEN NULL WHEN year(v) < 1 THEN error('to_char of a year before 1') ELSE " + strings.Join(parts, " || ") + " END"
	return "list_transform([" + local + "], lambda v: " + body + ")[1]", plain(pgtype.TextOID), nil
}

// likeSQL translates x LIKE 'pattern' on text. Postgres matches characters
// with the default escape backslash; DuckDB has no default escape, so it is
// given, and a pattern Postgres refuses (a trailing escape) is left to
// Postgres. Only constant patterns are translated, so they can be checked.
func (m *matcher) likeSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	pat, ok := constString(e.args[1])
	if !ok {
		return "", errType, reason(ReasonFilterNotEvaluable, "LIKE is evaluated on rollups only with a constant pattern")
	}
	if n := len(pat) - len(strings.TrimRight(pat, "\\")); n%2 == 1 {
		return "", errType, reason(ReasonFilterNotEvaluable, "a LIKE pattern ending in the escape character is an error in Postgres")
	}
	s, t, r := sub(e.args[0])
	if r != nil {
		return "", errType, r
	}
	if t.Known() && (!isTextOID(t.OID) || t.OID == pgtype.BPCharOID) {
		return "", errType, reason(ReasonFilterNotEvaluable, "LIKE on %s is not evaluated on rollups", typeName(t))
	}
	op := " LIKE "
	if e.name == "!~~" {
		op = " NOT LIKE "
	}
	return "(" + s + ")" + op + sqlquote.Literal(pat) + " ESCAPE '\\'", plain(pgtype.BoolOID), nil
}

// epochBucket recognises Grafana's $__timeGroup bucket,
// floor(extract(epoch from x) / N) * N with a constant N: the start of x's
// N-second bucket counted from the epoch, numeric (double precision with
// date_part). Postgres divides at a scale of at least twelve decimals there,
// so a value a microsecond below a boundary stays below it, and the floor
// is exact. Buckets of whole hours come from an hour rollup cut on a
// whole-hour clock, of whole days from a day rollup cut in UTC (epoch
// buckets start at UTC midnight); ok is false when e is not such a bucket.
func (m *matcher) epochBucket(e *expr) (string, Type, bool, *Reason) {
	if e.kind != kOp || e.name != "*" || len(e.args) != 2 {
		return "", errType, false, nil
	}
	fl, nx := e.args[0], e.args[1]
	if fl.kind == kConst {
		fl, nx = nx, fl
	}
	n, ok := constInt(nx)
	if !ok || nx.kind != kConst || fl.kind != kFunc || fl.name != "floor" || len(fl.args) != 1 {
		return "", errType, false, nil
	}
	div := fl.args[0]
	if div.kind != kOp || div.name != "/" || len(div.args) != 2 {
		return "", errType, false, nil
	}
	if n2, ok := constInt(div.args[1]); !ok || n2 != n || div.args[1].kind != kConst {
		return "", errType, false, nil
	}
	ex := div.args[0]
	if ex.kind != kFunc || (ex.name != "extract" && ex.name != "date_part") || len(ex.args) != 2 {
		return "", errType, false, nil
	}
	if f, ok := constString(ex.args[0]); !ok || !strings.EqualFold(f, "epoch") {
		return "", errType, false, nil
	}
	col := ex.args[1]
	if col.kind != kCol || col.col == nil || !m.cr.isTime(col.col) {
		return "", errType, false, nil
	}
	if n <= 0 || n > 1e9 {
		return "", errType, true, reason(ReasonTimeBucket, "epoch buckets of %d seconds are not answered from rollups", n)
	}
	k := kindOfType(m.cr.timeType)
	if k == 0 {
		k = vInstant
	}
	ok = false
	switch m.cr.grain {
	case config.Hour:
		ok = n%3600 == 0 && (k != vInstant || m.wholeHours(m.buildZone))
	case config.Day:
		ok = n%86400 == 0 && (k != vInstant || m.buildZone == "UTC")
	}
	if !ok {
		return "", errType, true, reason(ReasonGrain, "epoch buckets of %d seconds of %s cannot be computed from rollup %s at %s grain (cut in %s)", n, m.timeName(), m.cr.st.Def.Name, m.cr.grain, m.zoneOf())
	}
	t := `"r".` + sqlquote.Ident(layout.Time)
	if k == vDate {
		t = "CAST(" + t + " AS TIMESTAMP)"
	}
	// The stored bucket starts on a boundary of whole seconds; floor
	// division by N, for negative epochs too.
	secs := "(epoch_us(" + t + ") // 1000000)"
	ns := strconv.FormatInt(n, 10)
	v := "(" + secs + " - ((" + secs + " % " + ns + ") + " + ns + ") % " + ns + ")"
	if ex.name == "date_part" {
		return "CAST(" + v + " AS DOUBLE)", plain(pgtype.Float8OID), true, nil
	}
	return "CAST(" + v + " AS DECIMAL(38,0))", plain(pgtype.NumericOID), true, nil
}
