package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// schemaSQL is the SSB schema (O'Neil et al., section 2) in Postgres types:
// integers for keys, quantities and money (dbgen writes money in cents as
// integers), varchar of the spec's lengths for the text columns.
const schemaSQL = `CREATE TABLE dwdate (
    d_datekey          integer PRIMARY KEY,  -- 19920101
    d_date             varchar(18) NOT NULL, -- 'January 1, 1992'
    d_dayofweek        varchar(9) NOT NULL,
    d_month            varchar(9) NOT NULL,
    d_year             integer NOT NULL,
    d_yearmonthnum     integer NOT NULL,     -- 199201
    d_yearmonth        varchar(7) NOT NULL,  -- 'Jan1992'
    d_daynuminweek     integer NOT NULL,
    d_daynuminmonth    integer NOT NULL,
    d_daynuminyear     integer NOT NULL,
    d_monthnuminyear   integer NOT NULL,
    d_weeknuminyear    integer NOT NULL,
    d_sellingseason    varchar(12) NOT NULL,
    d_lastdayinweekfl  boolean NOT NULL,
    d_lastdayinmonthfl boolean NOT NULL,
    d_holidayfl        boolean NOT NULL,
    d_weekdayfl        boolean NOT NULL
);
CREATE TABLE customer (
    c_custkey    integer PRIMARY KEY,
    c_name       varchar(25) NOT NULL,
    c_address    varchar(25) NOT NULL,
    c_city       varchar(10) NOT NULL,
    c_nation     varchar(15) NOT NULL,
    c_region     varchar(12) NOT NULL,
    c_phone      varchar(15) NOT NULL,
    c_mktsegment varchar(10) NOT NULL
);
CREATE TABLE supplier (
    s_suppkey integer PRIMARY KEY,
    s_name    varchar(25) NOT NULL,
    s_address varchar(25) NOT NULL,
    s_city    varchar(10) NOT NULL,
    s_nation  varchar(15) NOT NULL,
    s_region  varchar(12) NOT NULL,
    s_phone   varchar(15) NOT NULL
);
CREATE TABLE part (
    p_partkey   integer PRIMARY KEY,
    p_name      varchar(22) NOT NULL,
    p_mfgr      varchar(6) NOT NULL,
    p_category  varchar(7) NOT NULL,
    p_brand1    varchar(9) NOT NULL,
    p_color     varchar(11) NOT NULL,
    p_type      varchar(25) NOT NULL,
    p_size      integer NOT NULL,
    p_container varchar(10) NOT NULL
);
CREATE TABLE lineorder (
    lo_orderkey      integer NOT NULL,
    lo_linenumber    integer NOT NULL,
    lo_custkey       integer NOT NULL,
    lo_partkey       integer NOT NULL,
    lo_suppkey       integer NOT NULL,
    lo_orderdate     integer NOT NULL,
    lo_orderpriority varchar(15) NOT NULL,
    lo_shippriority  varchar(1) NOT NULL,
    lo_quantity      integer NOT NULL,
    lo_extendedprice integer NOT NULL,
    lo_ordtotalprice integer NOT NULL,
    lo_discount      integer NOT NULL,
    lo_revenue       integer NOT NULL,
    lo_supplycost    integer NOT NULL,
    lo_tax           integer NOT NULL,
    lo_commitdate    integer NOT NULL,
    lo_shipmode      varchar(10) NOT NULL
)`

// afterLoadSQL is what a DBA does after a bulk load. No indexes on
// lineorder: every SSB query reads most of it, and Postgres hash-joins the
// dimensions.
var afterLoadSQL = []string{
	`ALTER TABLE lineorder ADD PRIMARY KEY (lo_orderkey, lo_linenumber)`,
	`VACUUM ANALYZE dwdate, customer, supplier, part, lineorder`,
}

// sizes are the row counts of a scale factor, as dbgen computes them:
// 30,000 customers, 2,000 suppliers and 1,500,000 orders of 1 to 7 lines
// (about 6 million lineorder rows) per unit of scale, and 200,000 parts
// times 1 + log2(SF). Fractional scales keep the proportions, with a floor
// so that a tiny scale still has every nation and city somewhere.
type sizes struct {
	customers, suppliers, parts, orders int
}

func sizesOf(sf float64) sizes {
	parts := 200_000 * sf
	if sf >= 1 {
		parts = 200_000 * math.Floor(1+math.Log2(sf))
	}
	return sizes{
		customers: max(300, int(30_000*sf)),
		suppliers: max(100, int(2_000*sf)),
		parts:     max(1_000, int(parts)),
		orders:    max(100, int(1_500_000*sf)),
	}
}

// The value lists of dbgen (TPC-H's dists.dss, which SSB's dbgen reuses).
var (
	nations = []struct{ name, region string }{
		{"ALGERIA", "AFRICA"}, {"ARGENTINA", "AMERICA"}, {"BRAZIL", "AMERICA"}, {"CANADA", "AMERICA"},
		{"EGYPT", "MIDDLE EAST"}, {"ETHIOPIA", "AFRICA"}, {"FRANCE", "EUROPE"}, {"GERMANY", "EUROPE"},
		{"INDIA", "ASIA"}, {"INDONESIA", "ASIA"}, {"IRAN", "MIDDLE EAST"}, {"IRAQ", "MIDDLE EAST"},
		{"JAPAN", "ASIA"}, {"JORDAN", "MIDDLE EAST"}, {"KENYA", "AFRICA"}, {"MOROCCO", "AFRICA"},
		{"MOZAMBIQUE", "AFRICA"}, {"PERU", "AMERICA"}, {"CHINA", "ASIA"}, {"ROMANIA", "EUROPE"},
		{"SAUDI ARABIA", "MIDDLE EAST"}, {"VIETNAM", "ASIA"}, {"RUSSIA", "EUROPE"},
		{"UNITED KINGDOM", "EUROPE"}, {"UNITED STATES", "AMERICA"},
	}
	segments   = []string{"AUTOMOBILE", "BUILDING", "FURNITURE", "MACHINERY", "HOUSEHOLD"}
	priorities = []string{"1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECI", "5-LOW"}
	shipModes  = []string{"REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"}
	colors     = []string{"almond", "antique", "aquamarine", "azure", "beige", "bisque", "black", "blanched",
		"blue", "blush", "brown", "burlywood", "burnished", "chartreuse", "chiffon", "chocolate", "coral",
		"cornflower", "cornsilk", "cream", "cyan", "dark", "deep", "dim", "dodger", "drab", "firebrick",
		"floral", "forest", "frosted", "gainsboro", "ghost", "goldenrod", "green", "grey", "honeydew",
		"hot", "indian", "ivory", "khaki", "lace", "lavender", "lawn", "lemon", "light", "lime", "linen",
		"magenta", "maroon", "medium", "metallic", "midnight", "mint", "misty", "moccasin", "navajo",
		"navy", "olive", "orange", "orchid", "pale", "papaya", "peach", "peru", "pink", "plum", "powder",
		"puff", "purple", "red", "rose", "rosy", "royal", "saddle", "salmon", "sandy", "seashell", "sienna",
		"sky", "slate", "smoke", "snow", "spring", "steel", "tan", "thistle", "tomato", "turquoise",
		"violet", "wheat", "white", "yellow"}
	typeSyllables = [3][]string{
		{"STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"},
		{"ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"},
		{"TIN", "NICKEL", "BRASS", "STEEL", "COPPER"},
	}
	containerSyllables = [2][]string{
		{"SM", "LG", "MED", "JUMBO", "WRAP"},
		{"CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"},
	}
)

// city is dbgen's city of a nation: the name's first nine characters,
// space-padded, and a digit ('UNITED KI1').
func city(nation string, r *rand.Rand) string {
	return fmt.Sprintf("%-9.9s%d", nation, r.IntN(10))
}

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

func phone(nation int, r *rand.Rand) string {
	return fmt.Sprintf("%02d-%03d-%03d-%04d", 10+nation, 100+r.IntN(900), 100+r.IntN(900), 1000+r.IntN(9000))
}

func address(r *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,"
	b := make([]byte, 10+r.IntN(15))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// retailPrice is TPC-H's p_retailprice of a part, in cents.
func retailPrice(partkey int) int {
	return 90_000 + (partkey/10)%20_001 + 100*(partkey%1_000)
}

// generator makes the rows of every table from one seed, so that a scale
// gives the same data on every run.
type generator struct {
	sz    sizes
	dates []int32 // d_datekey of every day, 1992-01-01 to 1998-12-31
}

func newGenerator(sf float64) *generator {
	g := &generator{sz: sizesOf(sf)}
	for d := time.Date(1992, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() <= 1998; d = d.AddDate(0, 0, 1) {
		g.dates = append(g.dates, int32(d.Year()*10000+int(d.Month())*100+d.Day()))
	}
	return g
}

func seeded(table string) *rand.Rand {
	var seed uint64
	for _, c := range table {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 1998))
}

// table is one table's COPY: its columns and a function that gives the
// next row, or nil after the last.
type table struct {
	name    string
	columns []string
	next    func() []any
}

// rows gives rows 0 to n-1 of row(i).
func rows(n int, row func(i int) []any) func() []any {
	i := 0
	return func() []any {
		if i == n {
			return nil
		}
		i++
		return row(i - 1)
	}
}

func (g *generator) tables() []table {
	return []table{g.dwdate(), g.customer(), g.supplier(), g.part(), g.lineorder()}
}

func (g *generator) dwdate() table {
	cols := []string{"d_datekey", "d_date", "d_dayofweek", "d_month", "d_year", "d_yearmonthnum", "d_yearmonth",
		"d_daynuminweek", "d_daynuminmonth", "d_daynuminyear", "d_monthnuminyear", "d_weeknuminyear",
		"d_sellingseason", "d_lastdayinweekfl", "d_lastdayinmonthfl", "d_holidayfl", "d_weekdayfl"}
	start := time.Date(1992, 1, 1, 0, 0, 0, 0, time.UTC)
	return table{name: "dwdate", columns: cols, next: rows(len(g.dates), func(i int) []any {
		d := start.AddDate(0, 0, i)
		season := "Winter"
		switch m := d.Month(); {
		case m >= 3 && m <= 5:
			season = "Spring"
		case m >= 6 && m <= 8:
			season = "Summer"
		case m >= 9 && m <= 10:
			season = "Fall"
		case m == 12 && d.Day() >= 15 || m == 11:
			season = "Christmas"
		}
		holiday := d.Month() == 1 && d.Day() == 1 || d.Month() == 7 && d.Day() == 4 || d.Month() == 12 && d.Day() == 25
		return []any{
			g.dates[i], d.Format("January 2, 2006"), d.Weekday().String(), d.Month().String(),
			d.Year(), d.Year()*100 + int(d.Month()), d.Format("Jan2006"),
			int(d.Weekday()) + 1, d.Day(), d.YearDay(), int(d.Month()), (d.YearDay()-1)/7 + 1,
			season, d.Weekday() == time.Saturday, d.AddDate(0, 0, 1).Day() == 1, holiday,
			d.Weekday() != time.Saturday && d.Weekday() != time.Sunday,
		}
	})}
}

func (g *generator) customer() table {
	r := seeded("customer")
	cols := []string{"c_custkey", "c_name", "c_address", "c_city", "c_nation", "c_region", "c_phone", "c_mktsegment"}
	return table{name: "customer", columns: cols, next: rows(g.sz.customers, func(i int) []any {
		n := r.IntN(len(nations))
		return []any{i + 1, fmt.Sprintf("Customer#%09d", i+1), address(r), city(nations[n].name, r),
			nations[n].name, nations[n].region, phone(n, r), pick(r, segments)}
	})}
}

func (g *generator) supplier() table {
	r := seeded("supplier")
	cols := []string{"s_suppkey", "s_name", "s_address", "s_city", "s_nation", "s_region", "s_phone"}
	return table{name: "supplier", columns: cols, next: rows(g.sz.suppliers, func(i int) []any {
		n := r.IntN(len(nations))
		return []any{i + 1, fmt.Sprintf("Supplier#%09d", i+1), address(r), city(nations[n].name, r),
			nations[n].name, nations[n].region, phone(n, r)}
	})}
}

// part: MFGR#1..5, categories MFGR#11..55 (the manufacturer's digit and
// 1..5), brands MFGR#1101..5540 (the category and 1..40).
func (g *generator) part() table {
	r := seeded("part")
	cols := []string{"p_partkey", "p_name", "p_mfgr", "p_category", "p_brand1", "p_color", "p_type", "p_size", "p_container"}
	return table{name: "part", columns: cols, next: rows(g.sz.parts, func(i int) []any {
		m, c, b := 1+r.IntN(5), 1+r.IntN(5), 1+r.IntN(40)
		return []any{i + 1, pick(r, colors) + " " + pick(r, colors),
			fmt.Sprintf("MFGR#%d", m), fmt.Sprintf("MFGR#%d%d", m, c), fmt.Sprintf("MFGR#%d%d%02d", m, c, b),
			pick(r, colors), strings.Join([]string{pick(r, typeSyllables[0]), pick(r, typeSyllables[1]), pick(r, typeSyllables[2])}, " "),
			1 + r.IntN(50), pick(r, containerSyllables[0]) + " " + pick(r, containerSyllables[1])}
	})}
}

// lineorder: orders of 1 to 7 lines, each order with one customer, date
// and priority; every line a random part and supplier. The order date is
// uniform over the seven years less the last 151 days (dbgen's), the commit
// date 30 to 90 days later.
func (g *generator) lineorder() table {
	r := seeded("lineorder")
	cols := []string{"lo_orderkey", "lo_linenumber", "lo_custkey", "lo_partkey", "lo_suppkey", "lo_orderdate",
		"lo_orderpriority", "lo_shippriority", "lo_quantity", "lo_extendedprice", "lo_ordtotalprice", "lo_discount",
		"lo_revenue", "lo_supplycost", "lo_tax", "lo_commitdate", "lo_shipmode"}
	// The lines of the current order, made when its first line is asked for.
	var lines [][]any
	order, next := 0, 0
	return table{name: "lineorder", columns: cols, next: func() []any {
		if next == len(lines) {
			if order == g.sz.orders {
				return nil
			}
			order++
			k := 1 + r.IntN(7)
			cust := 1 + r.IntN(g.sz.customers)
			day := r.IntN(len(g.dates) - 151)
			prio := pick(r, priorities)
			lines = lines[:0]
			total := 0
			for l := 1; l <= k; l++ {
				part := 1 + r.IntN(g.sz.parts)
				supp := 1 + r.IntN(g.sz.suppliers)
				qty := 1 + r.IntN(50)
				disc := r.IntN(11)
				tax := r.IntN(9)
				commit := g.dates[day+30+r.IntN(61)]
				price := retailPrice(part)
				ext := qty * price
				total += ext * (100 - disc) / 100 * (100 + tax) / 100
				lines = append(lines, []any{order, l, cust, part, supp, g.dates[day], prio, "0", qty, ext, 0, disc,
					ext * (100 - disc) / 100, 6 * price / 10, tax, commit, pick(r, shipModes)})
			}
			for _, line := range lines {
				line[10] = total
			}
			next = 0
		}
		next++
		return lines[next-1]
	}}
}

// copySource feeds a table's rows to COPY.
type copySource struct {
	t   table
	row []any
}

func (s *copySource) Next() bool {
	s.row = s.t.next()
	return s.row != nil
}

func (s *copySource) Values() ([]any, error) { return s.row, nil }

func (s *copySource) Err() error { return nil }

// load creates the schema in the database of conn, fills it with COPY and
// analyses it.
func load(ctx context.Context, conn *pgx.Conn, sf float64, progress func(format string, args ...any)) error {
	if _, err := conn.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("creating the SSB schema: %w", err)
	}
	g := newGenerator(sf)
	for _, t := range g.tables() {
		t0 := time.Now()
		n, err := conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, &copySource{t: t})
		if err != nil {
			return fmt.Errorf("COPY %s: %w", t.name, err)
		}
		progress("%-9s %9d rows (%s)", t.name, n, time.Since(t0).Round(time.Millisecond))
	}
	for _, sql := range afterLoadSQL {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		progress("%s (%s)", sql, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}
