package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
	"github.com/pgrollup/pgrollup/rewrite"
)

// TestSessionContext runs statements through the proxy and directly on one
// session's worth of context changes each, and checks that the rollup
// answers exactly when Postgres would read the rollup's table with the
// same rows, and that the answers are equal either way.
func TestSessionContext(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS other CASCADE; DROP ROLE IF EXISTS ctx_reader, ctx_outsider;
		CREATE ROLE ctx_reader LOGIN; CREATE ROLE ctx_outsider LOGIN;
		GRANT SELECT ON orders TO ctx_reader; GRANT ctx_outsider TO ctx_reader;
		CREATE SCHEMA other; GRANT USAGE ON SCHEMA other TO PUBLIC;
		CREATE TABLE other.orders AS SELECT * FROM orders WHERE id < 50;
		GRANT SELECT ON other.orders TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(ctx, `DROP SCHEMA IF EXISTS other CASCADE; ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
			DROP POLICY IF EXISTS p_status ON orders; DROP POLICY IF EXISTS p_setting ON orders; DROP POLICY IF EXISTS p_not_dim ON orders;
			REVOKE ALL ON orders FROM ctx_reader, ctx_outsider; DROP ROLE IF EXISTS ctx_reader, ctx_outsider`)
	})
	const q = "SELECT status, count(*), sum(quantity) FROM orders GROUP BY status"
	hits := func() float64 { return testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)) }
	// Changes made elsewhere must take effect within a second (the poll
	// every ContextPollInterval, under whatever load the machine has).
	waitPoll := func() { time.Sleep(time.Second) }

	tests := []struct {
		name  string
		setup []string // run on both sessions first
		admin []string // then on the warehouse by another session
		hit   bool     // the rollup must answer q
	}{
		{name: "plain", hit: true},
		{name: "search_path", setup: []string{"SET search_path = other, public"}},
		{name: "search_path back", setup: []string{"SET search_path = other, public", "RESET search_path"}, hit: true},
		{name: "set_config search_path", setup: []string{"SELECT set_config('search_path', 'other, public', false)"}},
		{name: "set local search_path", setup: []string{"BEGIN", "SET LOCAL search_path = other, public"}},
		{name: "set local ended", setup: []string{"BEGIN", "SET LOCAL search_path = other, public", "COMMIT"}, hit: true},
		{name: "set rolled back", setup: []string{"BEGIN", "SET search_path = other, public", "ROLLBACK"}, hit: true},
		{name: "missing schema in path", setup: []string{`SET search_path = "nope", "sché""ma", public`}, hit: true},
		{name: "temp table", setup: []string{"CREATE TEMP TABLE orders AS SELECT * FROM public.orders WHERE id < 10"}},
		{name: "temp table dropped", setup: []string{"CREATE TEMP TABLE orders AS SELECT * FROM public.orders WHERE id < 10", "DROP TABLE orders"}, hit: true},
		{name: "temp table rolled back", setup: []string{"BEGIN", "CREATE TEMP TABLE orders AS SELECT * FROM public.orders WHERE id < 10", "ROLLBACK"}, hit: true},
		{name: "set role", setup: []string{"SET ROLE ctx_outsider"}},
		{name: "set_config role", setup: []string{"SELECT set_config('role', 'ctx_outsider', false)"}},
		{name: "set local role", setup: []string{"BEGIN", "SET LOCAL ROLE ctx_outsider"}},
		{name: "set local role ended", setup: []string{"BEGIN", "SET LOCAL ROLE ctx_outsider", "ROLLBACK"}, hit: true},
		{name: "reset role", setup: []string{"SET ROLE ctx_outsider", "RESET ROLE"}, hit: true},
		{name: "discard all", setup: []string{"SET ROLE ctx_outsider", "DISCARD ALL"}, hit: true},
		{name: "set role missing", setup: []string{`SET ROLE "nobody ""here"""`}, hit: true},
		{name: "revoke elsewhere", admin: []string{"REVOKE SELECT ON orders FROM ctx_reader"}},
		{name: "schema usage revoked elsewhere", admin: []string{"REVOKE USAGE ON SCHEMA public FROM PUBLIC"}},
		{name: "membership elsewhere", admin: []string{"REVOKE SELECT ON orders FROM ctx_reader", "GRANT SELECT ON orders TO ctx_outsider"}, hit: true},
		{name: "table in earlier schema elsewhere", setup: []string{"SET search_path = other2, public"},
			admin: []string{"CREATE SCHEMA other2", "GRANT USAGE ON SCHEMA other2 TO PUBLIC", "CREATE TABLE other2.orders (status text, quantity int)", "GRANT SELECT ON other2.orders TO PUBLIC"}},
		{name: "rls status policy", admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_status ON orders FOR SELECT TO ctx_reader USING (status IN ('paid', 'new'))"}, hit: true},
		{name: "rls policy for another role", admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_status ON orders FOR SELECT TO postgres USING (status = 'paid')"}, hit: true},
		{name: "rls setting policy", setup: []string{"SET app.status = 'paid'"}, admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_setting ON orders USING (status = current_setting('app.status'))"}, hit: true},
		{name: "rls setting missing_ok unset", admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_setting ON orders USING (status = current_setting('app.status_x', true) OR status IS NULL)"}, hit: true},
		{name: "rls permissive and restrictive", setup: []string{"SET app.status = 'paid'"}, admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_status ON orders USING (status IN ('paid', 'new'))",
			"CREATE POLICY p_setting ON orders AS RESTRICTIVE USING (status <> current_setting('app.status'))"}, hit: true},
		{name: "rls owner changed elsewhere", admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_status ON orders USING (status = 'paid')", "ALTER TABLE orders OWNER TO ctx_reader"}, hit: true},
		{name: "rls not a dimension", admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_not_dim ON orders USING (id % 2 = 0)"}},
		{name: "rls row_security off", setup: []string{"SET row_security = off"}, admin: []string{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p_status ON orders USING (status = 'paid')"}},
	}
	reset := `ALTER TABLE orders OWNER TO postgres; DROP SCHEMA IF EXISTS other2 CASCADE; GRANT USAGE ON SCHEMA public TO PUBLIC;
		ALTER TABLE orders DISABLE ROW LEVEL SECURITY; DROP POLICY IF EXISTS p_status ON orders;
		DROP POLICY IF EXISTS p_setting ON orders; DROP POLICY IF EXISTS p_not_dim ON orders;
		REVOKE ALL ON orders FROM ctx_outsider; GRANT SELECT ON orders TO ctx_reader`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pool.Exec(ctx, reset); err != nil {
				t.Fatal(err)
			}
			waitPoll()
			proxied := f.connectAs(t, "ctx_reader")
			direct := connectDirect(t, "ctx_reader")
			for _, s := range tt.setup {
				_, perr := proxied.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol)
				_, derr := direct.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol)
				if sqlState(perr) != sqlState(derr) {
					t.Fatalf("%s: through pgrollup %v, directly %v", s, perr, derr)
				}
			}
			for _, s := range tt.admin {
				if _, err := pool.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			if len(tt.admin) > 0 {
				waitPoll()
			}
			before := hits()
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				got, gerr := answer(proxied, mode, q)
				want, werr := answer(direct, mode, q)
				if sqlState(gerr) != sqlState(werr) || got != want {
					t.Fatalf("%v: through pgrollup %q (%v), directly %q (%v)", mode, got, gerr, want, werr)
				}
			}
			if hit := hits() > before; hit != tt.hit {
				t.Fatalf("answered from the rollup: %v, want %v", hit, tt.hit)
			}
		})
	}
	if _, err := pool.Exec(ctx, reset); err != nil {
		t.Fatal(err)
	}
}

// TestContextChangeElsewhereWithinASecond measures how long a REVOKE made on
// another connection takes to reach a session that is being answered from
// the rollup.
func TestContextChangeElsewhereWithinASecond(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	if _, err := pool.Exec(ctx, `DROP ROLE IF EXISTS ctx_timed; CREATE ROLE ctx_timed LOGIN; GRANT SELECT ON orders TO ctx_timed`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(ctx, `REVOKE ALL ON orders FROM ctx_timed; DROP ROLE IF EXISTS ctx_timed`) })
	time.Sleep(2 * ContextPollInterval)
	conn := f.connectAs(t, "ctx_timed")
	const q = "SELECT status, count(*) FROM orders GROUP BY status"
	before := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB))
	if _, err := answer(conn, pgx.QueryExecModeSimpleProtocol, q); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)) == before {
		t.Fatal("not answered from the rollup before the REVOKE")
	}
	if _, err := pool.Exec(ctx, "REVOKE SELECT ON orders FROM ctx_timed"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := answer(conn, pgx.QueryExecModeSimpleProtocol, q)
		if sqlState(err) == sqlstate.InsufficientPrivilege {
			break
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("still answered 5s after the REVOKE: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(revoked)
	t.Logf("the REVOKE took effect after %v", took)
	if took > time.Second {
		t.Fatalf("the REVOKE took effect after %v, more than 1s", took)
	}
}

// TestContextAtStartup: a session's database and its startup options are
// part of its context from its first statement on.
func TestContextAtStartup(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	pool.Exec(ctx, "DROP DATABASE IF EXISTS ctx_shop2")
	if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS other CASCADE; CREATE SCHEMA other;
		CREATE TABLE other.orders AS SELECT * FROM orders WHERE id < 50`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE DATABASE ctx_shop2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(ctx, "DROP SCHEMA IF EXISTS other CASCADE")
		pool.Exec(ctx, "DROP DATABASE IF EXISTS ctx_shop2")
	})
	shop2, err := pgx.Connect(ctx, cluster(t).DSN("ctx_shop2"))
	if err != nil {
		t.Fatal(err)
	}
	// The same table, with other rows and most likely the same OID.
	if _, err := shop2.Exec(ctx, "CREATE TABLE orders AS SELECT i AS id, 'paid' AS status, 1 AS quantity FROM generate_series(1, 7) i"); err != nil {
		t.Fatal(err)
	}
	shop2.Close(ctx)
	time.Sleep(2 * ContextPollInterval)
	const q = "SELECT status, count(*), sum(quantity) FROM orders GROUP BY status"
	for _, tt := range []struct {
		name, database, options string
		hit                     bool
	}{
		{name: "same database", database: "postgres", hit: true},
		{name: "other database", database: "ctx_shop2"},
		{name: "startup search_path", database: "postgres", options: "-c search_path=other,public"},
		{name: "startup role", database: "postgres", options: "-c role=pg_monitor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB))
			got, gerr := answer(f.connectTo(t, "postgres", tt.database, tt.options), pgx.QueryExecModeSimpleProtocol, q)
			cfg, err := pgx.ParseConfig(cluster(t).DSN(tt.database))
			if err != nil {
				t.Fatal(err)
			}
			if tt.options != "" {
				cfg.RuntimeParams["options"] = tt.options
			}
			direct, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close(ctx)
			want, werr := answer(direct, pgx.QueryExecModeSimpleProtocol, q)
			if got != want || sqlState(gerr) != sqlState(werr) {
				t.Fatalf("through pgrollup %q (%v), directly %q (%v)", got, gerr, want, werr)
			}
			if hit := testutil.ToFloat64(f.router.hits.WithLabelValues("by_status", modeDuckDB)) > before; hit != tt.hit {
				t.Fatalf("answered from the rollup: %v, want %v", hit, tt.hit)
			}
		})
	}
}

// newContextFixture is the router fixture with a context watch, and a
// superuser pool on the warehouse for changing grants and policies.
func newContextFixture(t *testing.T) (*fixture, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w := NewContextWatch(pool, time.Minute, nil)
	f := newFixtureWith(t, Options{Context: w})
	// Until its first poll the watch has no Probe, and no session a
	// context: nothing is answered from a rollup yet.
	for deadline := time.Now().Add(10 * time.Second); w.Probe() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the context watch did not poll within 10s")
		}
	}
	return f, pool
}

func connectDirect(t *testing.T, user string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = user, ""
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// answer renders a query's rows, sorted, with its column names.
func answer(conn *pgx.Conn, mode pgx.QueryExecMode, q string) (string, error) {
	rows, err := conn.Query(context.Background(), q, mode)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var head string
	for _, fd := range rows.FieldDescriptions() {
		head += fmt.Sprintf("%s:%d ", fd.Name, fd.DataTypeOID)
	}
	var lines []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	sortStrings(lines)
	out := head
	for _, l := range lines {
		out += "\n" + l
	}
	return out, nil
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`SELECT sum("r"."m0") / 2 FROM read_parquet(['/data/rollups/a/v1/part.parquet', '/data/x.parquet']) AS "r"`,
			`SELECT sum("r"."m0") / 2 FROM read_parquet([<files>]) AS "r"`},
	} {
		if got := redactSQL(tt.in); got != tt.want {
			t.Errorf("redactSQL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{`open /data/rollups/a/part.parquet: no such file`, `open <path>: no such file`},
		{`read "s3://bucket/prefix/a.parquet": 403`, `read "<path>": 403`},
		{`file=/var/lib/x.parquet rows/s 12 a / b`, `file=<path> rows/s 12 a / b`},
		{`broken file items_daily/6fa2/v1/part-all.parquet (checksum): want 12 bytes`, `broken file <path> (checksum): want 12 bytes`},
	} {
		if got := redactPaths(tt.in); got != tt.want {
			t.Errorf("redactPaths(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestNeedToKnow: SHOW ROLLUPS and EXPLAIN (ROLLUP) name only rollups over
// tables the current role may read, and file paths only to superusers.
func TestNeedToKnow(t *testing.T) {
	ctx := context.Background()
	f, pool := newContextFixture(t)
	if _, err := pool.Exec(ctx, `DROP ROLE IF EXISTS ntk_reader, ntk_nobody;
		CREATE ROLE ntk_reader LOGIN; CREATE ROLE ntk_nobody LOGIN; GRANT SELECT ON orders TO ntk_reader`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(ctx, "REVOKE ALL ON orders FROM ntk_reader; DROP ROLE IF EXISTS ntk_reader, ntk_nobody")
	})
	time.Sleep(2 * ContextPollInterval)
	const explain = "EXPLAIN (ROLLUP) SELECT status, count(*) FROM orders GROUP BY status"
	for _, tt := range []struct {
		user       string
		sees       bool
		paths      bool
		afterSetup string
	}{
		{user: "postgres", sees: true, paths: true},
		{user: "ntk_reader", sees: true},
		{user: "ntk_nobody"},
		{user: "postgres", afterSetup: "SET ROLE ntk_nobody"},
		{user: "postgres", sees: true, afterSetup: "SET ROLE ntk_reader"},
	} {
		t.Run(tt.user+" "+tt.afterSetup, func(t *testing.T) {
			conn := f.connectAs(t, tt.user)
			if tt.afterSetup != "" {
				if _, err := conn.Exec(ctx, tt.afterSetup); err != nil {
					t.Fatal(err)
				}
			}
			show, err := answer(conn, pgx.QueryExecModeSimpleProtocol, "SHOW ROLLUPS")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(show, "by_status") != tt.sees {
				t.Fatalf("SHOW ROLLUPS lists by_status: %v, want %v:\n%s", !tt.sees, tt.sees, show)
			}
			ex, err := answer(conn, pgx.QueryExecModeSimpleProtocol, explain)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(ex, "by_status") != tt.sees {
				t.Fatalf("EXPLAIN (ROLLUP) names by_status: %v, want %v:\n%s", !tt.sees, tt.sees, ex)
			}
			if strings.Contains(ex, ".parquet") != tt.paths {
				t.Fatalf("EXPLAIN (ROLLUP) shows file paths: %v, want %v:\n%s", !tt.paths, tt.paths, ex)
			}
		})
	}
}

func TestParseStaleness(t *testing.T) {
	for _, c := range []struct {
		probed string
		want   rewrite.StalenessSetting
	}{
		{"n", rewrite.StalenessSetting{}},
		{"v", rewrite.StalenessSetting{}},
		{"v ", rewrite.StalenessSetting{}},
		{"v0", rewrite.StalenessSetting{Set: true}},
		{"v5min", rewrite.StalenessSetting{Set: true, Max: 5 * time.Minute}},
		{"v30 seconds", rewrite.StalenessSetting{Set: true, Max: 30 * time.Second}},
		{"v1h30m", rewrite.StalenessSetting{Set: true, Max: 90 * time.Minute}},
		{"vsoon", rewrite.StalenessSetting{Invalid: "soon"}},
		{"v-5min", rewrite.StalenessSetting{Invalid: "-5min"}},
		{"v1 month", rewrite.StalenessSetting{Invalid: "1 month"}},
	} {
		if got := parseStaleness(c.probed); got != c.want {
			t.Errorf("parseStaleness(%q) = %+v, want %+v", c.probed, got, c.want)
		}
	}
}
