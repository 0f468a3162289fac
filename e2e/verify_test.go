package e2e

// Continuous verification (issue 15 item 4): with routing.verify_fraction 1
// every hit is run again on the warehouse in the background. While the
// source table's modification counters stand where the build left them the
// answers match; a change the counters see makes the check `skipped`; a
// change they do not see (the table's counters reset after an UPDATE of an
// old row) makes the rollup's answer disagree with the warehouse, which
// quarantines the version: it stops answering at once, the mismatch is
// logged at ERROR with the first differing row, and the rebuilt version
// answers correctly again.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	verifyTable  = "verify_sales"
	verifyRollup = "verify_by_region"
	// verifySQL is answered from verifyRollup; %d makes each text new, which
	// no result cache holds.
	verifySQL = "SELECT region, sum(amount), count(*) FROM verify_sales WHERE region <> 'r%d' GROUP BY region ORDER BY region"
)

func TestVerification(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	super := superConn(t, ctx, dbMain)
	for _, s := range []string{
		"DROP TABLE IF EXISTS " + verifyTable,
		"CREATE TABLE " + verifyTable + " (id int PRIMARY KEY, region text NOT NULL, amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL)",
		"INSERT INTO " + verifyTable + " SELECT g, (ARRAY['north','south','east'])[1 + g % 3], g * 1.25, timestamptz '2024-03-01 00:00:00+00' + g * interval '5 hours' FROM generate_series(1, 300) g",
		"GRANT SELECT ON " + verifyTable + " TO PUBLIC",
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { _, _ = super.Exec(context.Background(), "DROP TABLE IF EXISTS "+verifyTable) })
	// The build records the counters as they are when it starts: zero.
	waitCounters(t, ctx, super, func(n int64) bool { return n >= 300 })
	resetCounters(t, ctx, super)

	dir := env.tmp + "/verify"
	p, _ := startTestProxy(t, ctx, "verify", dir, env.pg.DSN(dbMain), map[string]any{
		"routing": map[string]any{"verify_fraction": 1, "verify_max_per_minute": 6000},
		"tables":  []any{map[string]any{"name": "public." + verifyTable}},
		"rollups": []any{map[string]any{
			"name": verifyRollup, "table": "public." + verifyTable, "dimensions": []string{"region"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"sum(amount)", "count(*)"}, "refresh": map[string]any{"every": "1h"},
		}},
	}, "debug")
	o := &opsProc{proxyProc: p, dir: dir}
	conn := connect(t, ctx, p.DSN(userScram, dbMain))
	direct := connect(t, ctx, directDSN(userScram, dbMain))
	n := 0
	// ask runs a new statement through the proxy and on Postgres, requires
	// equal rows, and reports whether the rollup answered it.
	ask := func() bool {
		t.Helper()
		n++
		sql := strings.ReplaceAll(verifySQL, "%d", strconv.Itoa(n))
		before := verifyMetric(t, p, "pgrollup_rollup_hits_total", "")
		want := queryText(t, direct, sql, pgx.QueryExecModeSimpleProtocol)
		if got := queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol); got != want {
			t.Errorf("%s: through pgrollup\n%s\nwarehouse\n%s", sql, got, want)
		}
		return verifyMetric(t, p, "pgrollup_rollup_hits_total", "") > before
	}
	// waitServing waits until a version other than not is active and
	// answers, and returns it.
	waitServing := func(not string) string {
		t.Helper()
		for {
			if st := o.status(t, verifyRollup); st.Status == "active" && st.Version != "" && st.Version != not && ask() {
				return st.Version
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no version other than %q answers in time: %+v", not, o.status(t, verifyRollup))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	v1 := waitServing("")
	// waitResult waits until pgrollup_verifications_total{result} reaches want.
	waitResult := func(result string, want float64) {
		t.Helper()
		for verifyMetric(t, p, "pgrollup_verifications_total", result) < want {
			select {
			case <-ctx.Done():
				t.Fatalf("pgrollup_verifications_total{result=%q} below %v in time: %v", result, want, verifyMetric(t, p, "pgrollup_verifications_total", result))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	t.Run("match", func(t *testing.T) {
		for range 2 {
			if !ask() {
				t.Fatal("not answered from the rollup")
			}
		}
		waitResult("match", 3)
		if m := verifyMetric(t, p, "pgrollup_verifications_total", "mismatch"); m != 0 {
			t.Errorf("%v mismatches", m)
		}
	})

	// The rollup's part of a statement the warehouse finishes, and of one
	// split at bucket edges, is checked too.
	t.Run("finished and edges", func(t *testing.T) {
		for _, c := range []struct{ mode, sql string }{
			{"finished_by_warehouse", "SELECT region, sum(amount) AS total, rank() OVER (ORDER BY sum(amount) DESC) AS r FROM verify_sales WHERE region <> 'f%d' GROUP BY region ORDER BY r"},
			{"edges", "SELECT region, sum(amount), count(*) FROM verify_sales WHERE created_at >= '2024-03-05 07:00:00+00' AND created_at < '2024-04-10 13:%02d:00+00' GROUP BY region ORDER BY region"},
		} {
			n++
			sql := fmt.Sprintf(c.sql, n%60)
			hits := func() float64 {
				v, _ := metricSum(scrape(t, p), "pgrollup_rollup_hits_total", map[string]string{"rollup": verifyRollup, "mode": c.mode})
				return v
			}
			before, matches := hits(), verifyMetric(t, p, "pgrollup_verifications_total", "match")
			want := queryText(t, direct, sql, pgx.QueryExecModeSimpleProtocol)
			if got := queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol); got != want {
				t.Errorf("%s: through pgrollup\n%s\nwarehouse\n%s", sql, got, want)
			}
			if hits() <= before {
				t.Fatalf("%s: not a %s hit\n%s", sql, c.mode, tail(p.log.Bytes(), 10))
			}
			waitResult("match", matches+1)
		}
		if m := verifyMetric(t, p, "pgrollup_verifications_total", "mismatch"); m != 0 {
			t.Errorf("%v mismatches", m)
		}
	})

	// An old row changes: the rollup is stale, its answers differ from the
	// warehouse, but the counters say so, and the checks are skipped.
	if _, err := super.Exec(ctx, "UPDATE "+verifyTable+" SET amount = amount + 1000 WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	waitCounters(t, ctx, super, func(n int64) bool { return n >= 1 })
	t.Run("skipped", func(t *testing.T) {
		before := verifyMetric(t, p, "pgrollup_verifications_total", "skipped")
		n++
		sql := strings.ReplaceAll(verifySQL, "%d", strconv.Itoa(n))
		if rows := queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol); rows == "" {
			t.Fatal("no rows")
		}
		waitResult("skipped", before+1)
		if m := verifyMetric(t, p, "pgrollup_verifications_total", "mismatch"); m != 0 {
			t.Errorf("%v mismatches while the counters had moved", m)
		}
		if st := o.status(t, verifyRollup); st.Status != "active" || st.Version != v1 {
			t.Errorf("status %+v after a skipped check, want %s active", st, v1)
		}
	})

	// The counters reset: the change is invisible to them, so the next check
	// runs, disagrees, and quarantines the version.
	resetCounters(t, ctx, super)
	t.Run("mismatch", func(t *testing.T) {
		n++
		sql := strings.ReplaceAll(verifySQL, "%d", strconv.Itoa(n))
		_ = queryText(t, conn, sql, pgx.QueryExecModeSimpleProtocol) // the stale answer that is caught
		waitResult("mismatch", 1)
		var st rollupStatus
		for {
			st = o.status(t, verifyRollup)
			if st.Version != v1 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("version %s still active after the mismatch: %+v", v1, st)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if st.Status == "quarantined" {
			if st.LastError == nil || !strings.Contains(*st.LastError, "quarantined") || !strings.Contains(*st.LastError, "south") {
				t.Errorf("last_error %v, want the quarantine naming the differing row", deref(st.LastError))
			}
			if show := showRollupsStatus(t, ctx, p, verifyRollup); show != "quarantined" && show != "building" && show != "active" {
				t.Errorf("SHOW ROLLUPS: %s", show)
			}
		} else {
			t.Logf("the rebuild had started when the quarantine was first seen: %+v", st)
		}
		code, body, err := p.adminGet("/api/rollups/" + verifyRollup)
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"VerifyMismatch"`) || !strings.Contains(string(body), v1) {
			t.Errorf("GET /api/rollups/%s: %d %v: no VerifyMismatch record of %s\n%s", verifyRollup, code, err, v1, body)
		}
		if log := string(p.log.Bytes()); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "disagrees with the warehouse") {
			t.Errorf("no ERROR log of the mismatch")
		}
		// From now on: correct answers, from the warehouse until the rebuilt
		// version serves, then from it, and its checks match.
		matches := verifyMetric(t, p, "pgrollup_verifications_total", "match")
		waitServing(v1)
		waitResult("match", matches+1)
		if m := verifyMetric(t, p, "pgrollup_verifications_total", "mismatch"); m != 1 {
			t.Errorf("%v mismatches, want 1", m)
		}
	})
}

// verifyMetric sums a counter of the verify rollup at the proxy, of one
// result when result is not "".
func verifyMetric(t *testing.T, p *proxyProc, name, result string) float64 {
	t.Helper()
	match := map[string]string{"rollup": verifyRollup}
	if result != "" {
		match["result"] = result
	}
	v, _ := metricSum(scrape(t, p), name, match)
	return v
}

// waitCounters waits until the verify table's modification counters, as
// the statistics collector publishes them, satisfy ok.
func waitCounters(t *testing.T, ctx context.Context, super *pgx.Conn, ok func(int64) bool) {
	t.Helper()
	for {
		var n int64
		if err := super.QueryRow(ctx, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables WHERE relid = $1::regclass", verifyTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if ok(n) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("counters of %s stuck at %d", verifyTable, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// resetCounters zeroes the verify table's counters and waits until they read 0.
func resetCounters(t *testing.T, ctx context.Context, super *pgx.Conn) {
	t.Helper()
	if _, err := super.Exec(ctx, "SELECT pg_stat_reset_single_table_counters($1::regclass)", verifyTable); err != nil {
		t.Fatal(err)
	}
	waitCounters(t, ctx, super, func(n int64) bool { return n == 0 })
}

// status is the rollup's entry in GET /api/rollups.
func (o *opsProc) status(t *testing.T, name string) rollupStatus {
	t.Helper()
	for _, r := range o.rollups(t) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("GET /api/rollups has no %s", name)
	return rollupStatus{}
}

// showRollupsStatus is the status SHOW ROLLUPS gives the rollup, read as the
// cluster's superuser.
func showRollupsStatus(t *testing.T, ctx context.Context, p *proxyProc, name string) string {
	t.Helper()
	c := connect(t, ctx, dsn(p.host, p.port, env.pg.SuperUser, env.pg.SuperPassword, dbMain, "disable"))
	rows, err := c.Query(ctx, "SHOW ROLLUPS", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("SHOW ROLLUPS: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] == name {
			s, _ := vals[1].(string)
			return s
		}
	}
	return ""
}
