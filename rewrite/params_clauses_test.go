package rewrite

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestParamsInHavingAndOn: bound values in HAVING are decided per Bind like
// those in WHERE; a numeric parameter and a condition added to a join's ON
// pass through with a reason that says what to do.
func TestParamsInHavingAndOn(t *testing.T) {
	runCases(t, []decideCase{
		{name: "having count > int8 param", sql: "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > $1", rollup: "orders_daily",
			params: []Param{{Type: pgtype.Int8OID, Value: "5"}}, want: []string{"HAVING", "CAST('5' AS BIGINT)"}},
		{name: "having sum > int8 param", sql: "SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > $1", rollup: "orders_daily",
			params: []Param{{Type: pgtype.Int8OID, Value: "9"}}, want: []string{"CAST('9' AS BIGINT)"}},
		{name: "having sum > untyped param", sql: "SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > $1", rollup: "orders_daily",
			params: []Param{{Value: "9.5"}}, want: []string{"CAST('9.5' AS DECIMAL(38,1))"}},
		{name: "having sum > numeric param", sql: "SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > $1", reason: ReasonParameter,
			params: []Param{{Type: pgtype.NumericOID, Value: "9"}}},
		{name: "having with a NULL param", sql: "SELECT status, count(*) FROM orders GROUP BY status HAVING count(*) > $1", rollup: "orders_daily",
			params: []Param{{Type: pgtype.Int8OID, Null: true}}},
		{name: "join with a bound value in ON", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND c.country = $1 GROUP BY 1", reason: ReasonJoin,
			params: []Param{{Type: pgtype.TextOID, Value: "DE"}}},
		{name: "the same value in WHERE", sql: "SELECT c.country, count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.country = $1 GROUP BY 1", rollup: "orders_daily",
			params: []Param{{Type: pgtype.TextOID, Value: "DE"}}},
	})
	cat := testCatalog(t)
	for sql, want := range map[string]string{
		"SELECT status, sum(amount) FROM orders GROUP BY status HAVING sum(amount) > $1":                                  "parameter $1 has type numeric",
		"SELECT c.country, count(*) FROM orders o JOIN customers c ON o.customer_id = c.id AND c.country = $1 GROUP BY 1": "adds conditions to the declared",
	} {
		ps := []Param{{Type: pgtype.NumericOID, Value: "9"}}
		if strings.Contains(sql, "country") {
			ps = []Param{{Type: pgtype.TextOID, Value: "DE"}}
		}
		d := decide(t, cat, Session{TimeZone: "UTC", Params: ps}, sql)
		if !strings.Contains(d.Reason.Message, want) {
			t.Errorf("%s: reason %v, want it to say %q", sql, d.Reason, want)
		}
	}
}
