package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The node-postgres packages scripts/deps.sh installs (group node); the
// versions must match the script's.
const (
	nodePgVersion       = "8.13.1"
	nodePgCursorVersion = "2.12.1"
)

// nodeModules is the folder scripts/deps.sh installs node-postgres into.
func nodeModules(t *testing.T) string {
	t.Helper()
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no home directory to find node-postgres in: %v", err)
		}
		base = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(base, "pgrollup", "node", "pg-"+nodePgVersion+"-cursor-"+nodePgCursorVersion, "node_modules")
	for _, pkg := range []string{"pg", "pg-cursor"} {
		if _, err := os.Stat(filepath.Join(dir, pkg, "package.json")); err != nil {
			t.Fatalf("node-postgres is not installed in %s: run `bash scripts/deps.sh node` (make test does): %v", dir, err)
		}
	}
	return dir
}

// boundAsyncpg binds values as asyncpg does: it prepares every statement
// with its parameter types unspecified, reads the types from the
// warehouse's description and sends every value in binary, datetimes
// included; a prepared statement is reused with other values, and a cursor
// pages through a portal inside a transaction.
const boundAsyncpg = `
import asyncio, datetime, sys
import asyncpg

async def main(dsn):
    conn = await asyncpg.connect(dsn, ssl=False)
    utc = datetime.timezone.utc
    day = lambda d, h=0: datetime.datetime(2024, 1, d, h, tzinfo=utc)
    cases = [
        ("SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", ["completed"]),
        ("SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3", ["completed", day(3), day(10)]),
        ("SELECT qty, count(*) FROM sales WHERE status = $1 AND qty = $2 GROUP BY qty", ["completed", 4]),
        # A near miss outside the filter; a bound off the day grain, whose
        # whole days the rollup answers and whose edge the warehouse reads.
        ("SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", ["pending"]),
        ("SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3", ["completed", day(3, 1), day(10)]),
    ]
    for sql, args in cases:
        rows = await conn.fetch(sql, *args)
        print(sql, args, [tuple(r) for r in rows])
    stmt = await conn.prepare("SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3")
    print("params", [t.name for t in stmt.get_parameters()], "columns", [(a.name, a.type.name) for a in stmt.get_attributes()])
    for d in (2, 5, 8):
        print("prepared", d, tuple(await stmt.fetchrow("completed", day(d), day(d + 3))))
    async with conn.transaction():
        got = []
        async for r in conn.cursor("SELECT qty, count(*) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty", "completed", prefetch=2):
            got.append(tuple(r))
        print("cursor", got)
    await conn.close()
    print("done")

asyncio.run(main(sys.argv[1]))
`

// TestBoundParamsAsyncpg: of the 5 statements, the prepared statement's 3
// executions and the cursor, 8 are answered from rollups (the near miss is
// not; the bound off the grain is, with exact edges: asyncpg's values
// have the types the warehouse described). fetchrow executes its portal with a row limit of 1 and
// closes it suspended: still a hit.
func TestBoundParamsAsyncpg(t *testing.T) {
	requireTool(t, debianPython)
	ctx := testCtx(t, 2*time.Minute)
	if out, err := exec.CommandContext(ctx, debianPython, "-c", "import asyncpg").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import asyncpg: run `bash scripts/deps.sh python` (apt-get install python3-asyncpg): %v\n%s", debianPython, err, out)
	}
	p := startBoundProxy(t, ctx)
	boundClientCheck(t, p, func(tg target) string {
		cmd := exec.CommandContext(ctx, debianPython, "-c", boundAsyncpg, tg.DSN(userScram, boundDB))
		cmd.Env = cleanEnv("PYTHONDONTWRITEBYTECODE=1", "PGTZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tg.name, err, out)
		}
		return string(out)
	}, 8)
}

// boundNode binds values as node-postgres does: the extended protocol with
// every parameter's type unspecified and every value as text, JavaScript
// Dates written with a zone offset; a named statement is prepared once and
// reused; pg-cursor (Malloy, Evidence) reads a portal a few rows at a time
// with Execute and Flush, without Sync, until it is exhausted.
const boundNode = `
const { Client } = require('pg');
const Cursor = require('pg-cursor');

const show = (rows) => JSON.stringify(rows.map((r) => Object.values(r)));

async function main(dsn) {
  const c = new Client({ connectionString: dsn });
  await c.connect();
  const day = (d, h = 0) => new Date(Date.UTC(2024, 0, d, h));
  const cases = [
    ['SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty', ['completed']],
    ['SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3', ['completed', day(3), day(10)]],
    ['SELECT qty, count(*) FROM sales WHERE status = $1 AND qty = $2 GROUP BY qty', ['completed', 4]],
    // A time bound as JavaScript code writes it by hand.
    ['SELECT count(*) FROM sales WHERE status = $1 AND created_at >= $2', ['completed', '2024-01-05T00:00:00Z']],
    // Near misses: outside the filter, and a bound off the day grain.
    ['SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty', ['pending']],
    ['SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3', ['completed', day(3, 1), day(10)]],
  ];
  for (const [text, values] of cases) {
    const r = await c.query({ text, values });
    console.log(text, JSON.stringify(values), r.fields.map((f) => f.name + ':' + f.dataTypeID).join(','), show(r.rows));
  }
  for (const d of [2, 5, 8]) {
    const r = await c.query({ name: 'by_days', text: 'SELECT count(*), sum(amount) FROM sales WHERE status = $1 AND created_at >= $2 AND created_at < $3', values: ['completed', day(d), day(d + 3)] });
    console.log('named', d, show(r.rows));
  }
  const cursor = c.query(new Cursor('SELECT qty, count(*), sum(amount) FROM sales WHERE status = $1 GROUP BY qty ORDER BY qty', ['completed']));
  const pages = [];
  for (;;) {
    const rows = await cursor.read(3);
    if (rows.length === 0) break;
    pages.push(show(rows));
  }
  await cursor.close();
  console.log('cursor', pages.join(' | '));
  await c.end();
  console.log('done');
}

main(process.argv[2]).catch((e) => { console.error(e); process.exit(1); });
`

// TestBoundParamsNode: of the 6 statements, the named statement's 3
// executions and the cursor, 8 are answered from rollups (the two near
// misses are not).
func TestBoundParamsNode(t *testing.T) {
	requireTool(t, "node")
	modules := nodeModules(t)
	ctx := testCtx(t, 2*time.Minute)
	p := startBoundProxy(t, ctx)
	script := filepath.Join(t.TempDir(), "bound.js")
	if err := os.WriteFile(script, []byte(boundNode), 0o644); err != nil {
		t.Fatal(err)
	}
	boundClientCheck(t, p, func(tg target) string {
		return runNode(t, ctx, modules, script, tg.DSN(userScram, boundDB))
	}, 8)
}

func runNode(t *testing.T, ctx context.Context, modules, script string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Env = cleanEnv("NODE_PATH="+modules, "TZ=UTC", "PGTZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", fmt.Sprint(args), err, out)
	}
	return string(out)
}
