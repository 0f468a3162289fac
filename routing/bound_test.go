package routing

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

// addPaidRollup adds to the fixture's catalog a rollup of paid orders by
// quantity, built from the warehouse's rows.
func addPaidRollup(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	rows, err := warehouseConn(t).Query(ctx, "SELECT quantity, count(*), sum(quantity) FROM orders WHERE status = 'paid' GROUP BY quantity")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for rows.Next() {
		var q int32
		var n, s int64
		if err := rows.Scan(&q, &n, &s); err != nil {
			t.Fatal(err)
		}
		values = append(values, fmt.Sprintf("(%d, %d, %d)", q, n, s))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	file := filepath.Join(t.TempDir(), "paid_by_qty.parquet")
	duckExec(t, "COPY (SELECT d0::INTEGER AS d0, m0_count::BIGINT AS m0_count, m1_sum::HUGEINT AS m1_sum FROM (VALUES "+strings.Join(values, ",")+") v(d0, m0_count, m1_sum)) TO '"+file+"' (FORMAT parquet)")
	cat := f.router.catalog.Load().cat
	paid := *cat.Rollups[0]
	paid.Def = config.Rollup{Name: "paid_by_qty", Table: "public.orders", Dimensions: []string{"quantity"}, Measures: []string{"count(*)", "sum(quantity)"}, Filters: []string{"status = 'paid'"}}
	paid.Partitions = []rewrite.Partition{{Files: []string{file}, Rows: int64(len(values))}}
	paid.Rows = int64(len(values))
	f.router.SetCatalog(&rewrite.Catalog{BuildTimezone: cat.BuildTimezone, TextSortsBytewise: true, Tables: cat.Tables, Rollups: []*rewrite.RollupState{cat.Rollups[0], &paid}})
}

// paidFixture is the fixture with the paid rollup, a connection through it
// and one to the warehouse.
func paidFixture(t *testing.T) (f *fixture, proxied, direct *pgx.Conn) {
	f = newFixture(t, false)
	addPaidRollup(t, f)
	return f, f.connect(t), warehouseConn(t)
}

// warehouseConn connects to the warehouse directly, until the test ends.
func warehouseConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// renderValues runs a statement in a pgx mode and renders its rows and
// field descriptions.
func renderValues(t *testing.T, conn *pgx.Conn, mode pgx.QueryExecMode, sql string, args []any) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, append([]any{mode}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(vals, rows.FieldDescriptions())
}

// Bound filter values through pgx in every mode: the value the rollup is
// filtered to is answered from it, and equals the warehouse's answer;
// others pass through. Integers go in binary, typed by the warehouse's
// description of the statement in the modes that prepare it.
func TestBoundFilterValuesThroughPgx(t *testing.T) {
	f, proxied, direct := paidFixture(t)
	hits := func() float64 { return testutil.ToFloat64(f.router.hits.WithLabelValues("paid_by_qty", modeDuckDB)) }
	tests := []struct {
		sql    string
		args   []any
		served bool
	}{
		{"SELECT quantity, count(*), sum(quantity) FROM orders WHERE status = $1 GROUP BY quantity ORDER BY quantity", []any{"paid"}, true},
		{"SELECT quantity, count(*) FROM orders WHERE status = $1 AND quantity >= $2 GROUP BY quantity ORDER BY quantity", []any{"paid", 4}, true},
		{"SELECT count(*) FROM orders WHERE quantity = $2 AND status IN ($1)", []any{"paid", int32(7)}, true},
		{"SELECT quantity, count(*) FROM orders WHERE status = $1 GROUP BY quantity ORDER BY quantity", []any{"new"}, false},
		{"SELECT quantity, count(*) FROM orders WHERE status = $1 GROUP BY quantity ORDER BY quantity", []any{nil}, false},
		{"SELECT count(*) FROM orders WHERE status IN ($1, $2)", []any{"paid", "cancelled"}, false},
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%s/%v", mode, tt.sql, tt.args), func(t *testing.T) {
				render := func(conn *pgx.Conn) string { return renderValues(t, conn, mode, tt.sql, tt.args) }
				// Twice: cached modes take another path the second time.
				for range 2 {
					before := hits()
					got, want := render(proxied), render(direct)
					if got != want {
						t.Fatalf("through pgrollup %s\nwarehouse %s", got, want)
					}
					if served := hits() == before+1; served != tt.served {
						t.Fatalf("answered from the rollup: %v, want %v", served, tt.served)
					}
				}
			})
		}
	}
}

// A value of a type Postgres does not compare the column with fails as it
// does on Postgres, in every mode, and the session goes on.
func TestBoundFilterValueOfWrongType(t *testing.T) {
	_, proxied, direct := paidFixture(t)
	tests := []struct {
		sql  string
		args []any
	}{
		{"SELECT quantity, count(*) FROM orders WHERE status = $1::int GROUP BY quantity", []any{5}},
		{"SELECT quantity, count(*) FROM orders WHERE status = $1 AND quantity = $2 GROUP BY quantity", []any{"paid", "x"}},
		{"SELECT quantity, count(*) FROM orders WHERE status = $1 AND quantity = $2 GROUP BY quantity", []any{"paid", "99999999999"}},
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		for _, tt := range tests {
			run := func(conn *pgx.Conn) string {
				rows, err := conn.Query(context.Background(), tt.sql, append([]any{mode}, tt.args...)...)
				if err == nil {
					_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
				}
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) {
					return pgErr.Code + " " + pgErr.Message
				}
				return fmt.Sprint(err)
			}
			if got, want := run(proxied), run(direct); got != want {
				t.Errorf("%v %s %v: through pgrollup %q, warehouse %q", mode, tt.sql, tt.args, got, want)
			}
			var n int
			if err := proxied.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE status = $1", "paid").Scan(&n); err != nil {
				t.Fatalf("after %v %s: %v", mode, tt.sql, err)
			}
		}
	}
}
