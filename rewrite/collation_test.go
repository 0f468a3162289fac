package rewrite

import (
	"testing"

	"github.com/pgrollup/pgrollup/config"
)

// Collations as routing.LoadTables reads them from pg_collation.
var (
	testCollC   = &Collation{Name: "C", Bytewise: true}
	testCollEn  = &Collation{Name: "en_US"}
	testCollICU = &Collation{Name: "en-US-x-icu"}
	testCollCI  = &Collation{Name: "ci", Nondeterministic: true}
)

// collated gives columns ("schema.table.column") their own collations, in a
// database whose default collation is bytewise (C) or not.
func collated(defaultBytewise bool, cols map[string]*Collation) func(*Catalog) {
	return func(c *Catalog) {
		c.TextSortsBytewise = defaultBytewise
		for name, coll := range cols {
			i := len(name) - 1
			for name[i] != '.' {
				i--
			}
			col := c.Tables[name[:i]].column(name[i+1:])
			col.Collation = coll
		}
	}
}

// textMinRollup adds a rollup storing min and max of the text column status
// per quantity: at its exact grain each group is one stored row.
func textMinRollup(c *config.Config) {
	c.Rollups = append(c.Rollups, config.Rollup{
		Name: "orders_text_min", Table: "public.orders",
		Dimensions: []string{"quantity"},
		Measures:   []string{"min(status)", "max(status)", "count(*)"},
	})
}

func TestCollation(t *testing.T) {
	const (
		en   = false // database default en_US.UTF-8 or ICU
		cdb  = true  // database default C
		byQ  = "SELECT status, count(*) FROM orders GROUP BY 1"
		join = "SELECT count(*) FROM orders LEFT JOIN customers ON orders.customer_id = customers.id"
	)
	status := func(c *Collation) map[string]*Collation { return map[string]*Collation{"public.orders.status": c} }
	runCases(t, []decideCase{
		// ORDER BY
		{name: "order by default text in C database", sql: byQ + " ORDER BY 1", rollup: "orders_daily", cat: collated(cdb, nil)},
		{name: "order by default text in en_US database", sql: byQ + " ORDER BY 1", reason: ReasonCollation, cat: collated(en, nil)},
		{name: "order by COLLATE C column in en_US database", sql: byQ + " ORDER BY 1 DESC NULLS FIRST", rollup: "orders_daily", cat: collated(en, status(testCollC)), want: []string{"ORDER BY 1 DESC NULLS FIRST"}},
		{name: "order by en_US column in C database", sql: byQ + " ORDER BY 1", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		{name: "order by ICU column in C database", sql: byQ + " ORDER BY status", reason: ReasonCollation, cat: collated(cdb, status(testCollICU))},
		{name: "order by COLLATE C expression", sql: byQ + ` ORDER BY status COLLATE "C"`, rollup: "orders_daily", cat: collated(en, nil)},
		{name: "order by pg_catalog.POSIX expression", sql: byQ + ` ORDER BY status COLLATE pg_catalog."POSIX" DESC`, rollup: "orders_daily", cat: collated(en, status(testCollICU))},
		{name: "order by COLLATE en_US expression", sql: byQ + ` ORDER BY status COLLATE "en_US"`, reason: ReasonCollation, cat: collated(cdb, nil)},
		{name: "select COLLATE C grouped", sql: `SELECT status COLLATE "C" AS s, count(*) FROM orders GROUP BY 1 ORDER BY 1`, rollup: "orders_daily", cat: collated(en, nil)},
		{name: "order by subquery column of C collation", sql: "SELECT * FROM (" + byQ + ") s ORDER BY status", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "order by subquery column of en_US collation", sql: "SELECT * FROM (" + byQ + ") s ORDER BY status", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		{name: "order by case of C column and literal", sql: "SELECT CASE WHEN quantity > 1 THEN status ELSE 'x' END AS s, count(*) FROM orders GROUP BY 1 ORDER BY 1", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "order by case result of default column", sql: "SELECT CASE WHEN orders.status = 'a' THEN country END AS s, count(*) FROM orders LEFT JOIN customers ON orders.customer_id = customers.id GROUP BY 1 ORDER BY 1", reason: ReasonCollation, cat: collated(en, status(testCollC))},
		{name: "order by coalesce of C column", sql: "SELECT COALESCE(status, 'none') AS s, count(*) FROM orders GROUP BY 1 ORDER BY 1", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "order by coalesce of en_US column", sql: "SELECT COALESCE(status, 'none') AS s, count(*) FROM orders GROUP BY 1 ORDER BY 1", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		{name: "order by to_char in C database", sql: "SELECT to_char(date_trunc('year', created_at), 'YYYY') AS y, count(*) FROM orders GROUP BY 1 ORDER BY 1", rollup: "orders_daily", cat: collated(cdb, status(testCollEn))},
		{name: "order by to_char in en_US database", sql: "SELECT to_char(date_trunc('year', created_at), 'YYYY') AS y, count(*) FROM orders GROUP BY 1 ORDER BY 1", reason: ReasonCollation, cat: collated(en, status(testCollC))},
		// ranges and comparisons
		{name: "two explicit collations", sql: `SELECT count(*) FROM orders WHERE status COLLATE "C" > 'm' COLLATE "POSIX"`, reason: ReasonCollation, cat: collated(cdb, nil)},
		{name: "range on C column", sql: "SELECT count(*) FROM orders WHERE status > 'm'", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "range on en_US column in C database", sql: "SELECT count(*) FROM orders WHERE status > 'm'", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		{name: "between on C column", sql: "SELECT count(*) FROM orders WHERE status BETWEEN 'a' AND 'm'", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "between on default column in en_US database", sql: "SELECT count(*) FROM orders WHERE status BETWEEN 'a' AND 'm'", reason: ReasonCollation, cat: collated(en, nil)},
		{name: "range with COLLATE C on the literal", sql: `SELECT count(*) FROM orders WHERE status > 'm' COLLATE "C"`, rollup: "orders_daily", cat: collated(en, nil)},
		{name: "range with COLLATE ICU on a C column", sql: `SELECT count(*) FROM orders WHERE status COLLATE "en-US-x-icu" > 'm'`, reason: ReasonCollation, cat: collated(cdb, status(testCollC))},
		{name: "comparison of two collations", sql: join + " WHERE orders.status > country", reason: ReasonCollation, cat: collated(cdb, map[string]*Collation{"public.orders.status": testCollC, "public.customers.country": testCollEn})},
		{name: "comparison of C column with default column", sql: join + " WHERE orders.status > country", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "equality on en_US column", sql: "SELECT count(*) FROM orders WHERE status = 'paid'", rollup: "orders_daily", cat: collated(cdb, status(testCollEn))},
		{name: "greatest of C column", sql: "SELECT greatest(status, 'm'), count(*) FROM orders GROUP BY 1", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "greatest of en_US column", sql: "SELECT greatest(status, 'm'), count(*) FROM orders GROUP BY 1", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		// min and max
		{name: "min of C column", sql: "SELECT min(status) FROM orders", rollup: "orders_daily", cat: collated(en, status(testCollC))},
		{name: "min of en_US column in C database", sql: "SELECT min(status) FROM orders", reason: ReasonCollation, cat: collated(cdb, status(testCollEn))},
		{name: "stored max of en_US text at its exact grain", sql: "SELECT quantity, max(status) FROM orders GROUP BY 1", rollup: "orders_text_min", cfg: textMinRollup, cat: collated(cdb, status(testCollEn))},
		{name: "stored max of en_US text re-aggregated", sql: "SELECT max(status) FROM orders", reason: ReasonCollation, cfg: textMinRollup, cat: collated(cdb, status(testCollEn))},
		{name: "stored min of C text re-aggregated", sql: "SELECT min(status) FROM orders WHERE quantity > 1", rollup: "orders_daily", cfg: textMinRollup, cat: collated(en, status(testCollC)),
			cands: map[string]ReasonCode{"orders_text_min": ReasonNotChosen}},
		// nondeterministic collations
		{name: "group by nondeterministic column", sql: byQ, reason: ReasonCollation, cat: collated(cdb, status(testCollCI))},
		{name: "equality on nondeterministic column", sql: "SELECT count(*) FROM orders WHERE status = 'paid'", reason: ReasonCollation, cat: collated(cdb, status(testCollCI))},
		{name: "statement not reading the nondeterministic column", sql: "SELECT quantity, count(*) FROM orders GROUP BY 1", rollup: "orders_daily", cat: collated(cdb, status(testCollCI))},
		{name: "stored min of nondeterministic column", sql: "SELECT quantity, min(status) FROM orders GROUP BY 1", reason: ReasonCollation, cfg: textMinRollup, cat: collated(cdb, status(testCollCI))},
	})
}
