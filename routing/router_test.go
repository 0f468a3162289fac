package routing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// testPG is the warehouse of the tests that need one, started by the first of them.
var testPG = pgcluster.Shared{Options: pgcluster.Options{HBA: []string{"host all all 127.0.0.1/32 trust"}}}

// cluster returns the warehouse, starting it on first use; without one the test
// is skipped, or failed under make test and CI.
func cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return testPG.Get(t)
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testPG.Exit))
}

// fixture is a warehouse table, a rollup of it built into Parquet by DuckDB
// from the same rows, and a proxy routing through a Router over it.
type fixture struct {
	router *Router
	reg    *prometheus.Registry
	addr   string
}

func newFixture(t *testing.T, rollupOnly bool) *fixture {
	return newFixtureWith(t, Options{RollupOnly: rollupOnly})
}

func newFixtureWith(t *testing.T, opts Options) *fixture {
	t.Helper()
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if _, err := pg.Exec(ctx, `DROP TABLE IF EXISTS orders;
		CREATE TABLE orders AS SELECT i AS id, (ARRAY['paid','new','cancelled'])[i % 3 + 1] || CASE WHEN i % 7 = 0 THEN '' ELSE '' END AS status,
			i % 11 AS quantity FROM generate_series(1, 500) i;
		UPDATE orders SET status = NULL WHERE id % 13 = 0`); err != nil {
		t.Fatal(err)
	}
	var tableOID uint32
	if err := pg.QueryRow(ctx, "SELECT 'public.orders'::regclass::oid").Scan(&tableOID); err != nil {
		t.Fatal(err)
	}
	// The same rows into DuckDB, then the rollup as the builder lays it out.
	rows, err := pg.Query(ctx, "SELECT id, status, quantity FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for rows.Next() {
		var id, qty int32
		var status *string
		if err := rows.Scan(&id, &status, &qty); err != nil {
			t.Fatal(err)
		}
		st := "NULL"
		if status != nil {
			st = "'" + *status + "'"
		}
		values = append(values, fmt.Sprintf("(%d, %s, %d)", id, st, qty))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	file := filepath.Join(t.TempDir(), "by_status.parquet")
	duckExec(t,
		"CREATE TABLE orders (id INTEGER, status VARCHAR, quantity INTEGER)",
		"INSERT INTO orders VALUES "+strings.Join(values, ","),
		"COPY (SELECT status AS d0, count(*) AS m0_count, sum(quantity) AS m1_sum FROM orders GROUP BY ALL) TO '"+file+"' (FORMAT parquet)")
	cat := &rewrite.Catalog{
		BuildTimezone:     "UTC",
		TextSortsBytewise: true,
		Tables: map[string]*rewrite.Table{"public.orders": {
			Name: "public.orders", OID: tableOID,
			Columns: []rewrite.Column{
				{Name: "id", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 1},
				{Name: "status", Type: rewrite.Type{OID: pgtype.TextOID, Typmod: -1}, AttNum: 2},
				{Name: "quantity", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 3},
			},
		}},
		Rollups: []*rewrite.RollupState{{
			Def:        config.Rollup{Name: "by_status", Table: "public.orders", Dimensions: []string{"status"}, Measures: []string{"count(*)", "sum(quantity)"}},
			Status:     rewrite.StatusActive,
			Version:    "v1",
			Partitions: []rewrite.Partition{{Files: []string{file}, Rows: 4}},
			AllTime:    true,
			Rows:       4,
			BuiltAt:    time.Now(),
		}},
	}
	exec, err := duck.Open(256<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Close() })
	reg := prometheus.NewRegistry()
	opts.Executor, opts.Registerer = exec, reg
	router := NewRouter(cat, opts)
	if opts.Context != nil {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go opts.Context.Run(ctx)
	}
	srv, err := proxy.NewServer(proxy.Options{WarehouseDSN: cluster(t).DSN("postgres"), Router: router, Prober: router, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &fixture{router: router, reg: reg, addr: l.Addr().String()}
}

// duckExec runs statements in a scratch DuckDB database: rollup files
// written as the builder lays them out.
func duckExec(t *testing.T, stmts ...string) {
	t.Helper()
	scratch, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	for _, q := range stmts {
		if _, err := scratch.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (f *fixture) connect(t *testing.T) *pgx.Conn {
	return f.connectAs(t, "postgres")
}

func (f *fixture) connectAs(t *testing.T, user string) *pgx.Conn {
	t.Helper()
	return f.connectTo(t, user, "postgres", "")
}

// connectTo connects through the proxy to database as user, with options
// (the startup parameter) when not empty.
func (f *fixture) connectTo(t *testing.T, user, database, options string) *pgx.Conn {
	t.Helper()
	q := url.Values{"sslmode": {"disable"}}
	if options != "" {
		q.Set("options", options)
	}
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: f.addr, Path: "/" + database, RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20")}
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// result renders a query's field descriptions and rows, sorted unless the
// query orders them, for comparing the proxy with the warehouse.
func result(t *testing.T, conn *pgx.Conn, mode pgx.QueryExecMode, q string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, mode)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var head []string
	for _, f := range rows.FieldDescriptions() {
		head = append(head, fmt.Sprintf("%s:%d:%d:%d:%d", f.Name, f.DataTypeOID, f.TypeModifier, f.TableOID, f.TableAttributeNumber))
	}
	var lines []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !strings.Contains(strings.ToLower(q), "order by") {
		sortStrings(lines)
	}
	return strings.Join(head, " ") + "\n" + strings.Join(lines, "\n") + "\n" + rows.CommandTag().String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestRollupHitsEqualWarehouse(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	direct, err := pgx.Connect(context.Background(), cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.Background())
	queries := []string{
		"SELECT status, count(*) FROM orders GROUP BY status",
		"SELECT status, count(*) AS n, sum(quantity) FROM public.orders GROUP BY 1 ORDER BY 2 DESC, 1 NULLS FIRST",
		"SELECT count(*) FROM orders WHERE status = 'paid'",
		"SELECT count(*) FROM orders WHERE status = 'none'",
		`SELECT "source"."status" AS "status", "source"."count" AS "count" FROM (SELECT "public"."orders"."status" AS "status", COUNT(*) AS "count" FROM "public"."orders" GROUP BY "public"."orders"."status") AS "source" ORDER BY "source"."count" DESC, "source"."status" ASC LIMIT 1048575`,
		"SELECT DISTINCT status FROM orders",
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec}
	hits := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB))
	for _, q := range queries {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%s/%v", q, mode), func(t *testing.T) {
				want := result(t, direct, mode, q)
				got := result(t, proxied, mode, q)
				if got != want {
					t.Fatalf("through pgrollup:\n%s\nwarehouse:\n%s", got, want)
				}
				now := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB))
				if now != hits+1 {
					t.Fatalf("not answered from the rollup (hits %v -> %v)", hits, now)
				}
				hits = now
			})
		}
	}
}

func TestMissesPassThrough(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	var n int64
	if err := proxied.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE quantity = 3").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no rows counted")
	}
	if got := testutil.ToFloat64(f.router.misses.WithLabelValues(string(rewrite.ReasonNotDimension))); got != 1 {
		t.Fatalf("misses{not_a_dimension} = %v, want 1", got)
	}
}

func TestRollupOnlyRefuses(t *testing.T) {
	f := newFixture(t, true)
	proxied := f.connect(t)
	_, err := proxied.Exec(context.Background(), "SELECT count(*) FROM orders WHERE quantity = 3")
	if err == nil || !strings.Contains(err.Error(), "rollup-only") || !strings.Contains(err.Error(), "quantity") {
		t.Fatalf("err = %v, want a rollup-only refusal naming the column", err)
	}
	var n int64
	if err := proxied.QueryRow(context.Background(), "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 500 {
		t.Fatalf("a hit in rollup-only mode: %d, %v", n, err)
	}
	if err := proxied.QueryRow(context.Background(), "SELECT 1::int8").Scan(&n); err != nil || n != 1 {
		t.Fatalf("a statement without rollups in rollup-only mode: %d, %v", n, err)
	}
}

func TestExplainRollup(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	rows, err := proxied.Query(context.Background(), "EXPLAIN (ROLLUP) SELECT status, count(*) FROM orders GROUP BY 1", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]any
	for rows.Next() {
		v, _ := rows.Values()
		got = append(got, v)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(got) != 1 || got[0][0] != "by_status" || got[0][1] != "chosen" || !strings.Contains(fmt.Sprint(got[0][3]), "read_parquet") {
		t.Fatalf("EXPLAIN (ROLLUP) = %v", got)
	}
	var decision, reason string
	err = proxied.QueryRow(context.Background(), "EXPLAIN (ROLLUP) SELECT quantity, count(*) FROM orders GROUP BY 1").Scan(new(any), &decision, &reason, new(any))
	if err != nil || decision != "reject" || !strings.Contains(reason, "quantity") {
		t.Fatalf("EXPLAIN (ROLLUP) of a miss: %q %q %v", decision, reason, err)
	}
}

// A prepared EXPLAIN (ROLLUP) decides at every execution: executed again
// after the catalog changed, it tells what would happen now.
func TestExplainRollupPreparedSeesNewCatalog(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	const explain = "EXPLAIN (ROLLUP) SELECT status, count(*) FROM orders GROUP BY 1"
	decision := func() string {
		var d string
		// pgx prepares the statement once and executes it again.
		if err := proxied.QueryRow(context.Background(), explain, pgx.QueryExecModeCacheStatement).Scan(new(any), &d, new(any), new(any)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if got := decision(); got != "chosen" {
		t.Fatalf("EXPLAIN (ROLLUP) = %q, want chosen", got)
	}
	old := f.router.catalog.Load().cat
	f.router.SetCatalog(&rewrite.Catalog{BuildTimezone: old.BuildTimezone, TextSortsBytewise: old.TextSortsBytewise, Tables: old.Tables})
	if got := decision(); got != "passthrough" {
		t.Fatalf("EXPLAIN (ROLLUP) executed again without the rollup = %q, want passthrough", got)
	}
}

// SetRollupOnly applies to the statements decided after it.
func TestSetRollupOnly(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	const miss = "SELECT quantity, count(*) FROM orders GROUP BY 1"
	if _, err := proxied.Exec(context.Background(), miss, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("a miss without rollup-only mode: %v", err)
	}
	f.router.SetRollupOnly(true)
	if _, err := proxied.Exec(context.Background(), miss, pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("a miss in rollup-only mode was answered")
	}
	f.router.SetRollupOnly(false)
	if _, err := proxied.Exec(context.Background(), miss, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("a miss after rollup-only mode was switched off: %v", err)
	}
}

func TestPrivileges(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	if _, err := pool.Exec(ctx, `DROP ROLE IF EXISTS reader, outsider;
		CREATE ROLE reader LOGIN; CREATE ROLE outsider LOGIN;
		GRANT SELECT ON orders TO reader`); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT status, count(*) FROM orders GROUP BY status"
	hits := func() float64 { return testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)) }

	before := hits()
	if _, err := f.connectAs(t, "reader").Exec(ctx, q); err != nil {
		t.Fatalf("reader: %v", err)
	}
	if hits() != before+1 {
		t.Fatal("a user with SELECT was not served from the rollup")
	}

	before = hits()
	_, err := f.connectAs(t, "outsider").Exec(ctx, q)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.InsufficientPrivilege {
		t.Fatalf("outsider: err = %v, want the warehouse's permission error 42501", err)
	}
	if hits() != before {
		t.Fatal("a user without SELECT was served from the rollup")
	}

	// Row-level security with no policy lets no row through; the rollup
	// answers with the same nothing.
	if _, err := pool.Exec(ctx, "ALTER TABLE orders ENABLE ROW LEVEL SECURITY"); err != nil {
		t.Fatal(err)
	}
	f2 := newFixtureWith(t, Options{Context: NewContextWatch(pool, time.Minute, nil)})
	if _, err := pool.Exec(ctx, "ALTER TABLE orders ENABLE ROW LEVEL SECURITY; GRANT SELECT ON orders TO reader"); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := f2.connectAs(t, "reader").QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("reader saw %d rows through row-level security without a policy", n)
	}
}

// A prepared statement is decided again at every execution: when its rollup
// stops being usable after Parse, the warehouse answers.
func TestPreparedStatementIsDecidedAgain(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	ctx := context.Background()
	const q = "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status NULLS FIRST"
	before := result(t, proxied, pgx.QueryExecModeCacheStatement, q)
	hits := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB))
	if hits == 0 {
		t.Fatal("the prepared statement was not answered from the rollup to begin with")
	}

	cat := f.router.catalog.Load().cat
	pending := *cat.Rollups[0]
	pending.Status, pending.Version, pending.Partitions = rewrite.StatusPending, "", nil
	f.router.SetCatalog(&rewrite.Catalog{BuildTimezone: cat.BuildTimezone, TextSortsBytewise: true, Tables: cat.Tables, Rollups: []*rewrite.RollupState{&pending}})

	after := result(t, proxied, pgx.QueryExecModeCacheStatement, q)
	if after != before {
		t.Fatalf("after the rollup went away:\n%s\nbefore:\n%s", after, before)
	}
	if got := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)); got != hits {
		t.Fatalf("served from a rollup that is no longer active (hits %v -> %v)", hits, got)
	}
	var n int64
	if err := proxied.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 500 {
		t.Fatalf("session after fallback: %d %v", n, err)
	}
}

// Statements with parameters are decided at Bind, with the values.
func TestBoundParameters(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	direct, err := pgx.Connect(context.Background(), cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.Background())
	const q = "SELECT status, count(*), sum(quantity) FROM orders WHERE status = $1 OR status = $2 GROUP BY status ORDER BY status"
	hits := func() float64 { return testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)) }
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		for _, args := range [][]any{{"paid", "new"}, {"cancelled", nil}} {
			t.Run(fmt.Sprintf("%v/%v", mode, args), func(t *testing.T) {
				render := func(conn *pgx.Conn) string { return renderValues(t, conn, mode, q, args) }
				before := hits()
				got, want := render(proxied), render(direct)
				if got != want {
					t.Fatalf("through pgrollup %s\nwarehouse %s", got, want)
				}
				if hits() != before+1 {
					t.Fatal("not answered from the rollup")
				}
			})
		}
	}
}

// TestBeyondParseLimitsPassesThrough sends a statement over a table with
// rollups too deep to parse: it passes through unparsed, the warehouse
// answers as Postgres does, the miss is counted, and rollups still answer.
func TestBeyondParseLimitsPassesThrough(t *testing.T) {
	f := newFixture(t, false)
	proxied := f.connect(t)
	ctx := context.Background()
	chain := "SELECT count(*) FROM orders WHERE status = 'paid' AND 1" + strings.Repeat("+1", 30000) + " > 0"
	var pe *pgconn.PgError
	if _, err := proxied.Exec(ctx, chain); !errors.As(err, &pe) || pe.Code != sqlstate.StatementTooComplex {
		t.Fatalf("30,000 chained terms: %v, want Postgres's 54001", err)
	}
	if got := testutil.ToFloat64(f.router.misses.WithLabelValues(reasonParseLimit)); got != 1 {
		t.Fatalf("misses{parse_limit} = %v, want 1", got)
	}
	var n int64
	if err := proxied.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 500 {
		t.Fatalf("a hit afterwards: %d, %v", n, err)
	}
	if got := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)); got != 1 {
		t.Fatalf("hits{by_status} = %v, want 1", got)
	}
}
