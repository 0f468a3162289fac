package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/rewrite"
)

// missCatalog knows public.orders, as the config's tables would declare it.
var missCatalog = &rewrite.Catalog{Tables: map[string]*rewrite.Table{"public.orders": {Name: "public.orders"}}}

func TestMissesShapes(t *testing.T) {
	cases := []struct {
		name   string
		sql    []string
		shapes int   // distinct shapes recorded
		count  int64 // statements of the most expensive shape
	}{
		{"literals are one shape", []string{
			"SELECT status, count(*) FROM orders WHERE quantity > 3 GROUP BY status",
			"SELECT status, count(*) FROM orders WHERE quantity > 7 GROUP BY status",
			"select status, count(*) from orders where quantity > 9 group by status",
		}, 1, 3},
		{"different columns are different shapes", []string{
			"SELECT status, count(*) FROM orders GROUP BY status",
			"SELECT quantity, count(*) FROM orders GROUP BY quantity",
		}, 2, 1},
		{"schema-qualified", []string{"SELECT count(*) FROM public.orders"}, 1, 1},
		{"another schema's table of the same name", []string{"SELECT count(*) FROM archive.orders"}, 0, 0},
		{"other tables and catalogs are not recorded", []string{
			"SELECT count(*) FROM customers",
			"SELECT typname FROM pg_catalog.pg_type",
			"SET search_path = public",
			"INSERT INTO orders VALUES (1)",
			"SELECT 1; SELECT count(*) FROM orders",
		}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMisses(10)
			for i, sql := range c.sql {
				tree, err := pg_query.Parse(sql)
				if err != nil {
					t.Fatal(err)
				}
				if done := m.relayed(sql, tree, "no_rollup", missCatalog); done != nil {
					done(time.Duration(i+1) * time.Millisecond)
				}
			}
			got := m.List()
			if len(got) != c.shapes {
				t.Fatalf("shapes %+v, want %d", got, c.shapes)
			}
			if c.shapes > 0 && got[0].Count != c.count {
				t.Fatalf("count %d, want %d (%+v)", got[0].Count, c.count, got)
			}
		})
	}
}

func TestMissesNormalizedKeepsOneLiteralText(t *testing.T) {
	m := NewMisses(10)
	for _, sql := range []string{"SELECT count(*) FROM orders WHERE status = 'paid'", "SELECT count(*) FROM orders WHERE status = 'new'"} {
		tree, _ := pg_query.Parse(sql)
		m.relayed(sql, tree, "not_a_dimension", missCatalog)(2 * time.Second)
	}
	got := m.List()
	if len(got) != 1 {
		t.Fatalf("%+v", got)
	}
	s := got[0]
	if s.SQL != "SELECT count(*) FROM orders WHERE status = 'paid'" || s.Normalized != "SELECT count(*) FROM orders WHERE status = $1" ||
		s.WarehouseSeconds != 4 || s.Reason != "not_a_dimension" || fmt.Sprint(s.Tables) != "[orders]" {
		t.Fatalf("%+v", s)
	}
}

// TestMissesNewCatalog: a text ignored because its table was not in the
// catalog is recorded once a catalog that declares the table is installed.
func TestMissesNewCatalog(t *testing.T) {
	m := NewMisses(10)
	const sql = "SELECT count(*) FROM items"
	tree, _ := pg_query.Parse(sql)
	if done := m.relayed(sql, tree, "no_rollup", missCatalog); done != nil {
		t.Fatal("a statement over an unknown table is recorded")
	}
	m.newCatalog()
	items := &rewrite.Catalog{Tables: map[string]*rewrite.Table{"public.items": {Name: "public.items"}}}
	done := m.relayed(sql, tree, "no_rollup", items)
	if done == nil {
		t.Fatal("not recorded after the table was declared")
	}
	done(time.Millisecond)
	if got := m.List(); len(got) != 1 || got[0].SQL != sql {
		t.Fatalf("%+v", got)
	}
}

func TestMissesBounded(t *testing.T) {
	m := NewMisses(3)
	for i := range 10 {
		// Distinct shapes, each more expensive than the last: the cheapest go.
		sql := fmt.Sprintf("SELECT sum(c%d) FROM orders", i)
		tree, _ := pg_query.Parse(sql)
		m.relayed(sql, tree, "no_rollup", missCatalog)(time.Duration(i+1) * time.Second)
	}
	got := m.List()
	if len(got) != 3 {
		t.Fatalf("%d shapes kept, want 3", len(got))
	}
	for i, want := range []float64{10, 9, 8} {
		if got[i].WarehouseSeconds != want {
			t.Fatalf("kept %+v, want the three most expensive", got)
		}
	}
}

// TestMissesThroughProxy: statements the warehouse answers through the
// proxy are recorded with their time, once per execution, by both protocols.
func TestMissesThroughProxy(t *testing.T) {
	misses := NewMisses(0)
	f := newFixtureWith(t, Options{Misses: misses})
	conn := f.connect(t)
	ctx := context.Background()
	const q = "SELECT count(*) FROM orders WHERE quantity = 3"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheStatement} {
		var n int64
		if err := conn.QueryRow(ctx, q, mode).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	// Answered from the rollup, and not a SELECT: neither is a miss.
	if _, err := conn.Exec(ctx, "SELECT status, count(*) FROM orders GROUP BY status", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET application_name = 'orders'"); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	misses.ServeHTTP(rec, httptest.NewRequest("GET", "/api/misses", nil))
	var got []Miss
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err, rec.Body.String())
	}
	if len(got) != 1 || got[0].SQL != q || got[0].Count != 3 || got[0].Reason != string(rewrite.ReasonNotDimension) || got[0].WarehouseSeconds <= 0 {
		t.Fatalf("misses %+v", got)
	}
}

// BenchmarkMissesRelayed is the recorder's cost per passthrough execution of
// a text seen before: a lookup, a closure and the count under a mutex.
func BenchmarkMissesRelayed(b *testing.B) {
	m := NewMisses(0)
	const sql = "SELECT status, count(*) FROM orders WHERE quantity > 3 GROUP BY status"
	tree, err := pg_query.Parse(sql)
	if err != nil {
		b.Fatal(err)
	}
	m.relayed(sql, tree, "no_rollup", missCatalog)(time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.relayed(sql, tree, "no_rollup", missCatalog)(time.Millisecond)
	}
}

// BenchmarkMissesFirstSeen is the cost of a text seen for the first time:
// its tables, fingerprint and normalized form.
func BenchmarkMissesFirstSeen(b *testing.B) {
	const sql = "SELECT status, count(*) FROM orders WHERE quantity > 3 GROUP BY status"
	tree, err := pg_query.Parse(sql)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		shapeOf(sql, tree, missCatalog)
	}
}

// TestMissesBoundValues: a statement whose bound values decide, left to the
// warehouse at Bind, is recorded with its values written in, so that advise
// can replay it.
func TestMissesBoundValues(t *testing.T) {
	misses := NewMisses(0)
	f := newFixtureWith(t, Options{Misses: misses})
	conn := f.connect(t)
	ctx := context.Background()
	for _, q := range []int32{3, 4} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE quantity = $1", pgx.QueryExecModeCacheStatement, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	got := misses.List()
	if len(got) != 1 || got[0].Count != 2 || got[0].Reason != string(rewrite.ReasonNotDimension) || strings.Contains(got[0].SQL, "$1") {
		t.Fatalf("misses %+v", got)
	}
	t.Log(got[0].SQL)
}
