package rollup

import "testing"

func TestQualifier(t *testing.T) {
	cases := []struct{ table, in, want string }{
		{"orders", "status", "orders.status"},
		{"public.orders", "status", "public.orders.status"},
		{"public.orders", "customers.country", "customers.country"},
		{"public.orders", "sum(amount * qty) FILTER (WHERE status = 'paid')", "sum(public.orders.amount * public.orders.qty) FILTER (WHERE public.orders.status = 'paid')"},
		{"orders", "count(*)", "count(*)"},
		{`"Sales"."Orders"`, `"Amount"`, `"Sales"."Orders"."Amount"`},
		{"orders", "id IN (SELECT id FROM accounts WHERE status = 'open')", "orders.id IN (SELECT id FROM accounts WHERE status = 'open')"},
		{"orders", "date_trunc('day', created_at AT TIME ZONE 'UTC')", "date_trunc('day', orders.created_at AT TIME ZONE 'UTC')"},
	}
	for _, c := range cases {
		q, err := newQualifier(c.table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.expr(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got != c.want {
			t.Errorf("qualify %q in %s = %q, want %q", c.in, c.table, got, c.want)
		}
	}
}
