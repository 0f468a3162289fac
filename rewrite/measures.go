package rewrite

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
		s, _, r := m.typed(e.filter, plain(OIDBool), m.row)
		if r != nil {
			return r
		}
		filterSQL = " FILTER (WHERE " + s + ")"
		return nil
	}

	// min, max and count(DISTINCT) of an expression over dimensions are the
	// same over rollup rows as over source rows.
	if arg != nil && (name == "min" || name == "max" || (name == "count" && e.distinct)) && !hasAggregateIn(arg) {
		if s, t, r := m.row(arg); r == nil {
			if r := needFilterDirect(m, e, &filterSQL); r != nil {
				return "", errType, r
			}
			if name == "count" {
				return "count(DISTINCT " + s + ")" + filterSQL, plain(OIDInt8), nil
			}
			if r := m.orderable(t); r != nil {
				return "", errType, r
			}
			d, ok := duckType(Type{t.OID, -1})
			out := name + "(" + s + ")" + filterSQL
			if ok && t.OID != OIDNumeric {
				out = "CAST(" + out + " AS " + d + ")"
			}
			return out, Type{t.OID, -1}, nil
		}
	}

	switch {
	case name == "count" && e.distinct:
		p, ok := m.cr.parts[partKey("count_distinct", argKey)+fk]
		if !ok {
			return "", errType, reason(ReasonMeasure, "count(DISTINCT %s) needs %s as a dimension of rollup %s, or a stored count(distinct) read at its exact grain", argText(arg), argText(arg), m.cr.st.Def.Name)
		}
		if r := m.exactGrain(); r != nil {
			return "", errType, r
		}
		return "CAST(COALESCE(sum(\"r\"." + quoteIdent(p.phys) + "), 0) AS BIGINT)", plain(OIDInt8), nil
	case name == "count":
		p, ok := part("count")
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		// A re-aggregated count is the sum of counts: 0, never NULL, and bigint.
		return "CAST(COALESCE(sum(\"r\"." + quoteIdent(p.phys) + ")" + filterSQL + ", 0) AS BIGINT)", plain(OIDInt8), nil
	case name == "sum":
		p, ok := part("sum")
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		return sumSQL("sum(\"r\"."+quoteIdent(p.phys)+")"+filterSQL, p.argType)
	case name == "min" || name == "max":
		p, ok := part(name)
		if !ok {
			return "", errType, reason(ReasonMeasure, "rollup %s does not store %s", m.cr.st.Def.Name, aggText(e))
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		t := Type{p.argType.OID, -1}
		if r := m.orderable(t); r != nil {
			return "", errType, r
		}
		out := name + "(\"r\"." + quoteIdent(p.phys) + ")" + filterSQL
		if d, ok := duckType(t); ok && t.OID != OIDNumeric {
			out = "CAST(" + out + " AS " + d + ")"
		}
		return out, t, nil
	case name == "avg":
		ps, ok1 := part("sum")
		pc, ok2 := part("count")
		if !ok1 || !ok2 {
			return "", errType, reason(ReasonMeasure, "avg(%s) needs sum(%s) and count(%s) in rollup %s", argText(arg), argText(arg), argText(arg), m.cr.st.Def.Name)
		}
		if r := needFilter(); r != nil {
			return "", errType, r
		}
		t := ps.argType
		switch {
		case isFloatOID(t.OID):
			s := "sum(\"r\"." + quoteIdent(ps.phys) + ")" + filterSQL
			c := "sum(\"r\"." + quoteIdent(pc.phys) + ")" + filterSQL
			// NULL when there are no rows, never a division error.
			return "CAST(" + s + " AS DOUBLE) / CAST(NULLIF(" + c + ", 0) AS DOUBLE)", plain(OIDFloat8), nil
		case !t.Known():
			s := "sum(\"r\"." + quoteIdent(ps.phys) + ")" + filterSQL
			c := "sum(\"r\"." + quoteIdent(pc.phys) + ")" + filterSQL
			return s + " / NULLIF(" + c + ", 0)", unknownType, nil
		}
		return "", errType, reason(ReasonMeasure, "avg of %s returns numeric with Postgres's division scale, which is not reproduced yet", typeName(t))
	}
	return "", errType, reason(ReasonMeasure, "%s cannot be computed from a rollup", name)
}

func needFilterDirect(m *matcher, e *expr, out *string) *Reason {
	if e.filter == nil {
		return nil
	}
	s, _, r := m.typed(e.filter, plain(OIDBool), m.row)
	if r != nil {
		return r
	}
	*out = " FILTER (WHERE " + s + ")"
	return nil
}

func anyPart(name string) string {
	if name == "avg" {
		return "sum"
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

// sumSQL casts a re-aggregated SUM back to the type Postgres gives SUM of t:
// DuckDB sums BIGINT into HUGEINT and DECIMAL into DECIMAL(38, s).
func sumSQL(s string, t Type) (string, Type, *Reason) {
	switch t.OID {
	case OIDInt2, OIDInt4:
		return "CAST(" + s + " AS BIGINT)", plain(OIDInt8), nil
	case OIDInt8:
		return "CAST(" + s + " AS DECIMAL(38,0))", plain(OIDNumeric), nil
	case OIDNumeric:
		sc := numericScale(t)
		if sc < 0 {
			return "", errType, reason(ReasonMeasure, "sum of numeric without a declared scale keeps each value's scale in Postgres; declare the column numeric(p,s)")
		}
		return "CAST(" + s + " AS DECIMAL(38," + itoa(sc) + "))", plain(OIDNumeric), nil
	case OIDFloat4:
		return "CAST(" + s + " AS FLOAT)", plain(OIDFloat4), nil
	case OIDFloat8:
		return "CAST(" + s + " AS DOUBLE)", plain(OIDFloat8), nil
	case 0:
		return s, unknownType, nil
	}
	return "", errType, reason(ReasonMeasure, "sum of %s is not supported on rollups", typeName(t))
}

// exactGrain checks that every group is exactly one rollup row: the query
// groups by every dimension and by the time bucket at the rollup's grain.
func (m *matcher) exactGrain() *Reason {
	cr := m.cr
	has := map[string]bool{}
	timeOK := cr.timeCol == nil
	for _, g := range m.q.groupBy {
		if g.kind == kCol && g.col != nil {
			if d := cr.dim(g.col); d != nil {
				has[d.phys] = true
				continue
			}
			if cr.isTime(g.col) && m.exactRaw() {
				timeOK = true
			}
			continue
		}
		if c, ok, r := m.cutOf(g); ok && r == nil && c.grain == cr.grain && m.checkCut(c) == nil {
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
		return reason(ReasonMeasure, "a stored count(distinct) answers only queries grouped by the time bucket at rollup %s's %s grain", cr.st.Def.Name, cr.grain)
	}
	return nil
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
