package e2e

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// The generator of random aggregate statements. It combines the parts BI
// tools send (BI-CLIENTS.md) — dimensions, time buckets, measures, filters,
// HAVING, ORDER BY/LIMIT, wrappers — and decides from DESIGN.md §3, applied
// to a model of the configured rollups (genRollupModels, read from
// diffRollups), whether some rollup can answer the result. Parts whose
// answerability the rules leave open, and deliberate near-misses, make a
// statement "may miss": it is compared all the same.

// genRollupModel is what §3 needs to know of one configured rollup.
type genRollupModel struct {
	name     string
	timeCol  string // created_at, order_date, local_ts or ""
	grain    string
	dims     map[string]bool
	measures map[string]bool
	join     string // the declared join its dimensions use: customers, stores or ""
	filtered bool   // has the filter status <> 'cancelled'
}

func genRollupModels() []genRollupModel {
	var out []genRollupModel
	for _, r := range diffRollups() {
		if r["table"] != "public.orders" {
			continue // the generator queries orders only
		}
		m := genRollupModel{name: r["name"].(string), dims: map[string]bool{}, measures: map[string]bool{}}
		if v, ok := r["time_dimension"].(string); ok {
			m.timeCol = v
			m.grain = r["granularity"].(string)
		}
		for _, d := range r["dimensions"].([]string) {
			m.dims[d] = true
			if t, _, ok := strings.Cut(d, "."); ok {
				m.join = t
			}
		}
		for _, ms := range r["measures"].([]string) {
			m.measures[ms] = true
		}
		if f, ok := r["filters"].([]string); ok {
			if len(f) != 1 || f[0] != "status <> 'cancelled'" {
				panic("the generator's model knows only the filter status <> 'cancelled'")
			}
			m.filtered = true
		}
		out = append(out, m)
	}
	return out
}

// diffGrainRank orders the grains; week is apart (derivable from hour and day,
// never into month).
var diffGrainRank = map[string]int{"hour": 0, "day": 1, "week": 2, "month": 3, "quarter": 4, "year": 5}

// diffDerivable reports whether a bucket of unit can be computed from grain (§3 rule 3).
func diffDerivable(unit, grain string) bool {
	switch {
	case unit == grain:
		return true
	case unit == "week":
		return grain == "hour" || grain == "day"
	case grain == "week":
		return false
	}
	return diffGrainRank[unit] > diffGrainRank[grain]
}

// genWholeHourZones are the session zones whose offsets are whole hours in the
// data's range: an hour-grain rollup cut in UTC serves their day and coarser
// buckets (§3 rule 4).
var genWholeHourZones = map[string]bool{"UTC": true, "Europe/Berlin": true, "America/New_York": true}

// Parts of a generated statement. Each knows what a rollup must have to
// serve it; unknown marks a part whose answerability the rules leave open.

type genBucket struct {
	col     string // created_at, order_date, local_ts
	unit    string // the grain it needs
	zone    string // the zone it is cut in, for created_at; "" = the session's
	anyZone bool   // also served by an hour rollup in any whole-hour zone at unit hour (EXTRACT(HOUR))
	exact   bool   // a plain day bucket, as count(distinct) at exact grain needs
	unknown bool
}

type genBound struct {
	op   string // >=, <, <=, >, =
	inst time.Time
	wall time.Time // for local_ts: the wall-clock value
}

type genTimeFilter struct {
	col     string
	bounds  []genBound
	unknown bool
}

type genMeasure struct {
	needs   []string // stored measures it is computed from
	dims    []string // dimensions it reads (FILTER, count(distinct dim))
	exact   bool     // count(distinct customer_id): only at the rollup's exact grain
	unknown bool
}

// genStatement is a statement being generated.
type genStatement struct {
	zone     string
	join     string // customers, stores or ""
	dims     []string
	derived  bool // a dimension is an expression over one (CASE, COALESCE)
	buckets  []genBucket
	tfilters []genTimeFilter
	measures []genMeasure
	fdims    []string // dimensions the WHERE reads
	notCanc  bool     // the WHERE implies status <> 'cancelled'
	// quantityOK: a rollup with quantity may serve the time column and zone.
	quantityOK bool
	params     []diffParam
	unknown    []string // parts that may make it miss, for the log
}

// answerable returns the rollups that can answer q under the model.
func (q *genStatement) answerable(models []genRollupModel) []string {
	if len(q.unknown) > 0 {
		return nil
	}
	var out []string
	for _, m := range models {
		if q.servedBy(m) {
			out = append(out, m.name)
		}
	}
	return out
}

func (q *genStatement) servedBy(m genRollupModel) bool {
	return q.whyNot(m) == ""
}

// whyNot names the first part of q that m cannot serve; "" if it serves all.
func (q *genStatement) whyNot(m genRollupModel) string {
	switch {
	case q.join == "" && m.join == "stores":
		return "inner join" // an inner join drops rows the query counts
	case q.join != "" && m.join != q.join:
		return "join"
	case m.filtered && !q.notCanc:
		return "rollup filter"
	}
	for _, d := range append(append([]string{}, q.dims...), q.fdims...) {
		if !m.dims[d] {
			return "dimension " + d
		}
	}
	for _, b := range q.buckets {
		if b.unknown || b.col != m.timeCol {
			return "bucket on " + b.col
		}
		if b.col == "created_at" {
			zone := b.zone
			if zone == "" {
				zone = q.zone
			}
			switch {
			case zone == "UTC":
				if !diffDerivable(b.unit, m.grain) {
					return "grain " + b.unit
				}
			case genWholeHourZones[zone] && m.grain == "hour":
				if b.unit == "hour" && !b.anyZone {
					return "hour bucket in " + zone
				}
			default:
				return "bucket zone " + zone
			}
		} else if !diffDerivable(b.unit, m.grain) {
			return "grain " + b.unit
		}
	}
	for _, f := range q.tfilters {
		if f.unknown || f.col != m.timeCol {
			return "time filter on " + f.col
		}
		if !genBoundsAligned(f, m.grain) {
			return "unaligned range on " + f.col
		}
	}
	for _, ms := range q.measures {
		if ms.unknown {
			return "measure"
		}
		for _, n := range ms.needs {
			if !m.measures[n] && !(n == "avg(price)" && m.measures["sum(price)"] && m.measures["count(price)"]) {
				return "measure " + n
			}
		}
		for _, d := range ms.dims {
			if !m.dims[d] {
				return "measure dimension " + d
			}
		}
		if ms.exact && !q.exactGrain(m) {
			return "count distinct not at exact grain"
		}
	}
	return ""
}

// exactGrain: the statement groups by all of m's dimensions and by m's own
// bucket, cut in the build zone, so each group is one rollup row.
func (q *genStatement) exactGrain(m genRollupModel) bool {
	if q.derived || len(q.dims) != len(m.dims) || len(q.buckets) != 1 {
		return false
	}
	b := q.buckets[0]
	zone := b.zone
	if zone == "" {
		zone = q.zone
	}
	return b.exact && b.unit == m.grain && zone == "UTC"
}

// genBoundsAligned applies §3 rule 6 to a range on the raw time column.
func genBoundsAligned(f genTimeFilter, grain string) bool {
	for _, b := range f.bounds {
		switch f.col {
		case "order_date":
			if grain != "day" {
				return false
			}
		case "local_ts":
			if b.op != ">=" && b.op != "<" {
				return false
			}
			if !diffAlignedTo(b.wall, grain) {
				return false
			}
		default:
			if b.op != ">=" && b.op != "<" {
				return false
			}
			if !diffAlignedTo(b.inst.UTC(), grain) {
				return false
			}
		}
	}
	return true
}

func diffAlignedTo(t time.Time, grain string) bool {
	if t.Nanosecond() != 0 || t.Second() != 0 || t.Minute() != 0 {
		return false
	}
	switch grain {
	case "hour":
		return true
	case "day":
		return t.Hour() == 0
	case "week":
		return t.Hour() == 0 && t.Weekday() == time.Monday
	case "month":
		return t.Hour() == 0 && t.Day() == 1
	}
	return false
}

// diffGenerator makes statements from a seed.
type diffGenerator struct {
	r      *rand.Rand
	now    time.Time
	models []genRollupModel
}

func newDiffGenerator(seed uint64, now time.Time) *diffGenerator {
	return &diffGenerator{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), now: now, models: genRollupModels()}
}

func (g *diffGenerator) pct(p int) bool { return g.r.IntN(100) < p }

func (g *diffGenerator) zone() string {
	switch k := g.r.IntN(20); {
	case k < 9:
		return "UTC"
	case k < 13:
		return "Europe/Berlin"
	case k < 17:
		return "America/New_York"
	default:
		return "Asia/Kolkata"
	}
}

// diffNaming holds how one statement spells its tables and columns.
type diffNaming struct {
	from string
	// col spells column name of table t (o: orders, c: customers, s: stores).
	col func(t, name string) string
	// joinWhere is the join condition of an implicit join, for the WHERE.
	joinWhere string
}

func (g *diffGenerator) naming(join string) diffNaming {
	switch join {
	case "customers":
		switch g.r.IntN(4) {
		case 0:
			return diffNaming{
				from: `"public"."orders" LEFT JOIN "public"."customers" AS "Customers" ON "public"."orders"."customer_id" = "Customers"."id"`,
				col: func(t, n string) string {
					if t == "c" {
						return `"Customers".` + sqlquote.Ident(n)
					}
					return `"public"."orders".` + sqlquote.Ident(n)
				},
			}
		case 1:
			return diffNaming{from: "orders o LEFT JOIN customers c ON c.id = o.customer_id", col: func(t, n string) string { return t + "." + n }}
		case 2:
			return diffNaming{from: "public.orders AS o LEFT OUTER JOIN public.customers AS c ON o.customer_id = c.id", col: func(t, n string) string { return t + "." + n }}
		default:
			return diffNaming{from: "orders o LEFT JOIN customers c ON o.customer_id = c.id", col: func(t, n string) string { return t + "." + n }}
		}
	case "stores":
		if g.pct(40) {
			return diffNaming{from: "orders o, stores s", joinWhere: "o.store_id = s.id", col: func(t, n string) string { return t + "." + n }}
		}
		return diffNaming{from: "orders o JOIN stores s ON o.store_id = s.id", col: func(t, n string) string { return t + "." + n }}
	}
	switch g.r.IntN(4) {
	case 0:
		return diffNaming{from: `"public"."orders"`, col: func(_, n string) string { return `"public"."orders".` + sqlquote.Ident(n) }}
	case 1:
		return diffNaming{from: "orders o", col: func(_, n string) string { return "o." + n }}
	case 2:
		return diffNaming{from: `"public"."orders" "orders"`, col: func(_, n string) string { return `"orders".` + sqlquote.Ident(n) }}
	default:
		return diffNaming{from: "orders", col: func(_, n string) string { return n }}
	}
}

// diffSelItem is one select-list entry.
type diffSelItem struct {
	sql   string
	agg   bool
	count bool // count(*): exact, a good leading sort key
}

// Statement generates one statement.
func (g *diffGenerator) Statement(i int) diffStmt {
	q := &genStatement{zone: g.zone()}
	switch k := g.r.IntN(100); {
	case k < 22:
		q.join = "customers"
	case k < 28:
		q.join = "stores"
	}
	nm := g.naming(q.join)
	timeCol := ""
	if q.join != "stores" {
		switch k := g.r.IntN(100); {
		case k < 58:
			timeCol = "created_at"
		case k < 76:
			timeCol = "order_date"
		case k < 90:
			timeCol = "local_ts"
		}
		if q.join == "customers" && timeCol != "created_at" && timeCol != "" && g.pct(70) {
			timeCol = "created_at"
		}
		if q.join == "customers" && q.zone != "UTC" && g.pct(60) {
			timeCol = "" // no rollup with customers is cut in another zone
		}
		if q.zone == "Asia/Kolkata" && timeCol == "created_at" && g.pct(60) {
			// No rollup cuts instants into half-hour zones' days: mostly
			// use the zone-less time columns there.
			timeCol = []string{"order_date", "local_ts"}[g.r.IntN(2)]
		}
	}

	var items []diffSelItem
	// Dimensions.
	nd := []int{0, 1, 1, 1, 2}[g.r.IntN(5)]
	for _, d := range g.pickDims(q, nd, timeCol) {
		items = append(items, diffSelItem{sql: g.dimSQL(q, nm, d)})
	}
	// Time buckets.
	if timeCol != "" {
		nb := []int{0, 1, 1, 1, 1, 2}[g.r.IntN(6)]
		for j := 0; j < nb; j++ {
			sql, b := g.bucket(q, nm, timeCol)
			q.buckets = append(q.buckets, b)
			items = append(items, diffSelItem{sql: sql})
		}
	}
	// Measures; none makes a filter drop-down (DISTINCT or GROUP BY alone).
	nmeas := []int{1, 1, 1, 2, 2, 3}[g.r.IntN(6)]
	if len(items) > 0 && g.pct(8) {
		nmeas = 0
	}
	for j := 0; j < nmeas; j++ {
		sql, m, count := g.measure(q, nm, timeCol)
		q.measures = append(q.measures, m)
		items = append(items, diffSelItem{sql: sql, agg: true, count: count})
	}
	if len(items) == 0 {
		sql, m, count := g.measure(q, nm, timeCol)
		q.measures = append(q.measures, m)
		items = append(items, diffSelItem{sql: sql, agg: true, count: count})
	}
	// Filters.
	var where []string
	if nm.joinWhere != "" {
		where = append(where, nm.joinWhere)
	}
	nf := []int{0, 0, 1, 1, 2, 3}[g.r.IntN(6)]
	for j := 0; j < nf; j++ {
		if timeCol != "" && g.pct(45) {
			where = append(where, g.timeFilter(q, nm, timeCol))
		} else {
			where = append(where, g.dimFilter(q, nm))
		}
	}
	if g.pct(3) {
		where = append(where, g.nearMissFilter(q, nm))
	}
	if g.pct(5) {
		// A time filter on another time column than the buckets'.
		other := []string{"created_at", "order_date", "local_ts"}[g.r.IntN(3)]
		if q.join != "stores" {
			where = append(where, g.timeFilter(q, nm, other))
		}
	}
	having := ""
	hasAgg := false
	for _, it := range items {
		hasAgg = hasAgg || it.agg
	}
	if hasAgg && g.pct(15) {
		if q.join == "stores" || g.pct(50) {
			having = fmt.Sprintf("count(*) > %d", g.r.IntN(300))
			q.measures = append(q.measures, genMeasure{needs: []string{"count(*)"}})
		} else {
			having = fmt.Sprintf("sum(%s) > %d", nm.col("o", "amount"), g.r.IntN(20000)-2000)
			q.measures = append(q.measures, genMeasure{needs: []string{"sum(amount)"}})
		}
	}
	if len(items) > 1 && g.pct(30) {
		g.r.Shuffle(len(items), func(a, b int) { items[a], items[b] = items[b], items[a] })
	}

	st := diffStmt{Kind: "generated", Name: fmt.Sprintf("#%d", i), Zone: q.zone}
	switch k := g.r.IntN(100); {
	case k < 10:
		st.Flavor = "sql"
	case k < 20:
		st.Flavor = "german"
	case k < 30:
		st.Flavor = "pgjdbc"
	}
	st.SQL = g.assemble(&st, nm, items, where, having, hasAgg)
	st.Params = q.params
	rollups := q.answerable(g.models)
	st.MustHit = len(rollups) > 0 && len(q.params) == 0
	if st.MustHit {
		st.Why = "answerable by " + strings.Join(rollups, ", ")
	} else if len(rollups) > 0 {
		// Bound parameters may pass through for now (routing needs their
		// values at Parse); compared all the same.
		st.Why = "answerable by " + strings.Join(rollups, ", ") + " but has parameters"
	} else if len(q.unknown) > 0 {
		st.Why = "may miss: " + strings.Join(q.unknown, "; ")
	} else {
		var why []string
		for _, m := range g.models {
			why = append(why, m.name+": "+q.whyNot(m))
		}
		st.Why = "no rollup has all its parts (" + strings.Join(why, "; ") + ")"
	}
	return st
}

// pickDims chooses n dimensions that the statement's joins provide.
func (g *diffGenerator) pickDims(q *genStatement, n int, timeCol string) []string {
	var pool []string
	switch q.join {
	case "customers":
		pool = []string{"status", "customers.country", "customers.country", "customers.segment", "quantity"}
	case "stores":
		pool = []string{"stores.region"}
	default:
		pool = []string{"status", "status", "status", "status", "quantity"}
	}
	// Only a day rollup in UTC without segment has quantity.
	q.quantityOK = (timeCol == "" || timeCol == "created_at") && q.zone == "UTC"
	if pool[len(pool)-1] == "quantity" && !q.quantityOK && g.pct(90) {
		pool = pool[:len(pool)-1]
	}
	seen := map[string]bool{}
	var out []string
	for j := 0; j < n; j++ {
		d := pool[g.r.IntN(len(pool))]
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	if q.join == "customers" && !seen["customers.country"] && !seen["customers.segment"] && g.pct(70) {
		out = append(out, "customers.country")
	}
	return out
}

// dimSQL spells a dimension, sometimes as an expression over it.
func (g *diffGenerator) dimSQL(q *genStatement, nm diffNaming, d string) string {
	t, col := "o", d
	if a, b, ok := strings.Cut(d, "."); ok {
		t, col = a[:1], b
	}
	ref := nm.col(t, col)
	q.dims = append(q.dims, d)
	if d == "status" {
		switch k := g.r.IntN(100); {
		case k < 5:
			q.derived = true
			return fmt.Sprintf("CASE WHEN %s = 'paid' THEN 'yes' ELSE 'no' END", ref)
		case k < 9:
			q.derived = true
			return fmt.Sprintf("COALESCE(%s, 'none')", ref)
		case k < 13:
			q.derived = true
			return fmt.Sprintf("CAST(%s AS TEXT)", ref) // Tableau
		case k < 14:
			q.unknown = append(q.unknown, "upper(status)")
			return fmt.Sprintf("upper(%s)", ref)
		}
	}
	if g.pct(1) {
		// Not a dimension of any rollup.
		q.unknown = append(q.unknown, "customer_id as a dimension")
		return nm.col("o", "customer_id")
	}
	return ref
}

// bucket returns a time bucket over col in one of the spellings of
// BI-CLIENTS.md, and what it needs.
func (g *diffGenerator) bucket(q *genStatement, nm diffNaming, col string) (string, genBucket) {
	ref := nm.col("o", col)
	units := []string{"hour", "day", "week", "month", "quarter", "year"}
	if col != "created_at" {
		units = units[1:]
	}
	unit := units[g.r.IntN(len(units))]
	if unit == "hour" && q.zone != "UTC" && g.pct(70) {
		unit = "day" // hour buckets of other zones are not answerable
	}
	b := genBucket{col: col, unit: unit}
	k := g.r.IntN(100)
	switch {
	case k < 35:
		u := unit
		if g.pct(30) {
			u = strings.ToUpper(u)
		}
		b.exact = unit == "day"
		return fmt.Sprintf("date_trunc('%s', %s)", u, ref), b
	case k < 45:
		b.unit, b.exact = "day", true
		if g.pct(50) {
			return ref + "::date", b
		}
		return fmt.Sprintf("CAST(%s AS DATE)", ref), b
	case k < 62:
		fields := []struct{ f, unit string }{
			{"YEAR", "year"}, {"QUARTER", "quarter"}, {"MONTH", "month"}, {"DAY", "day"}, {"DOW", "day"},
			{"ISODOW", "day"}, {"DOY", "day"}, {"WEEK", "day"}, {"HOUR", "hour"},
		}
		if col != "created_at" {
			fields = fields[:len(fields)-1]
		}
		f := fields[g.r.IntN(len(fields))]
		b.unit = f.unit
		b.anyZone = f.f == "HOUR"
		if g.pct(40) {
			return fmt.Sprintf("date_part('%s', %s)", strings.ToLower(f.f), ref), b
		}
		return fmt.Sprintf("EXTRACT(%s FROM %s)", f.f, ref), b
	case k < 68:
		b.unit = "quarter"
		return fmt.Sprintf("CAST(DATE_TRUNC('QUARTER', CAST(%s AS DATE)) AS DATE)", ref), b // Tableau
	case k < 72 && col != "order_date":
		b.unit = []string{"day", "month", "year"}[g.r.IntN(3)]
		return fmt.Sprintf("DATE_TRUNC( '%s', CAST(%s AS TIMESTAMP) )", strings.ToUpper(b.unit), ref), b // Tableau
	case k < 80 && col == "created_at":
		switch g.r.IntN(4) {
		case 0:
			b.unit = "month"
			return fmt.Sprintf("DATE_TRUNC('month', %s) AT TIME ZONE 'UTC'", ref), b // older Superset
		case 1:
			b.unit, b.zone = []string{"day", "month"}[g.r.IntN(2)], "UTC"
			return fmt.Sprintf("DATE_TRUNC('%s', (%s)::TIMESTAMPTZ AT TIME ZONE 'UTC')::TIMESTAMP", b.unit, ref), b // Malloy
		case 2:
			b.unit, b.zone = "day", "America/New_York"
			return fmt.Sprintf("date_trunc('day', %s AT TIME ZONE 'America/New_York')", ref), b
		default:
			b.unit, b.zone = "day", "Europe/Berlin"
			return fmt.Sprintf("date_trunc('day', %s, 'Europe/Berlin')", ref), b
		}
	case k < 83:
		// Near-misses: finer than any rollup, or not a bucket at all.
		b.unknown = true
		switch g.r.IntN(4) {
		case 0:
			q.unknown = append(q.unknown, "minute bucket")
			return fmt.Sprintf("date_trunc('minute', %s)", ref), b
		case 1:
			q.unknown = append(q.unknown, "epoch")
			return fmt.Sprintf("EXTRACT(EPOCH FROM %s)", ref), b
		case 2:
			if col == "order_date" {
				b.unknown, b.unit = false, "day" // the raw date column is a day bucket
				return ref, b
			}
			q.unknown = append(q.unknown, "raw time column")
			return ref, b
		default:
			q.unknown = append(q.unknown, "to_char bucket")
			return fmt.Sprintf("to_char(date_trunc('month', %s), 'YYYY-MM')", ref), b
		}
	default:
		if col == "order_date" {
			b.unit = "day"
			return ref, b
		}
		u := unit
		if u == "hour" && col != "created_at" {
			u = "day"
		}
		b.unit = u
		b.exact = u == "day"
		return fmt.Sprintf("DATE_TRUNC('%s', %s)", u, ref), b
	}
}

// measure returns an aggregate and what it needs.
func (g *diffGenerator) measure(q *genStatement, nm diffNaming, timeCol string) (string, genMeasure, bool) {
	o := func(c string) string { return nm.col("o", c) }
	status := o("status")
	type m struct {
		sql   string
		needs []string
		dims  []string
		exact bool
		count bool
		miss  string
	}
	pool := []m{
		{sql: "count(*)", needs: []string{"count(*)"}, count: true},
		{sql: "COUNT(*)", needs: []string{"count(*)"}, count: true},
		{sql: "count(1)", needs: []string{"count(*)"}},
		{sql: "sum(" + o("amount") + ")", needs: []string{"sum(amount)"}},
		{sql: "SUM(" + o("amount") + ")", needs: []string{"sum(amount)"}},
		{sql: "min(" + o("amount") + ")", needs: []string{"min(amount)"}},
		{sql: "max(" + o("amount") + ")", needs: []string{"max(amount)"}},
		{sql: "sum(" + o("price") + ")", needs: []string{"sum(price)"}},
		{sql: "count(" + o("price") + ")", needs: []string{"count(price)"}},
		{sql: "avg(" + o("price") + ")", needs: []string{"avg(price)"}},
		{sql: "sum(" + o("quantity") + ")", needs: []string{"sum(quantity)"}},
		{sql: "COALESCE(SUM(" + o("quantity") + "), 0)", needs: []string{"sum(quantity)"}}, // Looker, Malloy
		{sql: "sum(" + o("big") + ")", needs: []string{"sum(big)"}},
		{sql: "min(" + o("price") + ")", needs: []string{"min(price)"}},
		{sql: "max(" + o("price") + ")", needs: []string{"max(price)"}},
		{sql: "count(*) FILTER (WHERE " + status + " = 'paid')", needs: []string{"count(*)"}, dims: []string{"status"}},
		{sql: "sum(" + o("amount") + ") FILTER (WHERE " + status + " IN ('paid', 'new'))", needs: []string{"sum(amount)"}, dims: []string{"status"}},
		{sql: "count(DISTINCT " + status + ")", dims: []string{"status"}},
		{sql: "min(" + status + ")", dims: []string{"status"}},
		{sql: "max(" + status + ")", dims: []string{"status"}},
		{sql: "NULLIF(count(*), 0)", needs: []string{"count(*)"}},
		{sql: "-count(*)", needs: []string{"count(*)"}},
		{sql: "count(*) * 2", needs: []string{"count(*)"}},
		{sql: "sum(" + o("price") + ") * 1.5", needs: []string{"sum(price)"}},
		{sql: "CASE WHEN sum(" + o("amount") + ") > 100 THEN 'big' ELSE 'small' END", needs: []string{"sum(amount)"}},
		{sql: "sum(" + o("price") + ") / count(*)::float8", needs: []string{"sum(price)", "count(*)"}},
		{sql: "sum(" + o("amount") + ") + sum(" + o("price") + ")", needs: []string{"sum(amount)", "sum(price)"}},
		{sql: "count(distinct " + o("customer_id") + ")", needs: []string{"count(distinct customer_id)"}, exact: true},
		// Near-misses: aggregates no rollup stores.
		{sql: "stddev(" + o("amount") + ")", miss: "stddev"},
		{sql: "sum(" + o("amount") + " * 2)", miss: "sum of an expression"},
		{sql: "count(" + o("amount") + ")", miss: "count(amount)"},
		{sql: "avg(" + o("quantity") + ")", miss: "avg(quantity)"},
		{sql: "avg(" + o("amount") + ")", miss: "avg(numeric)"},
		{sql: "sum(DISTINCT " + o("amount") + ")", miss: "sum distinct"},
		{sql: "max(" + o("created_at") + ")", miss: "max of the raw time"},
		{sql: "sum(" + o("quantity") + ") / count(*)", miss: "integer division"},
		{sql: "100.0 * sum(" + o("amount") + ") / count(*)", miss: "numeric division"},
	}
	const regular = 28 // pool[:regular] are stored or derivable somewhere
	var x m
	switch k := g.r.IntN(100); {
	case q.join == "stores":
		x = []m{pool[0], pool[1], pool[2], pool[20], pool[21], pool[22], pool[0], pool[1], pool[2], {sql: "count(" + o("id") + ")", miss: "count(id)"}}[g.r.IntN(10)]
	case k < 80:
		// Mostly what the rollups over this time column and join store.
		var fit []m
		for _, c := range pool[:regular] {
			if g.familyStores(q.join, timeCol, c.needs) {
				fit = append(fit, c)
			}
		}
		if len(fit) == 0 {
			fit = pool[:regular] // no rollup over this time column has the join
		}
		x = fit[g.r.IntN(len(fit))]
	case k < 95:
		x = pool[g.r.IntN(regular)]
	default:
		x = pool[regular+g.r.IntN(len(pool)-regular)]
	}
	mp := genMeasure{needs: x.needs, dims: x.dims, exact: x.exact}
	if x.miss != "" {
		mp.unknown = true
		q.unknown = append(q.unknown, x.miss)
	}
	return x.sql, mp, x.count
}

// familyStores reports whether some rollup over timeCol ("": any) with the
// join stores every measure in needs.
func (g *diffGenerator) familyStores(join, timeCol string, needs []string) bool {
	for _, m := range g.models {
		if timeCol != "" && m.timeCol != timeCol {
			continue
		}
		if join != m.join && !(join == "" && m.join == "customers") {
			continue
		}
		ok := true
		for _, n := range needs {
			ok = ok && m.measures[n]
		}
		if ok {
			return true
		}
	}
	return false
}

// dimFilter returns a predicate on dimensions.
func (g *diffGenerator) dimFilter(q *genStatement, nm diffNaming) string {
	o := func(c string) string { return nm.col("o", c) }
	type f struct {
		sql     string
		dims    []string
		notCanc bool
	}
	var pool []f
	switch q.join {
	case "stores":
		pool = []f{
			{sql: "s.region = 'north'", dims: []string{"stores.region"}},
			{sql: "s.region IS NULL", dims: []string{"stores.region"}},
			{sql: "s.region IN ('south', 'east')", dims: []string{"stores.region"}},
		}
	default:
		s := o("status")
		pool = []f{
			{sql: s + " = 'paid'", dims: []string{"status"}, notCanc: true},
			{sql: s + " IN ('paid', 'new')", dims: []string{"status"}, notCanc: true},
			{sql: s + " IS NULL", dims: []string{"status"}},
			{sql: s + " IS NOT NULL", dims: []string{"status"}},
			{sql: s + " <> 'cancelled'", dims: []string{"status"}, notCanc: true},
			{sql: s + " <> 'cancelled'", dims: []string{"status"}, notCanc: true},
			{sql: s + " <> 'new'", dims: []string{"status"}},
			{sql: "NOT (" + s + " = 'paid')", dims: []string{"status"}},
			{sql: "(" + s + " = 'shipped' OR " + s + " = 'Paid')", dims: []string{"status"}, notCanc: true},
			{sql: s + " > 'm'", dims: []string{"status"}},
			{sql: s + " NOT IN ('café', 'on hold')", dims: []string{"status"}},
			{sql: s + " = 'café'", dims: []string{"status"}, notCanc: true},
			{sql: s + " = 'lost'", dims: []string{"status"}, notCanc: true}, // no such rows: empty groups, COUNT 0
			{sql: s + " IN ('lost', 'found')", dims: []string{"status"}, notCanc: true},
			{sql: o("quantity") + " >= 2", dims: []string{"quantity"}},
			{sql: o("quantity") + " IN (1, 2, 3)", dims: []string{"quantity"}},
			{sql: o("quantity") + " BETWEEN 2 AND 5", dims: []string{"quantity"}},
			{sql: o("quantity") + " IS NULL", dims: []string{"quantity"}},
			{sql: "(" + s + " = 'paid' OR " + o("quantity") + " = 1)", dims: []string{"status", "quantity"}},
		}
		if q.join == "customers" {
			c := func(col string) string { return nm.col("c", col) }
			pool = append(pool,
				f{sql: c("country") + " = 'DE'", dims: []string{"customers.country"}},
				f{sql: c("country") + " IN ('DE', 'FR')", dims: []string{"customers.country"}},
				f{sql: c("country") + " IS NULL", dims: []string{"customers.country"}},
				f{sql: c("country") + " <> 'US'", dims: []string{"customers.country"}},
				f{sql: c("segment") + " = 'smb'", dims: []string{"customers.segment"}},
				f{sql: c("segment") + " IS NOT NULL", dims: []string{"customers.segment"}},
			)
		}
	}
	if !q.quantityOK {
		var keep []f
		for _, c := range pool {
			if !strings.Contains(c.sql, "quantity") || g.pct(10) {
				keep = append(keep, c)
			}
		}
		pool = keep
	}
	x := pool[g.r.IntN(len(pool))]
	q.fdims = append(q.fdims, x.dims...)
	q.notCanc = q.notCanc || x.notCanc
	if q.join != "stores" && strings.HasSuffix(x.sql, " = 'paid'") && g.pct(30) {
		// A bound filter value, untyped or text.
		return strings.TrimSuffix(x.sql, "'paid'") + g.param(q, []uint32{0, pgtype.TextOID}[g.r.IntN(2)], "paid")
	}
	return x.sql
}

// param adds a parameter in text format and returns its placeholder.
func (g *diffGenerator) param(q *genStatement, oid uint32, value string) string {
	q.params = append(q.params, diffParam{OID: oid, Value: &value})
	return fmt.Sprintf("$%d", len(q.params))
}

func (g *diffGenerator) nearMissFilter(q *genStatement, nm diffNaming) string {
	pool := []struct{ sql, why string }{
		{nm.col("o", "id") + " > 1000", "filter on id"},
		{nm.col("o", "customer_id") + " = 7", "filter on customer_id"},
		{nm.col("o", "note") + " IS NULL", "filter on note"},
		{nm.col("o", "amount") + " > 10", "filter on amount"},
		{nm.col("o", "status") + " LIKE 'p%'", "LIKE"},
	}
	x := pool[g.r.IntN(len(pool))]
	q.unknown = append(q.unknown, x.why)
	return x.sql
}

// dataDay picks a day of the data's range.
func (g *diffGenerator) dataDay() time.Time {
	days := int(diffDataEnd.Sub(diffDataStart).Hours() / 24)
	return diffDataStart.AddDate(0, 0, g.r.IntN(days))
}

// timeFilter returns a range on a raw time column, aligned or not, in the
// spellings of BI-CLIENTS.md, and records its bounds.
func (g *diffGenerator) timeFilter(q *genStatement, nm diffNaming, col string) string {
	ref := nm.col("o", col)
	loc := diffZone(q.zone)
	f := genTimeFilter{col: col}
	defer func() { q.tfilters = append(q.tfilters, f) }()

	// lit spells a wall-clock value as a literal of the column's kind.
	lit := func(t time.Time, withTime bool) string {
		d := t.Format("2006-01-02")
		if !withTime {
			switch g.r.IntN(3) {
			case 0:
				return "'" + d + "'"
			case 1:
				return "DATE '" + d + "'"
			default:
				return "(DATE '" + d + "')" // Tableau, Power BI
			}
		}
		s := t.Format("2006-01-02 15:04:05")
		switch g.r.IntN(3) {
		case 0:
			return "'" + s + "'"
		case 1:
			return "(TIMESTAMP '" + t.Format("2006-01-02 15:04:05.000") + "')" // Tableau
		default:
			if col == "created_at" {
				// Superset; to_timestamp is timestamptz, read in the session zone.
				return "TO_TIMESTAMP('" + t.Format("2006-01-02 15:04:05.000000") + "', 'YYYY-MM-DD HH24:MI:SS.US')"
			}
			return "TIMESTAMP '" + s + "'"
		}
	}
	// bound records a literal's value: an instant in the session zone, or a
	// wall-clock value for the zone-less types.
	bound := func(op string, wall time.Time) genBound {
		return genBound{op: op, inst: time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc), wall: wall}
	}
	day := g.dataDay()
	switch col {
	case "order_date":
		d2 := day.AddDate(0, 0, 1+g.r.IntN(60))
		switch g.r.IntN(6) {
		case 0:
			f.bounds = []genBound{bound(">=", day), bound("<=", d2)}
			return fmt.Sprintf("%s BETWEEN %s AND %s", ref, lit(day, false), lit(d2, false))
		case 1:
			f.bounds = []genBound{bound("=", day)}
			return fmt.Sprintf("%s = %s", ref, lit(day, false))
		case 2:
			f.bounds = []genBound{bound(">", day)}
			return fmt.Sprintf("%s > %s", ref, lit(day, false))
		case 3:
			f.bounds = []genBound{bound(">=", day)}
			return fmt.Sprintf("%s >= current_date - %d", ref, int(g.now.Sub(day).Hours()/24))
		default:
			f.bounds = []genBound{bound(">=", day), bound("<", d2)}
			if g.pct(15) {
				// Metabase binds the range: date parameters in text format.
				return fmt.Sprintf("(%s >= %s) AND (%s < %s)", ref, g.param(q, pgtype.DateOID, day.Format("2006-01-02")), ref, g.param(q, pgtype.DateOID, d2.Format("2006-01-02")))
			}
			return fmt.Sprintf("%s >= %s AND %s < %s", ref, lit(day, false), ref, lit(d2, false))
		}
	case "local_ts":
		d2 := day.AddDate(0, 0, 1+g.r.IntN(60))
		switch g.r.IntN(6) {
		case 0:
			m1 := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
			m2 := m1.AddDate(0, 1+g.r.IntN(5), 0)
			f.bounds = []genBound{bound(">=", m1), bound("<", m2)}
			return fmt.Sprintf("%s >= %s AND %s < %s", ref, lit(m1, false), ref, lit(m2, false))
		case 1:
			h := day.Add(time.Duration(1+g.r.IntN(23)) * time.Hour)
			f.bounds = []genBound{bound(">=", h)}
			return fmt.Sprintf("%s >= %s", ref, lit(h, true))
		case 2:
			f.bounds = []genBound{bound(">=", day), bound("<=", d2)}
			return fmt.Sprintf("%s BETWEEN %s AND %s", ref, lit(day, false), lit(d2, false))
		default:
			f.bounds = []genBound{bound(">=", day), bound("<", d2)}
			return fmt.Sprintf("%s >= %s AND %s < %s", ref, lit(day, false), ref, lit(d2, false))
		}
	}
	// created_at.
	d2 := day.AddDate(0, 0, 1+g.r.IntN(90))
	switch k := g.r.IntN(100); {
	case k < 30:
		if g.pct(20) {
			// Metabase binds the range: timestamptz parameters with an
			// offset (OID 1184), or untyped ones.
			oid := []uint32{pgtype.TimestamptzOID, 0}[g.r.IntN(2)]
			f.bounds = []genBound{{op: ">=", inst: day}, {op: "<", inst: d2}}
			return fmt.Sprintf("(%s >= %s) AND (%s < %s)", ref, g.param(q, oid, day.Format("2006-01-02 15:04:05+00")), ref, g.param(q, oid, d2.Format("2006-01-02 15:04:05+00")))
		}
		f.bounds = []genBound{bound(">=", day), bound("<", d2)}
		return fmt.Sprintf("%s >= %s AND %s < %s", ref, lit(day, g.pct(30)), ref, lit(d2, g.pct(30)))
	case k < 42:
		m1 := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
		m2 := m1.AddDate(0, 1+g.r.IntN(5), 0)
		f.bounds = []genBound{bound(">=", m1), bound("<", m2)}
		return fmt.Sprintf("(%s >= %s) AND (%s < %s)", ref, lit(m1, false), ref, lit(m2, false))
	case k < 44:
		// Before the data: an empty answer (COUNT 0 and SUM NULL without GROUP BY).
		lo := time.Date(2021+g.r.IntN(2), time.Month(1+g.r.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
		hi := lo.AddDate(0, 1, 0)
		f.bounds = []genBound{bound(">=", lo), bound("<", hi)}
		return fmt.Sprintf("%s >= %s AND %s < %s", ref, lit(lo, false), ref, lit(hi, false))
	case k < 50:
		// An explicit UTC instant: the same bounds in every session zone.
		f.bounds = []genBound{{op: ">=", inst: day}, {op: "<", inst: d2}}
		return fmt.Sprintf("%s >= '%sT00:00:00Z' AND %s < '%sT00:00:00Z'", ref, day.Format("2006-01-02"), ref, d2.Format("2006-01-02"))
	case k < 58:
		// On the hour, or on the half hour (a Kolkata hour in UTC).
		h := day.Add(time.Duration(g.r.IntN(24))*time.Hour + time.Duration(g.r.IntN(2))*30*time.Minute)
		f.bounds = []genBound{bound(">=", h)}
		return fmt.Sprintf("%s >= %s", ref, lit(h, true))
	case k < 63:
		h := day.Add(time.Duration(g.r.IntN(24*60)) * time.Minute)
		f.bounds = []genBound{bound("<", h)}
		return fmt.Sprintf("%s < %s", ref, lit(h, true))
	case k < 68:
		// Grafana: inclusive, never aligned.
		f.bounds = []genBound{{op: ">=", inst: day}, {op: "<=", inst: d2.Add(-time.Second)}}
		return fmt.Sprintf("%s BETWEEN '%sT00:00:00Z' AND '%sT23:59:59Z'", ref, day.Format("2006-01-02"), d2.AddDate(0, 0, -1).Format("2006-01-02"))
	case k < 72:
		f.bounds = []genBound{bound(">=", day), bound("<=", d2)}
		return fmt.Sprintf("%s >= %s AND %s <= %s", ref, lit(day, false), ref, lit(d2, false)) // Tableau's inclusive end
	case k < 82:
		// Metabase's relative month range, folded in the session zone.
		n1 := 20 + g.r.IntN(25)
		n2 := n1 - 1 - g.r.IntN(6)
		nowz := g.now.In(loc)
		lo := time.Date(nowz.Year(), nowz.Month()-time.Month(n1), 1, 0, 0, 0, 0, loc)
		hi := time.Date(nowz.Year(), nowz.Month()-time.Month(n2), 1, 0, 0, 0, 0, loc)
		f.bounds = []genBound{{op: ">=", inst: lo}, {op: "<", inst: hi}}
		return fmt.Sprintf("(%s >= date_trunc('month', (now() + (INTERVAL '-%d month')))) AND (%s < date_trunc('month', (now() + (INTERVAL '-%d month'))))", ref, n1, ref, n2)
	case k < 88:
		n := int(g.now.Sub(day).Hours()/24) + g.r.IntN(3)
		nowz := g.now.In(loc)
		lo := time.Date(nowz.Year(), nowz.Month(), nowz.Day()-n, 0, 0, 0, 0, loc)
		f.bounds = []genBound{{op: ">=", inst: lo}}
		return fmt.Sprintf("%s >= current_date - %d", ref, n)
	case k < 93:
		n := int(g.now.Sub(day).Hours() / 24)
		f.unknown = true // now() minus days is never aligned, and moves
		q.unknown = append(q.unknown, "now() - interval")
		return fmt.Sprintf("%s >= now() - interval '%d days'", ref, n)
	default:
		f.bounds = []genBound{bound("=", day)}
		return fmt.Sprintf("%s = %s", ref, lit(day, false))
	}
}

// assemble writes the statement: GROUP BY in one of its spellings, HAVING,
// ORDER BY over every output column (a total order, so a LIMIT cuts at a
// determined place), and sometimes Metabase's "source" wrapper.
func (g *diffGenerator) assemble(st *diffStmt, nm diffNaming, items []diffSelItem, where []string, having string, hasAgg bool) string {
	var groupable []int
	for i, it := range items {
		if !it.agg {
			groupable = append(groupable, i)
		}
	}
	wrap := g.pct(10)
	aliases := make([]string, len(items))
	for i := range items {
		aliases[i] = fmt.Sprintf("c%d", i+1)
		if wrap {
			aliases[i] = []string{"status", "count", "sum", "created_at", "avg", "min"}[g.r.IntN(6)] + fmt.Sprintf("_%d", i+1)
		}
	}
	useAlias := wrap || g.pct(30)
	var sel []string
	for i, it := range items {
		s := it.sql
		if useAlias {
			s += " AS " + sqlquote.Ident(aliases[i])
		}
		sel = append(sel, s)
	}
	distinct := !hasAgg && g.pct(50)
	var b strings.Builder
	b.WriteString("SELECT ")
	if distinct {
		b.WriteString("DISTINCT ")
	}
	b.WriteString(strings.Join(sel, ", "))
	b.WriteString(" FROM " + nm.from)
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if len(groupable) > 0 && !distinct {
		var gb []string
		style := g.r.IntN(3)
		if wrap {
			style = 1 // Metabase repeats the expressions
		}
		for _, i := range groupable {
			switch {
			case style == 0:
				gb = append(gb, fmt.Sprint(i+1))
			case style == 2 && useAlias:
				gb = append(gb, sqlquote.Ident(aliases[i]))
			default:
				gb = append(gb, items[i].sql)
			}
		}
		b.WriteString(" GROUP BY " + strings.Join(gb, ", "))
	}
	if having != "" {
		b.WriteString(" HAVING " + having)
	}
	inner := b.String()

	// ORDER BY every output column: the rows are distinct, so the order is total.
	ordered := g.pct(40)
	var order []int
	if ordered {
		for i := range items {
			order = append(order, i)
		}
		for i, it := range items {
			if it.count && g.pct(50) {
				// A count first, descending, as dashboards sort.
				order = append([]int{i}, append(order[:i:i], order[i+1:]...)...)
				break
			}
		}
	}
	orderBy := func(ref func(i int) string) string {
		var parts []string
		for _, i := range order {
			s := ref(i)
			switch g.r.IntN(4) {
			case 1:
				s += " DESC"
			case 2:
				s += " DESC NULLS LAST"
			case 3:
				s += " ASC NULLS FIRST"
			}
			parts = append(parts, s)
		}
		return " ORDER BY " + strings.Join(parts, ", ")
	}
	limit := int64(0)
	offset := false
	tail := ""
	if ordered {
		if g.pct(50) {
			limit = int64(1 + g.r.IntN(20))
			tail = fmt.Sprintf(" LIMIT %d", limit)
			if g.pct(20) {
				offset = true
				tail += fmt.Sprintf(" OFFSET %d", g.r.IntN(5))
			}
		}
		var keys []int
		for i := range items {
			keys = append(keys, i)
		}
		st.Order = &diffOrder{Keys: keys, Limit: limit, Offset: offset}
	} else if wrap || g.pct(5) {
		limit = 1048575 // Metabase's cap: never reached here, so no order needed
		tail = " LIMIT 1048575"
		st.Limit = limit
	}
	if !wrap {
		if ordered {
			inner += orderBy(func(i int) string { return fmt.Sprint(i + 1) })
		}
		return inner + tail
	}
	var outer []string
	for i := range items {
		outer = append(outer, fmt.Sprintf(`"source".%s AS %s`, sqlquote.Ident(aliases[i]), sqlquote.Ident(aliases[i])))
	}
	s := "SELECT " + strings.Join(outer, ", ") + " FROM (" + inner + `) AS "source"`
	if ordered {
		s += orderBy(func(i int) string { return `"source".` + sqlquote.Ident(aliases[i]) })
	}
	return s + tail
}

// diffGeneratedStmts returns n statements from seed.
func diffGeneratedStmts(seed uint64, n int, now time.Time) []diffStmt {
	g := newDiffGenerator(seed, now)
	out := make([]diffStmt, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, g.Statement(i+1))
	}
	return out
}

// diffMustHitShare is the share of statements the generator marks must-hit.
func diffMustHitShare(stmts []diffStmt) float64 {
	n := 0
	for _, s := range stmts {
		if s.MustHit {
			n++
		}
	}
	return float64(n) / float64(len(stmts))
}

// diffSortedKeys returns a map's keys in order.
func diffSortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
