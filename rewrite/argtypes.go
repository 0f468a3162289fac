package rewrite

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"
)

// argInfo is what the rewriter knows of the values of a measure's
// aggregated expression, typed the way Postgres types it when the builder
// runs the measure (rollup/plan.go describes the same expression).
//
// Postgres prints a numeric with the display scale the value carries, and
// that scale follows from the expression, not from its type: 2 * 1.5 is
// 3.0, amount * quantity has amount's scale. A sum of values that all carry
// scale s carries s, and so do their minimum and maximum, so a rollup
// reproduces them exactly when s is known for the expression. A division,
// a numeric without a declared scale or a cast from a float gives each
// value its own scale, which no DuckDB DECIMAL column can carry.
type argInfo struct {
	typ Type // as RowDescription describes the expression: the builder stores by it
	// scale is, for a numeric, the display scale of every value; -1 when
	// it depends on the values.
	scale int
	// digits bounds, for a numeric, the digits (precision) of every value;
	// -1 when there is no bound.
	digits int
}

// numberRank orders the number types by Postgres's implicit casts: each
// converts implicitly to every later one and never back, so a CASE or
// COALESCE of several resolves to the latest (select_common_type).
func numberRank(oid uint32) int {
	switch oid {
	case pgtype.Int2OID:
		return 1
	case pgtype.Int4OID:
		return 2
	case pgtype.Int8OID:
		return 3
	case pgtype.NumericOID:
		return 4
	case pgtype.Float4OID:
		return 5
	case pgtype.Float8OID:
		return 6
	}
	return 0
}

// intDigits is how many decimal digits an integer type holds.
func intDigits(oid uint32) int {
	switch oid {
	case pgtype.Int2OID:
		return 5
	case pgtype.Int4OID:
		return 10
	}
	return 19
}

// asNumeric is what a value of a becomes converted to numeric: an integer
// keeps its digits at scale 0; a float's decimal expansion depends on the
// value.
func asNumeric(a argInfo) argInfo {
	switch {
	case a.typ.OID == pgtype.NumericOID:
		return argInfo{typ: plain(pgtype.NumericOID), scale: a.scale, digits: a.digits}
	case isIntegerOID(a.typ.OID):
		return argInfo{typ: plain(pgtype.NumericOID), scale: 0, digits: intDigits(a.typ.OID)}
	}
	return argInfo{typ: plain(pgtype.NumericOID), scale: -1, digits: -1}
}

// typeError is why a measure's expression cannot be typed. offline marks
// the errors that come only from columns whose types are not known, which
// the offline explain (without the warehouse) passes over.
type typeError struct {
	msg     string
	offline bool
}

func (e *typeError) Error() string { return e.msg }

func typeErrorf(format string, args ...any) *typeError {
	return &typeError{msg: fmt.Sprintf(format, args...)}
}

// typeOfArg types a bound measure argument as Postgres's parser does, for
// the expressions whose result type and numeric scale follow from their
// form: columns, number literals, casts, unary minus, + - * / % on numbers,
// date - date, CASE and COALESCE. Anything else is an error naming what is
// not typed; the rollup still builds, and statements needing the measure
// pass through by decision.
func typeOfArg(e *expr) (argInfo, *typeError) {
	switch e.kind {
	case kCol:
		if e.col == nil {
			return argInfo{}, typeErrorf("column %s is not resolved", dotted(e))
		}
		t := e.col.column.Type
		if !t.Known() {
			return argInfo{typ: unknownType, scale: -1, digits: -1}, &typeError{msg: fmt.Sprintf("column %s has a type pgrollup does not know", dotted(e)), offline: true}
		}
		return columnInfo(t), nil
	case kConst:
		return literalInfo(e)
	case kCast:
		return castInfo(e)
	case kOp:
		if len(e.args) == 1 {
			a, err := typeOfArg(e.args[0])
			if err != nil {
				return a, err
			}
			if (e.name != "-" && e.name != "+") || numberRank(a.typ.OID) == 0 {
				return argInfo{}, typeErrorf("prefix operator %s on %s is not typed", e.name, typeName(a.typ))
			}
			// Postgres's unary operators return a plain type: -amount
			// of a numeric(12,2) is described as numeric.
			a.typ = plain(a.typ.OID)
			return a, nil
		}
		return operatorInfo(e)
	case kCase:
		var results []*expr
		for i := 1; i < len(e.args)-1; i += 2 {
			results = append(results, e.args[i])
		}
		// Without ELSE the result is NULL there, which drops a common typmod.
		return commonInfo(append(results, e.args[len(e.args)-1]), "CASE")
	case kCoalesce:
		return commonInfo(e.args, "COALESCE")
	case kFunc:
		return argInfo{}, typeErrorf("function %s() is not typed", e.name)
	}
	return argInfo{}, typeErrorf("this expression is not typed (only columns, number literals, casts, + - * / %%, CASE and COALESCE are)")
}

// columnInfo describes a column's values.
func columnInfo(t Type) argInfo {
	a := argInfo{typ: t, scale: -1, digits: -1}
	switch {
	case isIntegerOID(t.OID):
		a.scale, a.digits = 0, intDigits(t.OID)
	case t.OID == pgtype.NumericOID && numericScale(t) >= 0:
		a.scale, a.digits = numericScale(t), int((t.Typmod-4)>>16)
	}
	return a
}

// literalInfo types a constant as Postgres's make_const does: an integer
// is int4 when it fits, else int8, else numeric; one with a point or an
// exponent is numeric with the display scale numeric_in gives it.
func literalInfo(e *expr) (argInfo, *typeError) {
	switch e.lit {
	case litInt:
		return argInfo{typ: plain(pgtype.Int4OID), scale: 0, digits: 10}, nil
	case litNumeric:
		s := strings.TrimSpace(e.str)
		if !strings.ContainsAny(s, ".eE") {
			if _, ok := parseInt64(s); ok {
				return argInfo{typ: plain(pgtype.Int8OID), scale: 0, digits: 19}, nil
			}
		}
		return numericLiteral(s)
	case litBool:
		return argInfo{typ: plain(pgtype.BoolOID), scale: -1, digits: -1}, nil
	case litNull:
		return argInfo{}, typeErrorf("a NULL whose type comes from its context is not typed")
	}
	return argInfo{}, typeErrorf("a string literal whose type comes from its context is not typed; cast it, e.g. '1.5'::numeric")
}

func parseInt64(s string) (int64, bool) {
	d, _, err := apd.NewFromString(s)
	if err != nil || d.Form != apd.Finite || d.Exponent != 0 {
		return 0, false
	}
	n, err := d.Int64()
	return n, err == nil
}

// numericLiteral is numeric_in's value of s: its display scale is the
// digits after the point less the exponent, never below 0 (1.5e-1 is 0.15,
// 1e3 is 1000).
func numericLiteral(s string) (argInfo, *typeError) {
	d, _, err := apd.NewFromString(s)
	if err != nil || d.Form != apd.Finite {
		return argInfo{}, typeErrorf("numeric literal %q is not typed", s)
	}
	scale := max(0, -int(d.Exponent))
	whole := max(0, int(d.NumDigits())+int(d.Exponent))
	return argInfo{typ: plain(pgtype.NumericOID), scale: scale, digits: whole + scale}, nil
}

// castInfo types e::T. A cast with a type modifier keeps it, as Postgres's
// length coercion does (x::numeric(10,2) is described as numeric(10,2)).
func castInfo(e *expr) (argInfo, *typeError) {
	to := e.typ
	arg := e.args[0]
	if to.OID == pgtype.NumericOID && to.Typmod >= 4 {
		return columnInfo(to), nil
	}
	if arg.kind == kConst && arg.lit == litString {
		if to.OID == pgtype.NumericOID {
			return numericLiteral(arg.str)
		}
		return columnInfo(to), nil
	}
	if arg.kind == kConst && arg.lit == litNull {
		return columnInfo(to), nil
	}
	from, err := typeOfArg(arg)
	if err != nil {
		if err.offline && to.OID != pgtype.NumericOID {
			// The cast alone decides the type.
			return columnInfo(to), nil
		}
		return from, err
	}
	if to.OID == pgtype.NumericOID {
		return asNumeric(from), nil
	}
	if from.typ.OID == to.OID && to.Typmod == -1 {
		// Dropping the modifier keeps the value (Postgres relabels).
		return columnInfo(plain(to.OID)), nil
	}
	return columnInfo(to), nil
}

// operatorInfo types a binary operator as Postgres resolves it over
// numbers: two integers give the wider one; a float makes the result
// double precision, unless both are real; otherwise numeric, whose + and -
// keep the larger display scale and * adds them (numeric_add, numeric_mul).
// A numeric division or modulo picks each value's scale (select_div_scale).
func operatorInfo(e *expr) (argInfo, *typeError) {
	op := e.name
	l, err := typeOfArg(e.args[0])
	if err != nil {
		return l, err
	}
	r, err := typeOfArg(e.args[1])
	if err != nil {
		return r, err
	}
	switch op {
	case "+", "-", "*", "/", "%":
	default:
		return argInfo{}, typeErrorf("operator %s is not typed", op)
	}
	if l.typ.OID == pgtype.DateOID || r.typ.OID == pgtype.DateOID {
		switch {
		case op == "-" && l.typ.OID == pgtype.DateOID && r.typ.OID == pgtype.DateOID:
			return argInfo{typ: plain(pgtype.Int4OID), scale: 0, digits: 10}, nil
		case (op == "+" || op == "-") && l.typ.OID == pgtype.DateOID && (r.typ.OID == pgtype.Int4OID || r.typ.OID == pgtype.Int2OID):
			return argInfo{typ: plain(pgtype.DateOID), scale: -1, digits: -1}, nil
		}
		return argInfo{}, typeErrorf("%s %s %s is not typed", typeName(l.typ), op, typeName(r.typ))
	}
	lr, rr := numberRank(l.typ.OID), numberRank(r.typ.OID)
	if lr == 0 || rr == 0 {
		return argInfo{}, typeErrorf("%s %s %s is not typed", typeName(l.typ), op, typeName(r.typ))
	}
	switch {
	case isFloatOID(l.typ.OID) || isFloatOID(r.typ.OID):
		if op == "%" {
			return argInfo{}, typeErrorf("%s %% %s is not an operator in Postgres", typeName(l.typ), typeName(r.typ))
		}
		if l.typ.OID == pgtype.Float4OID && r.typ.OID == pgtype.Float4OID {
			return columnInfo(plain(pgtype.Float4OID)), nil
		}
		return columnInfo(plain(pgtype.Float8OID)), nil
	case l.typ.OID == pgtype.NumericOID || r.typ.OID == pgtype.NumericOID:
		a, b := asNumeric(l), asNumeric(r)
		out := argInfo{typ: plain(pgtype.NumericOID), scale: -1, digits: -1}
		if a.scale < 0 || b.scale < 0 || op == "/" || op == "%" {
			return out, nil
		}
		switch op {
		case "+", "-":
			out.scale = max(a.scale, b.scale)
			if a.digits >= 0 && b.digits >= 0 {
				out.digits = max(a.digits-a.scale, b.digits-b.scale) + 1 + out.scale
			}
		case "*":
			out.scale = a.scale + b.scale
			if a.digits >= 0 && b.digits >= 0 {
				out.digits = a.digits + b.digits
			}
		}
		return out, nil
	}
	if lr < rr {
		return columnInfo(plain(r.typ.OID)), nil
	}
	return columnInfo(plain(l.typ.OID)), nil
}

// commonInfo types the results of a CASE or the arguments of a COALESCE:
// their common type as select_common_type resolves it, NULLs aside. The
// typmod survives only when every value has the same one; a numeric's
// display scale only when every value has the same, integers counting as
// scale 0 (CASE WHEN ... THEN amount ELSE 0 END is 12.50 or 0).
func commonInfo(args []*expr, what string) (argInfo, *typeError) {
	var infos []argInfo
	nulls := false
	for _, a := range args {
		if a == nil || (a.kind == kConst && a.lit == litNull) {
			nulls = true
			continue
		}
		ai, err := typeOfArg(a)
		if err != nil {
			return ai, err
		}
		infos = append(infos, ai)
	}
	if len(infos) == 0 {
		return argInfo{}, typeErrorf("%s of only NULLs is not typed", what)
	}
	t := infos[0].typ
	sameMod := true
	for _, ai := range infos[1:] {
		if ai.typ.Typmod != t.Typmod {
			sameMod = false
		}
		switch {
		case ai.typ.OID == t.OID:
		case numberRank(ai.typ.OID) > 0 && numberRank(t.OID) > 0:
			if numberRank(ai.typ.OID) > numberRank(t.OID) {
				t = ai.typ
			}
			sameMod = false
		default:
			return argInfo{}, typeErrorf("%s of %s and %s is not typed", what, typeName(t), typeName(ai.typ))
		}
	}
	if nulls || !sameMod {
		t = plain(t.OID)
	}
	if t.OID != pgtype.NumericOID {
		out := columnInfo(t)
		return out, nil
	}
	out := argInfo{typ: t, scale: -1, digits: 0}
	for i, ai := range infos {
		n := asNumeric(ai)
		if i == 0 {
			out.scale = n.scale
		} else if n.scale != out.scale {
			out.scale = -1
		}
		if n.digits < 0 || out.digits < 0 {
			out.digits = -1
		} else {
			out.digits = max(out.digits, n.digits)
		}
	}
	if out.scale < 0 {
		out.digits = -1
	}
	return out, nil
}
