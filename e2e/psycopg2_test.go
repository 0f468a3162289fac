package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's interpreter: python3-psycopg2 is installed for it,
// not for whatever python a developer has first on PATH.
const debianPython = "/usr/bin/python3"

// TestPsycopg2 runs testdata/psycopg2/compat.py (Superset's connect-time
// queries, a named cursor paged with itersize, types, errors, notices)
// directly and through the proxy and compares the output.
func TestPsycopg2(t *testing.T) {
	requireTool(t, debianPython)
	ctx := testCtx(t, 60*time.Second)
	if out, err := exec.CommandContext(ctx, debianPython, "-c", "import psycopg2").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import psycopg2: install the Debian package python3-psycopg2 (apt-get install python3-psycopg2): %v\n%s", debianPython, err, out)
	}
	out := differential(t, ctx, "psycopg2", func(t *testing.T, ctx context.Context, tg target) string {
		cmd := exec.CommandContext(ctx, debianPython, "testdata/psycopg2/compat.py", tg.DSN(userMD5, dbMain))
		cmd.Env = cleanEnv("PYTHONDONTWRITEBYTECODE=1", "PGTZ=UTC")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: compat.py: %v\nstderr:\n%s\nstdout:\n%s", tg.name, err, stderr.String(), stdout.String())
		}
		return stdout.String()
	})
	mustContain(t, "psycopg2", out, "select pg_catalog.version() -> [('PostgreSQL 15", "show transaction isolation level -> [('read committed',)]",
		"named cursor rows 2500 sum 3126250", "after scroll [(991,", "with hold after commit [(1,), (2,), (3,), (4,), (5,)]",
		"error SELECT 1/0 22012", "error SELECT nosuch FROM items 42703", "NOTICE:  from psycopg2 7", "timezone Asia/Tokyo", "done")
}
