package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// psycopg2InTransaction runs a statement as Superset does: psycopg2 with
// autocommit off, so the driver opens a transaction block before it, then a
// write in the same block, the statement again, and a rollback.
const psycopg2InTransaction = `
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
for sql in (sys.argv[2], "CREATE TEMP TABLE scratch (a int)", sys.argv[2]):
    cur.execute(sql)
    print(sql.split()[0], conn.get_transaction_status(), [d[0] for d in cur.description or []], cur.fetchall() if cur.description else None)
conn.rollback()
print("done")
`

// TestOpsPsycopg2Transaction: in the transaction block psycopg2 opens, a
// read is answered from the rollup; after a statement that may write, the
// same read goes to the warehouse until the block ends. Both give
// Postgres's answer.
func TestOpsPsycopg2Transaction(t *testing.T) {
	requireTool(t, debianPython)
	o := startOpsProxy(t, "psycopg2-tx")
	ctx := testCtx(t, time.Minute)
	run := func(dsn string) string {
		cmd := exec.CommandContext(ctx, debianPython, "-c", psycopg2InTransaction, dsn, opsHits[0])
		cmd.Env = cleanEnv("PYTHONDONTWRITEBYTECODE=1", "PGTZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psycopg2: %v\n%s", err, out)
		}
		return string(out)
	}
	hits := map[string]string{"rollup": opsRollup, "mode": "duckdb"}
	before := mustMetric(t, scrape(t, o.proxyProc), "pgrollup_rollup_hits_total", hits)
	through := run(o.DSN(userMD5, dbMain))
	after := mustMetric(t, scrape(t, o.proxyProc), "pgrollup_rollup_hits_total", hits)
	direct := run(env.pg.DSNFor(userMD5, passwords[userMD5], dbMain))
	if through != direct {
		t.Fatalf("psycopg2 in a transaction:\nthrough pgrollup:\n%s\ndirectly:\n%s", through, direct)
	}
	if !strings.HasSuffix(strings.TrimSpace(through), "done") {
		t.Fatalf("psycopg2 did not finish:\n%s", through)
	}
	// The read before the write, not the one after it.
	if got := after - before; got != 1 {
		t.Fatalf("rollup hits in the block: %v, want 1 (the read before the write)\n%s", got, through)
	}
}
