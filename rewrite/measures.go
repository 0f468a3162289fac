package rewrite

import (
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// aggregateFuncs are the aggregate functions the rewriter knows; any other
// aggregate is a plain unknown function to it and is refused.
var aggregateFuncs = map[string]bool{
	"sum": true, "count": true, "min": true, "max": true, "avg": true,
	"stddev": true, "stddev_samp": true, "stddev_pop": true, "variance": true, "var_samp": true,
	"var_pop": true, "string_agg": true, "array_agg": true, "bool_and": true, "bool_or": true,
	"every": true, "json_agg": true, "jsonb_agg": true, "percentile_cont": true,
	"percentile_disc": true, "mode": true, "bit_and": true, "bit_or": true, "corr": true,
	"covar_pop": true, "covar_samp": true, "regr_slope": true, "any_value": true,
}

// agg re-aggregates one aggregate call from the rollup's stored parts
// (rule 5), typed as Postgres types the original aggregate (§4).
func (m *matcher) agg(e *expr) (string, Type, *Reason) {
	name := e.name
	switch name {
	case "sum", "count", "min", "max", "avg":
	default:
		return "", errType, reason(ReasonMeasure, "%s cannot be computed from a rollup", name)
	}
	if e.distinct && name != "count" {
		return "", errType, reason(ReasonMeasure, "%s(DISTINCT ...) cannot be computed from a rollup", name)
	}
	var arg *expr
	argKey := ""
	countStar := name == "count" && (e.star || (len(e.args) == 1 && isNonNullConst(e.args[0]) && !e.distinct))
	if !countStar {
		if len(e.args) != 1 {
			return "", errType, reason(ReasonMeasure, "%s with %d arguments cannot be computed from a rollup", name, len(e.args))
		}
		arg, argKey = e.args[0], key(e.args[0])
	}
	// FILTER (WHERE ...): the rollup's own measure filter, or a predicate on
	// dimensions applied while re-aggregating.
	filterSQL := ""
	fk := ""
	if e.filter != nil {
		fk = " filter(" + key(e.filter) + ")"
	}
	part := func(fn string) (storedPart, bool) {
		if p, ok := m.cr.parts[partKey(fn, argKey)+fk]; ok {
			return p, true
		}
		if fk != "" {
			p, ok := m.cr.parts[partKey(fn, argKey)]
			return p, ok
		}
		return storedPart{}, false
	}
	needFilter := func() *Reason {
		if e.filter == nil {
			return nil
		}
		if _, ok := m.cr.parts[partKey(anyPart(name), argKey)+fk]; ok {
			return nil
		}
		s, _, r := m.typed(e.filter, plain(pgtype.BoolOID), m.row)
		if r != nil {
			return r
		}
		filterSQL = " FILTER (WHERE " + s + ")"
		return nil
	}

	// min, max and count(DISTINCT) of an expression over dimensions are the
	// same over rollup rows as over source rows.
	if arg != nil && (name == "min" || name == "max" || (name == "count" && e.distinct)) && !hasAggregateIn(arg) {
		// Tentative: when arg is not over dimensions, the stored parts are
		// tried instead, so this attempt's deferred parts must not remain.
		pos := m.mark()
		s, t, r := m.row(arg)
		if r != nil {
			m.rollback(pos)
		} else {
			if r := needFilterDirect(m, e, &filterSQL); r != nil {
				return "", errType, r
			}
			if name == "count" {
				return "count(DISTINCT " + s + ")" + filterSQL, plain(pgtype.Int8OID), nil
			}
			if r := m.orderable(t, arg); r != nil {
				return "", errType, r
			}
			d, ok := duckType(Type{t.OID, -1})
			out := name + "(" + s + ")" + filterSQL
			if ok && t.OID != pgtype.NumericOID {
				out = "CAST(" + out + " AS " + d + ")"
			}
			return out, Type{t.OID, -1}, nil
		}
	}

	switch {
	case name == "count" && e.distinct:
		p, ok := m.cr.parts[partKey(layout.PartCountDistinct, argKey)+fk]
		if !ok {
			return "", errType, reason(ReasonMeasure, "count(DISTINCT %s) needs %s as a dimension of rollup %s, or a stored count(distinct) read at its exact grain", argText(arg), argText(arg), m.cr.st.Def.Name)
		}
		if r := m.exactGrain(); r != nil {
			return "", errType, r
		}
		return "CAST(COALESCE(sum(\"r\"." + sqlquote.Ident(p.phys) + "), 0) AS BIGINT)", plain(pgtype.Int8OID), nil
	case name == "count":
		p, ok := part(layout.PartCount)
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		// A re-aggregated count is the sum of counts: 0, never NULL, and bigint.
		return "CAST(COALESCE(sum(\"r\"." + sqlquote.Ident(p.phys) + ")" + filterSQL + ", 0) AS BIGINT)", plain(pgtype.Int8OID), nil
	case name == "sum":
		p, ok := part(layout.PartSum)
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := m.typedPart(p); r != nil {
			return "", errType, r
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		return m.sumSQL(p, filterSQL)
	case name == "min" || name == "max":
		p, ok := part(name) // layout.PartMin or layout.PartMax
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := m.typedPart(p); r != nil {
			return "", errType, r
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		t := Type{p.argType.OID, -1}
		if t.OID == pgtype.NumericOID {
			col, r := m.numericPart(p, name)
			if r != nil {
				return "", errType, r
			}
			return name + "(" + col + ")" + filterSQL, t, nil
		}
		if _, exact := duckType(p.argType); p.argType.Known() && !exact {
			// Stored as text (rollup/plan.go), whose min is not the value's.
			return "", errType, reason(ReasonMeasure, "rollup %s stores %s of %s as text; it is not used on rollups", m.cr.st.Def.Name, name, typeName(p.argType))
		}
		if r := m.storedOrderable(t, p); r != nil {
			return "", errType, r
		}
		out := name + "(\"r\"." + sqlquote.Ident(p.phys) + ")" + filterSQL
		if d, ok := duckType(t); ok {
			out = "CAST(" + out + " AS " + d + ")"
		}
		return out, t, nil
	case name == "avg":
		ps, ok1 := part(layout.PartSum)
		pc, ok2 := part(layout.PartCount)
		if !ok1 || !ok2 {
			return "", errType, reason(ReasonMeasure, "avg(%s) needs sum(%s) and count(%s) in rollup %s", argText(arg), argText(arg), argText(arg), m.cr.st.Def.Name)
		}
		if r := m.typedPart(ps); r != nil {
			return "", errType, r
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		t := ps.argType
		switch {
		case t.OID == pgtype.Float4OID:
			// Postgres's avg(real) adds the values in double precision
			// (float4_accum); the rollup's sum was added in real
			// (float4pl), which loses digits a double shows.
			return "", errType, reason(ReasonMeasure, "rollup %s, measure %s: Postgres adds avg of real in double precision, but the rollup's sum was added in real; cast the expression to double precision in the measure", m.cr.st.Def.Name, ps.text)
		case isFloatOID(t.OID):
			s := "sum(\"r\"." + sqlquote.Ident(ps.phys) + ")" + filterSQL
			c := "sum(\"r\"." + sqlquote.Ident(pc.phys) + ")" + filterSQL
			// NULL when there are no rows, never a division error.
			return "CAST(" + s + " AS DOUBLE) / CAST(NULLIF(" + c + ", 0) AS DOUBLE)", plain(pgtype.Float8OID), nil
		case !t.Known():
			s := "sum(\"r\"." + sqlquote.Ident(ps.phys) + ")" + filterSQL
			c := "sum(\"r\"." + sqlquote.Ident(pc.phys) + ")" + filterSQL
			return s + " / NULLIF(" + c + ", 0)", unknownType, nil
		}
		sc := -1
		var sum string
		switch {
		case isIntegerOID(t.OID):
			// Stored sums are BIGINT (of int2/int4) or DECIMAL(38,0) (of int8).
			sc, sum = 0, "CAST(sum(\"r\"."+sqlquote.Ident(ps.phys)+")"+filterSQL+" AS HUGEINT)"
		case t.OID == pgtype.NumericOID:
			col, r := m.numericPart(ps, "avg")
			if r != nil {
				return "", errType, r
			}
			// DECIMAL(38,s) prints exactly s decimals: without the point,
			// its text is the unscaled integer.
			sc = ps.scale
			sum = "CAST(replace(CAST(sum(" + col + ")" + filterSQL + " AS VARCHAR), '.', '') AS HUGEINT)"
		}
		if sc < 0 {
			return "", errType, reason(ReasonMeasure, "avg of %s is not reproduced on rollups", typeName(t))
		}
		count := "CAST(sum(\"r\"." + sqlquote.Ident(pc.phys) + ")" + filterSQL + " AS HUGEINT)"
		return avgNumericText(sum, count, sc), plain(oidNumericText), nil
	}
	return "", errType, reason(ReasonMeasure, "%s cannot be computed from a rollup", name)
}

func needFilterDirect(m *matcher, e *expr, out *string) *Reason {
	if e.filter == nil {
		return nil
	}
	s, _, r := m.typed(e.filter, plain(pgtype.BoolOID), m.row)
	if r != nil {
		return r
	}
	*out = " FILTER (WHERE " + s + ")"
	return nil
}

// anyPart is a part that a measure of aggregate name stores: the part of the
// same name, or for avg its sum (layout.Parts).
func anyPart(name string) string {
	if name == "avg" {
		return layout.PartSum
	}
	return name
}

func hasAggregateIn(e *expr) bool {
	found := false
	walk(e, func(x *expr) bool {
		if x.kind == kFunc && aggregateFuncs[x.name] {
			found = true
		}
		return !found
	})
	return found
}

// typedPart checks that a stored part's argument was typed, so that the
// result column has Postgres's type. At serving time an argument that could
// not be typed refuses the statement here, by decision, rather than failing
// when DuckDB's value does not convert. Only the offline explain, which may
// not know the columns' types, goes on without them.
func (m *matcher) typedPart(p storedPart) *Reason {
	if p.argErr == nil || (p.argErr.offline && m.cat.PartialColumns) {
		return nil
	}
	return reason(ReasonMeasure, "rollup %s, measure %s: pgrollup cannot type its expression as Postgres does (%s)", m.cr.st.Def.Name, p.text, p.argErr.msg)
}

// numericPart reads a stored part of a numeric argument as DECIMAL(38,s),
// s the display scale every value carries. The builder stores a part whose
// argument has a declared numeric(p,s) as DECIMAL, and one without (an
// expression such as price * quantity) as Postgres's text of each value,
// which the cast reads exactly.
func (m *matcher) numericPart(p storedPart, fn string) (string, *Reason) {
	col := "\"r\"." + sqlquote.Ident(p.phys)
	switch {
	case p.scale < 0:
		return "", reason(ReasonMeasure, "rollup %s, measure %s: Postgres gives each value of its expression its own numeric scale (a numeric without a declared scale, a division, a cast from a float), which a rollup does not reproduce; cast the expression to numeric(p,s)", m.cr.st.Def.Name, p.text)
	case p.digits < 0 || p.digits > 38:
		return "", reason(ReasonMeasure, "rollup %s, measure %s: its values may have more digits than the 38 DuckDB computes with", m.cr.st.Def.Name, p.text)
	}
	if numericScale(p.argType) >= 0 && (fn == "sum" || fn == "avg") {
		return col, nil // DECIMAL(38,s) already
	}
	if _, ok := duckType(p.argType); ok && numericScale(p.argType) >= 0 {
		return col, nil // DECIMAL(p,s), the argument's own type
	}
	return "CAST(" + col + " AS DECIMAL(38," + itoa(p.scale) + "))", nil
}

// sumSQL re-aggregates a stored SUM and casts it back to the type Postgres
// gives SUM of the argument: DuckDB sums BIGINT into HUGEINT and DECIMAL
// into DECIMAL(38, s).
func (m *matcher) sumSQL(p storedPart, filterSQL string) (string, Type, *Reason) {
	s := "sum(\"r\"." + sqlquote.Ident(p.phys) + ")" + filterSQL
	switch p.argType.OID {
	case pgtype.Int2OID, pgtype.Int4OID:
		return "CAST(" + s + " AS BIGINT)", plain(pgtype.Int8OID), nil
	case pgtype.Int8OID:
		return "CAST(" + s + " AS DECIMAL(38,0))", plain(pgtype.NumericOID), nil
	case pgtype.NumericOID:
		col, r := m.numericPart(p, "sum")
		if r != nil {
			return "", errType, r
		}
		return "CAST(sum(" + col + ")" + filterSQL + " AS DECIMAL(38," + itoa(p.scale) + "))", plain(pgtype.NumericOID), nil
	case pgtype.Float4OID:
		return "CAST(" + s + " AS FLOAT)", plain(pgtype.Float4OID), nil
	case pgtype.Float8OID:
		return "CAST(" + s + " AS DOUBLE)", plain(pgtype.Float8OID), nil
	case 0:
		return s, unknownType, nil
	}
	return "", errType, reason(ReasonMeasure, "sum of %s is not supported on rollups", typeName(p.argType))
}

// exactGrain checks that every group is exactly one rollup row, so that a
// stored count(distinct), which cannot be re-aggregated, is read as it is:
// the query groups by every dimension and by the time bucket itself at the
// rollup's grain. A grouping that is not one-to-one with the bucket (EXTRACT
// of the day of the week, of the month or of the year, the hour of the day)
// gathers several rollup rows into one group, and summing their distinct
// counts counts a value once per row.
func (m *matcher) exactGrain() *Reason {
	cr := m.cr
	has := map[string]bool{}
	timeOK := cr.timeCol == nil
	for _, g := range m.q.groupBy {
		if c := identityColumn(g); c != nil {
			if d := cr.dim(c.col); d != nil {
				has[d.phys] = true
				continue
			}
			if cr.isTime(c.col) && m.exactRaw() {
				timeOK = true
			}
			continue
		}
		if !identifiesBucket(g) {
			continue
		}
		if c, ok, r := m.cutOf(g); ok && r == nil && c.grain == cr.grain && !c.shifted && m.checkCut(c) == nil {
			if kindOfType(cr.timeType) != vInstant || c.clock == m.buildZone {
				timeOK = true
			}
		}
	}
	for _, d := range cr.dims {
		if !has[d.phys] {
			return reason(ReasonMeasure, "a stored count(distinct) answers only queries grouped by every dimension of rollup %s; %s is missing", cr.st.Def.Name, d.col.column.Name)
		}
	}
	if !timeOK {
		return reason(ReasonMeasure, "a stored count(distinct) answers only queries grouped by the time bucket itself at rollup %s's %s grain (date_trunc or a cast to date, cut in %s); EXTRACT and date_part fields such as dow, doy, day or month gather several buckets into one group",
			cr.st.Def.Name, cr.grain, m.zoneOf())
	}
	return nil
}

// identifiesBucket reports whether a time bucket expression (one cutOf
// recognises) has a different value for every bucket of its grain:
// date_trunc and a cast to date do, and so does the year of a year. Any
// other EXTRACT or date_part field (dow, isodow, doy, day, week, month,
// quarter, hour, isoyear) repeats across buckets.
func identifiesBucket(e *expr) bool {
	switch e.kind {
	case kCast:
		return true
	case kFunc:
		switch e.name {
		case "date_trunc":
			return true
		case "extract", "date_part":
			if len(e.args) != 2 {
				return false
			}
			f, ok := constString(e.args[0])
			return ok && strings.EqualFold(f, "year")
		}
	}
	return false
}

func argText(e *expr) string {
	if e == nil {
		return "*"
	}
	if e.kind == kCol {
		return dotted(e)
	}
	return "the expression"
}

func aggText(e *expr) string {
	d := ""
	if e.distinct {
		d = "DISTINCT "
	}
	if e.star || len(e.args) == 0 {
		return e.name + "(*)"
	}
	s := e.name + "(" + d + argText(e.args[0]) + ")"
	if e.filter != nil {
		s += " FILTER (WHERE ...)"
	}
	return s
}

// avgNumericText computes AVG of integers or of numeric(p,s) the way
// Postgres does, from the unscaled sum (an exact HUGEINT holding sum * 10^sc)
// and the count: numeric_div(sum, count) at the scale select_div_scale picks,
// rounded half away from zero, NULL when the count is 0. The scale depends
// on each result's magnitude (avg(1, 2) is 1.5000000000000000, avg(0) has 20
// zeros), which no DuckDB DECIMAL column can carry, so the result is
// Postgres's text form of the numeric; the column is described as numeric
// with DuckType VARCHAR.
//
// The computation runs in stages, each a one-element list_transform binding
// the previous stage's values to v, so that no intermediate is repeated in the
// SQL. A result too large for HUGEINT arithmetic is a DuckDB error, and the
// statement falls back to the warehouse.
func avgNumericText(sum, count string, sc int) string {
	s := itoa(sc)
	stage := func(prev, body string) string {
		return "list_transform([" + prev + "], lambda v: " + body + ")[1]"
	}
	// The sum's and the count's text, for their base-10000 weight and first
	// digit as select_div_scale reads them.
	x := "struct_pack(s := " + sum + ", c := " + count + ")"
	x = stage(x, "struct_pack(s := v.s, c := v.c, a := abs(v.s), ds := CAST(abs(v.s) AS VARCHAR), dc := CAST(v.c AS VARCHAR))")
	// w: weight of the sum (its leading digit is 10^(len-1-sc)); wc: of the count.
	x = stage(x, "struct_pack(s := v.s, c := v.c, a := v.a, ds := v.ds, dc := v.dc, "+
		"w := (length(v.ds) - 1 - "+s+" + 40) // 4 - 10, wc := (length(v.dc) - 1) // 4)")
	// rscale = max(16 - 4 * qweight, sc), qweight = w - wc, one less when the
	// sum's first base-10000 digit is not above the count's; a zero sum has
	// weight 0 and first digit 0.
	x = stage(x, "struct_pack(s := v.s, c := v.c, a := v.a, rs := least(greatest(16 - 4 * (CASE WHEN v.s = 0 THEN -v.wc - 1 ELSE v.w - v.wc - "+
		"CASE WHEN CAST(left(v.ds || '000', length(v.ds) - ("+s+" + 4 * v.w)) AS INTEGER) <= CAST(left(v.dc, length(v.dc) - 4 * v.wc) AS INTEGER) THEN 1 ELSE 0 END END), "+s+"), 1000))")
	// q = round(|sum| * 10^(rscale - sc) / count), half away from zero.
	x = stage(x, "struct_pack(s := v.s, c := v.c, a := v.a, rs := v.rs, p := CAST('1' || repeat('0', v.rs - "+s+") AS HUGEINT))")
	x = stage(x, "struct_pack(s := v.s, rs := v.rs, q := (v.a // v.c) * v.p + ((v.a % v.c) * v.p) // v.c + "+
		"CASE WHEN 2 * (((v.a % v.c) * v.p) % v.c) >= v.c THEN 1 ELSE 0 END)")
	x = stage(x, "struct_pack(neg := v.s < 0 AND v.q <> 0, rs := v.rs, d := lpad(CAST(v.q AS VARCHAR), CAST(greatest(length(CAST(v.q AS VARCHAR)), v.rs + 1) AS INTEGER), '0'))")
	x = stage(x, "CASE WHEN v.neg THEN '-' ELSE '' END || CASE WHEN v.rs = 0 THEN v.d ELSE substr(v.d, 1, length(v.d) - v.rs) || '.' || substr(v.d, length(v.d) - v.rs + 1) END")
	return "CASE WHEN " + count + " IS NULL OR " + count + " = 0 THEN NULL ELSE " + x + " END"
}

// sumScale is the display scale Postgres gives every value of e, a sum whose
// result is numeric: the stored argument's declared scale, 0 for a sum of
// bigint. ok is false when e is not such a sum or its scale varies.
func (m *matcher) sumScale(e *expr) (int, bool) {
	if e.kind != kFunc || e.name != "sum" || e.distinct || e.star || len(e.args) != 1 {
		return 0, false
	}
	pk := partKey(layout.PartSum, key(e.args[0]))
	p, ok := storedPart{}, false
	if e.filter != nil {
		p, ok = m.cr.parts[pk+" filter("+key(e.filter)+")"]
	}
	if !ok {
		p, ok = m.cr.parts[pk]
	}
	if !ok {
		return 0, false
	}
	switch p.argType.OID {
	case pgtype.Int8OID:
		return 0, true
	case pgtype.NumericOID:
		return p.scale, p.scale >= 0
	}
	return 0, false
}

// numericDivision computes sum(x) / count(...) of a numeric sum as Postgres's
// numeric_div does. That is the computation of avg, which divides the sum by
// the count with numeric_div, so it has avg's select_div_scale and rounding
// (avgNumericText); unlike avg, a count of 0 beside a sum that is not NULL is
// Postgres's division_by_zero error. ok is false when e is not that shape,
// and nothing is translated then.
func (m *matcher) numericDivision(e *expr) (string, Type, bool, *Reason) {
	if e.kind != kOp || e.name != "/" || len(e.args) != 2 {
		return "", errType, false, nil
	}
	num, den := e.args[0], e.args[1]
	if den.kind != kFunc || den.name != "count" {
		return "", errType, false, nil
	}
	sc, ok := m.sumScale(num)
	if !ok {
		return "", errType, false, nil
	}
	ns, nt, r := m.agg(num)
	if r != nil {
		return "", errType, true, r
	}
	ds, dt, r := m.agg(den)
	if r != nil {
		return "", errType, true, r
	}
	if nt.OID != pgtype.NumericOID || dt.OID != pgtype.Int8OID {
		return "", errType, true, reason(ReasonExpression, "numeric division follows Postgres's select_div_scale, which is reproduced on rollups only for sum(x) / count(...); cast to double precision")
	}
	// DECIMAL(38,s) prints exactly s decimals: without the point, its text
	// is the unscaled integer.
	unscaled := "CAST(replace(CAST(" + ns + " AS VARCHAR), '.', '') AS HUGEINT)"
	q := avgNumericText(unscaled, "CAST("+ds+" AS HUGEINT)", sc)
	return "CASE WHEN (" + ds + ") = 0 AND (" + ns + ") IS NOT NULL THEN error('division by zero') ELSE " + q + " END", plain(oidNumericText), true, nil
}

// coalescedSum translates COALESCE(sum(x), c) of a numeric sum and a number
// literal, which Looker and Malloy write for every sum. Postgres keeps each
// value's own scale: the sum's, or the literal's where the sum is NULL. When
// the two scales are equal the result is a DECIMAL of that scale; otherwise
// it is Postgres's text of each value (oidNumericText). ok is false when e
// is not that shape.
func (m *matcher) coalescedSum(e *expr) (sql string, t Type, ok bool, r *Reason) {
	if e.kind != kCoalesce || len(e.args) != 2 {
		return "", errType, false, nil
	}
	sum, lit := e.args[0], e.args[1]
	sc, ok := m.sumScale(sum)
	if !ok || lit.kind != kConst || (lit.lit != litInt && lit.lit != litNumeric) || !numRE.MatchString(lit.str) || strings.ContainsAny(lit.str, "eE+- ") {
		return "", errType, false, nil
	}
	ls := literalScale(lit.str)
	ns, nt, r := m.agg(sum)
	if r != nil {
		return "", errType, true, r
	}
	if nt.OID != pgtype.NumericOID {
		return "", errType, true, reason(ReasonExpression, "COALESCE of sum of %s is not supported on rollups", typeName(nt))
	}
	value := "CAST(" + sqlquote.Literal(lit.str) + " AS DECIMAL(38," + itoa(ls) + "))"
	if ls == sc {
		return "COALESCE(" + ns + ", " + value + ")", plain(pgtype.NumericOID), true, nil
	}
	text, ok := numericText(lit.str)
	if !ok || len(text) > 38 {
		return "", errType, true, reason(ReasonExpression, "COALESCE with %s is not supported on rollups", lit.str)
	}
	return "CASE WHEN (" + ns + ") IS NULL THEN " + sqlquote.Literal(text) + " ELSE CAST(" + ns + " AS VARCHAR) END", plain(oidNumericText), true, nil
}

// numericText is Postgres's text of a numeric literal (digits with an
// optional fraction, no sign or exponent): leading zeros dropped, the
// fraction's digits kept.
func numericText(s string) (string, bool) {
	s = strings.TrimSpace(s)
	ip, fp, frac := strings.Cut(s, ".")
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	if !frac {
		return ip, true
	}
	if fp == "" {
		return ip, true
	}
	return ip + "." + fp, true
}
