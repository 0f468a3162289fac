package e2e

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// explainAgreeDB is the database of TestExplainAgrees: its default collation
// is en_US.UTF-8, so that ordering text needs the warehouse.
const explainAgreeDB = "e2e_explain_agree"

const explainAgreeFixtureSQL = `
CREATE TABLE sales (id int PRIMARY KEY, g text NOT NULL, amount numeric(12,2), qty int, ts timestamp, tstz timestamptz);
INSERT INTO sales
SELECT x, (ARRAY['apple', 'Banana', 'cherry', 'Éclair'])[1 + x % 4], (x % 100) * 1.25, x % 7,
	timestamp '2024-01-01' + x * interval '7 hours', timestamptz '2024-01-01 00:00:00+00' + x * interval '7 hours'
FROM generate_series(1, 500) x;
`

// explainAgreeStatements are statements whose decisions depend on column
// types or collations, which the config alone does not give.
var explainAgreeStatements = []string{
	"SELECT g, sum(amount) / count(*) FROM sales GROUP BY g",
	"SELECT count(*) FROM sales WHERE ts >= '2024-01-01' AND ts < '2024-02-01'",
	"SELECT count(*) FROM sales WHERE tstz >= '2024-01-01' AND tstz < '2024-02-01'",
	"SELECT date_trunc('month', ts), count(*) FROM sales GROUP BY 1",
	"SELECT g, count(*) FROM sales GROUP BY g ORDER BY g",
	`SELECT g, count(*) FROM sales GROUP BY g ORDER BY g COLLATE "C"`,
	"SELECT count(*) FROM sales WHERE g > 'm'",
	"SELECT min(g) FROM sales",
	"SELECT avg(qty) FROM sales",
	"SELECT g, avg(qty) FROM sales GROUP BY g ORDER BY 2",
	"SELECT sum(qty) FROM sales",
}

// explainJSONOut is what TestExplainAgrees reads of explain --json.
type explainJSONOut struct {
	Route        string  `json:"route"`
	Rollup       *string `json:"rollup"`
	Reason       string  `json:"reason"`
	Catalog      string  `json:"catalog"`
	CatalogError string  `json:"catalog_error"`
	Candidates   []struct {
		Rollup, Decision, Reason string
	} `json:"candidates"`
}

// decisions renders explain --json's decision as "rollup decision" lines,
// sorted.
func (e explainJSONOut) decisions() string {
	var out []string
	for _, c := range e.Candidates {
		out = append(out, candidateDecision(c.Rollup, c.Decision, c.Reason))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// candidateDecision is one candidate's decision: "answers" when the rollup
// can answer (chosen or not: among several, the smallest built one is
// chosen, and explain does not know the built sizes), else the reason code.
func candidateDecision(rollup, decision, reason string) string {
	code := reasonCode(reason)
	if decision == "chosen" || decision == "match" || code == "larger_than_chosen" {
		return rollup + " answers"
	}
	return rollup + " " + code
}

func reasonCode(r string) string {
	code, _, _ := strings.Cut(r, ":")
	return code
}

// TestExplainAgrees runs statements whose decisions depend on the
// warehouse's column types and collations through `pgrollup explain
// --warehouse` and through the running proxy's EXPLAIN (ROLLUP): every
// candidate's decision and reason code must agree. Without the warehouse
// explain says it decided offline.
func TestExplainAgrees(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	if _, err := env.pg.NewLocaleDatabase(ctx, explainAgreeDB, pgcluster.Locale{LibC: "en_US.UTF-8"}, explainAgreeFixtureSQL, "GRANT SELECT ON sales TO "+userScram); err != nil {
		t.Fatal(err)
	}
	dsn := env.pg.DSN(explainAgreeDB)
	p, cfgFile := startTestProxy(t, ctx, "explain-agree", filepath.Join(env.tmp, "proxy-explain-agree"), dsn, map[string]any{
		"rollups": []map[string]any{
			{"name": "sales_ts", "table": "public.sales", "dimensions": []string{"g"}, "time_dimension": "ts", "granularity": "day",
				"measures": []string{"sum(amount)", "count(*)", "sum(qty)", "count(qty)"}},
			{"name": "sales_tstz", "table": "public.sales", "dimensions": []string{"g"}, "time_dimension": "tstz", "granularity": "day",
				"measures": []string{"count(*)", "sum(amount)"}},
		},
	}, "info")
	if _, err := waitRollupsActive(ctx, p, 2); err != nil {
		t.Fatal(err)
	}
	via := connect(t, ctx, target{name: "proxy", host: p.host, port: p.port}.DSN(userScram, explainAgreeDB)).PgConn()
	res, err := via.Exec(ctx, "SHOW TimeZone").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("SHOW TimeZone: %v %v", err, res)
	}
	zone := string(res[0].Rows[0][0])

	explain := func(t *testing.T, args ...string) explainJSONOut {
		t.Helper()
		out, errOut, code := runPgrollup(t, append([]string{"explain", "--config", cfgFile, "--timezone", zone, "--json"}, args...)...)
		var e explainJSONOut
		if err := json.Unmarshal([]byte(out), &e); code != 0 || err != nil {
			t.Fatalf("explain: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		return e
	}
	disagreeOffline := 0
	for _, sql := range explainAgreeStatements {
		t.Run(sql, func(t *testing.T) {
			var live []string
			finished := false
			for _, r := range measuresExplain(t, ctx, via, sql) {
				d := r[1]
				if d == "finished_by_warehouse" {
					// The split's own row; the candidates that follow
					// are the core's.
					finished = true
					continue
				}
				if d == "passthrough" {
					continue
				}
				live = append(live, candidateDecision(r[0], d, r[2]))
			}
			sort.Strings(live)
			wh := explain(t, "--warehouse", dsn, sql)
			if wh.Catalog != "warehouse" || wh.CatalogError != "" {
				t.Fatalf("explain --warehouse did not read the warehouse: %+v", wh)
			}
			if (wh.Route == "finished_by_warehouse") != finished {
				t.Errorf("explain --warehouse says route %s; EXPLAIN (ROLLUP) finished by the warehouse: %v", wh.Route, finished)
			}
			if got, want := wh.decisions(), strings.Join(live, "\n"); got != want {
				t.Errorf("explain --warehouse disagrees with EXPLAIN (ROLLUP):\n--- explain\n%s\n--- EXPLAIN (ROLLUP)\n%s", got, want)
			}
			off := explain(t, "--offline", sql)
			if off.Catalog != "offline" {
				t.Errorf("explain --offline: catalog %q, want offline", off.Catalog)
			}
			if off.decisions() != wh.decisions() {
				disagreeOffline++
			}
		})
	}
	t.Logf("offline (config alone) disagrees with the warehouse's decision on %d of %d statements", disagreeOffline, len(explainAgreeStatements))

	// The config's warehouse.dsn is the default.
	if e := explain(t, explainAgreeStatements[4]); e.Catalog != "warehouse" || e.decisions() != explain(t, "--warehouse", dsn, explainAgreeStatements[4]).decisions() {
		t.Errorf("explain with the config's DSN: %+v", e)
	}
	// A warehouse that cannot be reached: decided offline, and said so.
	e := explain(t, "--warehouse", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", explainAgreeStatements[0])
	if e.Catalog != "offline" || !strings.Contains(e.CatalogError, "cannot connect") {
		t.Errorf("explain with an unreachable warehouse: %+v", e)
	}
	out, errOut, code := runPgrollup(t, "explain", "--config", cfgFile, "--warehouse", "postgres://nobody@127.0.0.1:1/none", explainAgreeStatements[0])
	if code != 0 || !strings.Contains(out, "catalog: offline") {
		t.Errorf("explain text with an unreachable warehouse: exit %d\n%s%s", code, out, errOut)
	}
}
