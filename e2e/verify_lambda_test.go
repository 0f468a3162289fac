package e2e

// Continuous verification of lambda hits: the rollup's part of an answer,
// below its version's cutoff, is checked against the warehouse's own
// aggregate of the rows below the cutoff, whatever the modification
// counters say. New rows above the cutoff keep the checks matching; an old
// row changed below the cutoff (its counters hidden, as TestVerification
// does) is a mismatch that quarantines the version, and the answers equal
// Postgres's from then on.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestVerifyLambda(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	super := superConn(t, ctx, dbMain)
	tables := map[string]string{"verify_lam_t": "verify_lam_time", "verify_lam_i": "verify_lam_ids"}
	for table := range tables {
		for _, s := range []string{
			"DROP TABLE IF EXISTS " + table,
			"CREATE TABLE " + table + " (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, region text NOT NULL, amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL)",
			"INSERT INTO " + table + " (region, amount, created_at) SELECT (ARRAY['north','south','east'])[1 + g % 3], g * 1.25, now() - g * interval '10 minutes' FROM generate_series(1, 300) g",
			"GRANT SELECT ON " + table + " TO PUBLIC",
		} {
			if _, err := super.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		t.Cleanup(func() { _, _ = super.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	}
	rollup := func(table string, lambda map[string]any) map[string]any {
		return map[string]any{
			"name": tables[table], "table": "public." + table, "dimensions": []string{"region"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": []string{"sum(amount)", "count(*)"}, "refresh": map[string]any{"every": "1h"},
			"lambda": lambda,
		}
	}
	dir := env.tmp + "/verify_lambda"
	p, _ := startTestProxy(t, ctx, "verify_lambda", dir, env.pg.DSN(dbMain), map[string]any{
		"routing": map[string]any{"verify_fraction": 1, "verify_max_per_minute": 6000},
		"rollups": []any{
			rollup("verify_lam_t", map[string]any{"column": "created_at", "late_window": "1h"}),
			rollup("verify_lam_i", map[string]any{"column": "id", "late_ids": 0}),
		},
	}, "debug")
	o := &opsProc{proxyProc: p, dir: dir}
	conn := connect(t, ctx, p.DSN(userScram, dbMain))
	direct := connect(t, ctx, directDSN(userScram, dbMain))
	metric := func(name string, labels map[string]string) float64 {
		v, _ := metricSum(scrape(t, p), name, labels)
		return v
	}
	// Aligned statements, then ranges that cut through the buckets (exact
	// edges, docs/freshness.md): those hits are checked on their whole
	// buckets below the cutoff, which hold the row changed below.
	for _, edges := range []bool{false, true} {
		for table, name := range tables {
			sub := name
			if edges {
				sub += "/edges"
			}
			t.Run(sub, func(t *testing.T) {
				n := 0
				statement := func() string {
					n++
					// Each text new, which no result cache holds.
					if edges {
						return fmt.Sprintf("SELECT region, sum(amount), count(*) FROM %s WHERE region <> 'r%d' AND created_at > now() - interval '45 hours 17 minutes' GROUP BY region ORDER BY region", table, n)
					}
					return fmt.Sprintf("SELECT region, sum(amount), count(*) FROM %s WHERE region <> 'r%d' GROUP BY region ORDER BY region", table, n)
				}
				// ask runs a new statement both ways, requires equal rows
				// when same, and reports whether the lambda rollup answered.
				ask := func(same bool) bool {
					t.Helper()
					sql := statement()
					before := metric("pgrollup_rollup_hits_total", map[string]string{"rollup": name, "mode": "lambda"})
					want := queryText(t, direct, sql, pgx.QueryExecModeSimpleProtocol)
					if got := queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol); same && got != want {
						t.Errorf("%s: through pgrollup\n%s\nwarehouse\n%s", sql, got, want)
					}
					return metric("pgrollup_rollup_hits_total", map[string]string{"rollup": name, "mode": "lambda"}) > before
				}
				result := func(r string) float64 {
					return metric("pgrollup_verifications_total", map[string]string{"rollup": name, "result": r})
				}
				waitResult := func(r string, want float64) {
					t.Helper()
					for result(r) < want {
						select {
						case <-ctx.Done():
							t.Fatalf("pgrollup_verifications_total{rollup=%q,result=%q} below %v in time: %v", name, r, want, result(r))
						case <-time.After(50 * time.Millisecond):
						}
					}
				}
				waitServing := func(not string) string {
					t.Helper()
					for {
						if st := o.status(t, name); st.Status == "active" && st.Version != "" && st.Version != not && ask(true) {
							return st.Version
						}
						select {
						case <-ctx.Done():
							t.Fatalf("no version other than %q answers in time: %+v", not, o.status(t, name))
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
				mismatches, matches := result("mismatch"), result("match")
				v1 := waitServing("")
				waitResult("match", matches+1)

				// New rows, above the cutoff: the counters move, the checks
				// still run and match.
				if _, err := super.Exec(ctx, "INSERT INTO "+table+" (region, amount, created_at) SELECT 'west', g, now() FROM generate_series(1, 5) g"); err != nil {
					t.Fatal(err)
				}
				matches = result("match")
				if !ask(true) {
					t.Fatal("not answered from the lambda rollup after inserts")
				}
				waitResult("match", matches+1)
				if m := result("mismatch") - mismatches; m != 0 {
					t.Fatalf("%v mismatches before any row below the cutoff changed", m)
				}

				// An old row changes below the cutoff, unseen by the counters.
				if _, err := super.Exec(ctx, "UPDATE "+table+" SET amount = amount + 1000 WHERE id = 250"); err != nil {
					t.Fatal(err)
				}
				if _, err := super.Exec(ctx, "SELECT pg_stat_reset_single_table_counters($1::regclass)", table); err != nil {
					t.Fatal(err)
				}
				_ = ask(false) // the stale answer that is caught
				waitResult("mismatch", mismatches+1)
				for o.status(t, name).Version == v1 {
					select {
					case <-ctx.Done():
						t.Fatalf("version %s still active after the mismatch", v1)
					case <-time.After(20 * time.Millisecond):
					}
				}
				code, body, err := p.adminGet("/api/rollups/" + name)
				if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"VerifyMismatch"`) || !strings.Contains(string(body), "below the cutoff") {
					t.Errorf("GET /api/rollups/%s: %d %v: no VerifyMismatch record below the cutoff\n%s", name, code, err, body)
				}
				// From now on: correct answers, through the warehouse until the
				// rebuilt version serves, then from it, and its checks match.
				for range 3 {
					_ = ask(true)
				}
				matches = result("match")
				waitServing(v1)
				waitResult("match", matches+1)
				if m := result("mismatch") - mismatches; m != 1 {
					t.Errorf("%v mismatches, want 1", m)
				}
			})
		}
	}
}
