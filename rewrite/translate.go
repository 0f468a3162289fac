package rewrite

import (
	"regexp"
	"strings"
)

// sqlFn translates a sub-expression in some context.
type sqlFn func(*expr) (string, Type, *Reason)

var errType = unknownType

// row translates an expression evaluated on each rollup row: dimensions,
// time buckets derivable from the stored bucket, constants.
func (m *matcher) row(e *expr) (string, Type, *Reason) { return m.rowIn(e, false) }

func (m *matcher) rowIn(e *expr, inCut bool) (string, Type, *Reason) {
	if !inCut && m.cr.timeCol != nil {
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
			return `"r".` + quoteIdent(d.phys), e.col.column.Type, nil
		}
		if m.cr.isTime(e.col) {
			t := m.cr.timeType
			if !t.Known() {
				t = plain(OIDTimestamptz)
			}
			if inCut || m.exactRaw() {
				return `"r".` + quoteIdent(timePhys), t, nil
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
		p, ok := m.param(e.param)
		return ok && (p.Type == 0 || p.Type == OIDUnknown)
	}
	return false
}

var (
	intRE = regexp.MustCompile(`^\s*[+-]?[0-9]+\s*$`)
	numRE = regexp.MustCompile(`^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$`)
)

// literal renders the text s as a DuckDB value of Postgres type t, checked
// the way Postgres's input function would check it; ok is false when
// Postgres would reject it or the rewriter cannot be sure of the value.
func (m *matcher) literal(s string, t Type, e *expr) (string, bool) {
	switch {
	case isTextOID(t.OID):
		if t.OID == OIDBpchar || t.Typmod >= 0 {
			return "", false // padding and length semantics
		}
		return quoteLiteral(s), true
	case isIntegerOID(t.OID):
		if !intRE.MatchString(s) {
			return "", false
		}
		d, _ := duckType(t)
		return "CAST(" + quoteLiteral(strings.TrimSpace(s)) + " AS " + d + ")", true
	case t.OID == OIDNumeric || isFloatOID(t.OID):
		if !numRE.MatchString(s) {
			return "", false
		}
		if t.OID == OIDNumeric {
			return "CAST(" + quoteLiteral(strings.TrimSpace(s)) + " AS DECIMAL(38," + itoa(literalScale(s)) + "))", true
		}
		d, _ := duckType(t)
		return "CAST(" + quoteLiteral(strings.TrimSpace(s)) + " AS " + d + ")", true
	case t.OID == OIDBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "t", "true", "yes", "on", "1", "y":
			return "TRUE", true
		case "f", "false", "no", "off", "0", "n":
			return "FALSE", true
		}
		return "", false
	case isTimeOID(t.OID):
		v, ok := m.foldTime(e, kindOfType(t))
		if !ok {
			return "", false
		}
		v, ok = m.convertTime(v, kindOfType(t))
		if !ok {
			return "", false
		}
		return timeLiteral(v), true
	case !t.Known():
		return quoteLiteral(s), true
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
		if d, ok := duckType(t); ok {
			return "CAST(NULL AS " + d + ")", t, nil
		}
		return "NULL", t, nil
	}
	s := e.str
	if e.kind == kParam {
		p, _ := m.param(e.param)
		if p.Null {
			if d, ok := duckType(t); ok {
				return "CAST(NULL AS " + d + ")", t, nil
			}
			return "NULL", t, nil
		}
		s = p.Value
	}
	lit, ok := m.literal(s, t, e)
	if !ok {
		return "", errType, reason(ReasonExpression, "value %s cannot be read as %s here", quoteLiteral(s), typeName(t))
	}
	return lit, t, nil
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
		v, ok := m.foldTime(e, vInstant)
		if !ok {
			return "", errType, reason(ReasonExpression, "cannot fold this time expression once per execution")
		}
		return timeLiteral(v), timeType(v.kind), nil
	}
	switch e.kind {
	case kConst:
		switch e.lit {
		case litInt:
			return "CAST(" + e.str + " AS INTEGER)", plain(OIDInt4), nil
		case litNumeric:
			if intRE.MatchString(e.str) {
				if len(strings.TrimLeft(e.str, "-+")) <= 18 {
					return "CAST(" + e.str + " AS BIGINT)", plain(OIDInt8), nil
				}
				return "", errType, reason(ReasonExpression, "integer literal %s is too large", e.str)
			}
			return "CAST(" + quoteLiteral(e.str) + " AS DECIMAL(38," + itoa(literalScale(e.str)) + "))", plain(OIDNumeric), nil
		case litBool:
			return strings.ToUpper(e.str), plain(OIDBool), nil
		case litNull:
			return "CAST(NULL AS VARCHAR)", plain(OIDText), nil
		}
		return quoteLiteral(e.str), plain(OIDText), nil
	case kParam:
		p, ok := m.param(e.param)
		if !ok {
			return "", errType, reason(ReasonParameter, "parameter $%d is not bound", e.param)
		}
		t := plain(p.Type)
		if p.Type == 0 || p.Type == OIDUnknown {
			t = plain(OIDText)
		}
		if p.Null {
			d, ok := duckType(t)
			if !ok {
				return "", errType, reason(ReasonParameter, "parameter $%d has an unsupported type", e.param)
			}
			return "CAST(NULL AS " + d + ")", t, nil
		}
		lit, ok := m.literal(p.Value, t, e)
		if !ok {
			return "", errType, reason(ReasonParameter, "parameter $%d cannot be read as %s here", e.param, typeName(t))
		}
		return lit, t, nil
	case kCast:
		return m.castSQL(e, sub)
	case kFunc:
		return m.funcSQL(e, sub)
	case kOp:
		return m.opSQL(e, sub)
	case kAnd, kOr:
		parts := make([]string, len(e.args))
		for i, a := range e.args {
			s, t, r := m.typed(a, plain(OIDBool), sub)
			if r != nil {
				return "", errType, r
			}
			if t.OID != OIDBool && t.Known() {
				return "", errType, reason(ReasonExpression, "AND/OR of a non-boolean")
			}
			parts[i] = "(" + s + ")"
		}
		op := " AND "
		if e.kind == kOr {
			op = " OR "
		}
		return strings.Join(parts, op), plain(OIDBool), nil
	case kNot:
		s, _, r := m.typed(e.args[0], plain(OIDBool), sub)
		if r != nil {
			return "", errType, r
		}
		return "NOT (" + s + ")", plain(OIDBool), nil
	case kNullTest:
		s, _, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		if e.not {
			return "(" + s + ") IS NOT NULL", plain(OIDBool), nil
		}
		return "(" + s + ") IS NULL", plain(OIDBool), nil
	case kIn:
		l, lt, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		items := make([]string, 0, len(e.args)-1)
		for _, a := range e.args[1:] {
			s, t, r := m.typed(a, lt, sub)
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
		return "(" + l + ")" + op + strings.Join(items, ", ") + ")", plain(OIDBool), nil
	case kBetween:
		x, xt, r := sub(e.args[0])
		if r != nil {
			return "", errType, r
		}
		if r := m.orderable(xt); r != nil {
			return "", errType, r
		}
		lo, lt, r := m.typed(e.args[1], xt, sub)
		if r != nil {
			return "", errType, r
		}
		hi, ht, r := m.typed(e.args[2], xt, sub)
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
		return "(" + x + ")" + op + "(" + lo + ") AND (" + hi + ")", plain(OIDBool), nil
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
			if r := m.orderable(t); r != nil {
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
	}
	return "", errType, reason(ReasonExpression, "expression not supported on rollups")
}

func timeType(k valueKind) Type {
	switch k {
	case vInstant:
		return plain(OIDTimestamptz)
	case vLocal:
		return plain(OIDTimestamp)
	}
	return plain(OIDDate)
}

func typeName(t Type) string {
	for n, oid := range map[string]uint32{"boolean": OIDBool, "smallint": OIDInt2, "integer": OIDInt4, "bigint": OIDInt8,
		"real": OIDFloat4, "double precision": OIDFloat8, "numeric": OIDNumeric, "text": OIDText, "character varying": OIDVarchar,
		"character": OIDBpchar, "date": OIDDate, "timestamp without time zone": OIDTimestamp,
		"timestamp with time zone": OIDTimestamptz, "interval": OIDInterval} {
		if oid == t.OID {
			return n
		}
	}
	if !t.Known() {
		return "an unknown type"
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
	case t.OID == OIDBool:
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

// orderable checks that ordering values of t is the same in DuckDB.
func (m *matcher) orderable(t Type) *Reason {
	if isTextOID(t.OID) && !m.cat.TextSortsBytewise {
		return reason(ReasonCollation, "ordering text needs the warehouse's collation, which DuckDB does not have")
	}
	if t.OID == OIDBpchar || t.OID == OIDUUID {
		return reason(ReasonCollation, "ordering %s is not supported on rollups", typeName(t))
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
			t = plain(OIDText)
		case at.OID == t.OID && at.OID != OIDNumeric:
			t.Typmod = -1
		case !at.Known() || !t.Known():
			t = unknownType
		default:
			return nil, errType, reason(ReasonExpression, "mixing %s and %s is not supported on rollups", typeName(t), typeName(at))
		}
	}
	if !have {
		t = plain(OIDText)
	}
	if t.OID == OIDNumeric {
		for i, a := range args {
			if a == nil {
				continue
			}
			if m.isUntyped(a) || (types[i].OID != OIDNumeric) || numericScale(types[i]) != numericScale(t) || numericScale(t) < 0 {
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
		if dok && t.OID != OIDNumeric {
			sqls[i] = "CAST(" + sqls[i] + " AS " + d + ")"
		}
	}
	if t.OID == OIDNumeric {
		t.Typmod = -1
	}
	return sqls, t, nil
}

func intRank(oid uint32) int {
	switch oid {
	case OIDInt2:
		return 1
	case OIDInt4:
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
			c, _, r = m.typed(e.args[2*i], plain(OIDBool), sub)
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
	var ls, rs string
	var lt, rt Type
	var r *Reason
	switch {
	case m.isUntyped(a) && m.isUntyped(b):
		return "", errType, reason(ReasonExpression, "an operator between two untyped literals is not supported")
	case m.isUntyped(a):
		if rs, rt, r = sub(b); r != nil {
			return "", errType, r
		}
		if ls, lt, r = m.typed(a, rt, sub); r != nil {
			return "", errType, r
		}
	default:
		if ls, lt, r = sub(a); r != nil {
			return "", errType, r
		}
		if rs, rt, r = m.typed(b, lt, sub); r != nil {
			return "", errType, r
		}
	}
	switch e.name {
	case "=", "<>", "is distinct from", "is not distinct from":
		if r := comparable(lt, rt); r != nil {
			return "", errType, r
		}
		op := e.name
		return "(" + ls + ") " + strings.ToUpper(op) + " (" + rs + ")", plain(OIDBool), nil
	case "<", "<=", ">", ">=":
		if r := comparable(lt, rt); r != nil {
			return "", errType, r
		}
		if r := m.orderable(lt); r != nil {
			return "", errType, r
		}
		return "(" + ls + ") " + e.name + " (" + rs + ")", plain(OIDBool), nil
	case "+", "-", "*", "/":
		return arith(e.name, ls, lt, rs, rt)
	}
	return "", errType, reason(ReasonExpression, "operator %s is not supported on rollups", e.name)
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
		t = plain(OIDFloat8)
		if lt.OID == OIDFloat4 && rt.OID == OIDFloat4 {
			t = plain(OIDFloat4)
		}
	case lt.OID == OIDNumeric || rt.OID == OIDNumeric:
		if op == "/" {
			return "", errType, reason(ReasonExpression, "numeric division follows Postgres's select_div_scale, which is not reproduced on rollups; cast to double precision")
		}
		// DuckDB's DECIMAL + and * keep the scales Postgres keeps.
		return "(" + ls + " " + op + " " + rs + ")", plain(OIDNumeric), nil
	default:
		if op == "/" {
			return "", errType, reason(ReasonExpression, "integer division is not reproduced on rollups; cast to double precision")
		}
		t = plain(OIDInt4)
		if lt.OID == OIDInt8 || rt.OID == OIDInt8 {
			t = plain(OIDInt8)
		} else if lt.OID == OIDInt2 && rt.OID == OIDInt2 {
			t = plain(OIDInt2)
		}
	}
	d, _ := duckType(t)
	if op == "/" {
		// Postgres raises division_by_zero; DuckDB would return NULL.
		return "CAST(CASE WHEN (" + rs + ") = 0 THEN error('division by zero') ELSE (" + ls + ") / (" + rs + ") END AS " + d + ")", t, nil
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
	if from.OID == to.OID && (to.Typmod == -1 || to.Typmod == from.Typmod) {
		if to.Typmod == -1 && from.OID == OIDNumeric {
			return s, plain(OIDNumeric), nil
		}
		return s, Type{to.OID, from.Typmod}, nil
	}
	z := quoteLiteral(m.zone)
	switch {
	case isTimeOID(from.OID) && isTimeOID(to.OID):
		if to.Typmod != -1 {
			return "", errType, reason(ReasonExpression, "casts to a time type with a precision are not supported on rollups")
		}
		fk, tk := kindOfType(from), kindOfType(to)
		switch {
		case fk == vInstant && tk == vLocal:
			return "timezone(" + z + ", " + s + ")", to, nil
		case fk == vInstant && tk == vDate:
			return "CAST(timezone(" + z + ", " + s + ") AS DATE)", to, nil
		case fk == vLocal && tk == vDate:
			return "CAST(" + s + " AS DATE)", to, nil
		case fk == vDate && tk == vLocal:
			return "CAST(" + s + " AS TIMESTAMP)", to, nil
		case fk == vLocal && tk == vInstant:
			return "timezone(" + z + ", " + s + ")", to, nil
		case fk == vDate && tk == vInstant:
			return "timezone(" + z + ", CAST(" + s + " AS TIMESTAMP))", to, nil
		}
	case isTextOID(to.OID) && to.Typmod == -1 && to.OID != OIDBpchar:
		if isTextOID(from.OID) && from.OID != OIDBpchar {
			return s, to, nil
		}
		if isIntegerOID(from.OID) || from.OID == OIDBool {
			return "CAST(" + s + " AS VARCHAR)", to, nil
		}
		if from.OID == OIDNumeric && numericScale(from) >= 0 {
			return "CAST(" + s + " AS VARCHAR)", to, nil
		}
	case isIntegerOID(to.OID) && isIntegerOID(from.OID):
		d, _ := duckType(to)
		return "CAST(" + s + " AS " + d + ")", to, nil
	case isFloatOID(to.OID) && (isIntegerOID(from.OID) || isFloatOID(from.OID) || from.OID == OIDNumeric):
		d, _ := duckType(to)
		return "CAST(" + s + " AS " + d + ")", to, nil
	case to.OID == OIDNumeric && isIntegerOID(from.OID):
		if to.Typmod == -1 {
			return "CAST(" + s + " AS DECIMAL(38,0))", plain(OIDNumeric), nil
		}
		d, ok := duckType(to)
		if ok {
			return "CAST(" + s + " AS " + d + ")", to, nil
		}
	case to.OID == OIDNumeric && from.OID == OIDNumeric && to.Typmod != -1:
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

func (m *matcher) funcSQL(e *expr, sub sqlFn) (string, Type, *Reason) {
	z := quoteLiteral(m.zone)
	switch e.name {
	case "date_trunc":
		if len(e.args) != 2 && len(e.args) != 3 {
			break
		}
		u, ok := constString(e.args[0])
		if !ok {
			return "", errType, reason(ReasonTimeBucket, "date_trunc needs a constant unit")
		}
		u = strings.ToLower(u)
		if _, ok := unitGrain(u); !ok || u == "dow" || u == "isodow" || u == "doy" || u == "isoyear" {
			return "", errType, reason(ReasonTimeBucket, "date_trunc unit %q is not supported on rollups", u)
		}
		zone := z
		if len(e.args) == 3 {
			zs, ok := constString(e.args[2])
			if !ok {
				return "", errType, reason(ReasonTimeZone, "date_trunc needs a constant zone")
			}
			zn, err := canonicalZone(zs)
			if err != nil {
				return "", errType, reason(ReasonTimeZone, "time zone %q is not supported: %v", zs, err)
			}
			zone = quoteLiteral(zn)
		}
		s, t, r := sub(e.args[1])
		if r != nil {
			return "", errType, r
		}
		ul := quoteLiteral(u)
		switch kindOfType(t) {
		case vInstant:
			return "timezone(" + zone + ", date_trunc(" + ul + ", timezone(" + zone + ", " + s + ")))", plain(OIDTimestamptz), nil
		case vLocal:
			if len(e.args) == 3 {
				break
			}
			return "date_trunc(" + ul + ", " + s + ")", plain(OIDTimestamp), nil
		case vDate:
			if len(e.args) == 3 {
				break
			}
			return "timezone(" + zone + ", CAST(date_trunc(" + ul + ", " + s + ") AS TIMESTAMP))", plain(OIDTimestamptz), nil
		}
		return "", errType, reason(ReasonExpression, "date_trunc of %s is not supported on rollups", typeName(t))
	case "extract", "date_part":
		if len(e.args) != 2 {
			break
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
			local = "timezone(" + z + ", " + s + ")"
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
			return "CAST(" + x + " AS DOUBLE)", plain(OIDFloat8), nil
		}
		return "CAST(" + x + " AS DECIMAL(18,0))", plain(OIDNumeric), nil
	case "timezone":
		if len(e.args) != 2 {
			break
		}
		zs, ok := constString(e.args[0])
		if !ok {
			return "", errType, reason(ReasonTimeZone, "AT TIME ZONE needs a constant zone")
		}
		zn, err := canonicalZone(zs)
		if err != nil {
			return "", errType, reason(ReasonTimeZone, "time zone %q is not supported: %v", zs, err)
		}
		s, t, r := sub(e.args[1])
		if r != nil {
			return "", errType, r
		}
		zl := quoteLiteral(zn)
		switch kindOfType(t) {
		case vInstant:
			return "timezone(" + zl + ", " + s + ")", plain(OIDTimestamp), nil
		case vLocal:
			return "timezone(" + zl + ", " + s + ")", plain(OIDTimestamptz), nil
		case vDate:
			return "timezone(" + zl + ", timezone(" + z + ", CAST(" + s + " AS TIMESTAMP)))", plain(OIDTimestamp), nil
		}
		return "", errType, reason(ReasonExpression, "AT TIME ZONE of %s is not supported on rollups", typeName(t))
	}
	if aggregateFuncs[e.name] {
		return "", errType, reason(ReasonShape, "aggregate functions are not allowed here")
	}
	return "", errType, reason(ReasonExpression, "function %s is not reproduced on rollups", e.name)
}
