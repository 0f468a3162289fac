package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const dbPsql = "e2e_psql"

// TestPsqlScript runs testdata/compat.sql with psql in a fresh database,
// directly and through the proxy, and compares the whole output (statements
// echoed, results, notices, errors with SQLSTATE and location) and the files
// \copy wrote.
func TestPsqlScript(t *testing.T) {
	requireTool(t, "psql")
	ctx := testCtx(t, 60*time.Second)
	script, err := filepath.Abs("testdata/compat.sql")
	if err != nil {
		t.Fatal(err)
	}
	out := differential(t, ctx, "psql", func(t *testing.T, ctx context.Context, tg target) string {
		recreateDatabase(t, ctx, dbPsql)
		dir := t.TempDir()
		// A file \copy must reject: a row with too many columns.
		if err := os.WriteFile(filepath.Join(dir, "orders_bad.csv"), []byte("1,a,2,{},{},extra\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Same relative script path on both sides: psql prints it with each error.
		if err := os.Symlink(script, filepath.Join(dir, "compat.sql")); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "psql", "-X", "-a", "-v", "ON_ERROR_STOP=0", "-f", "compat.sql")
		cmd.Dir = dir
		cmd.Env = libpqEnv(tg, userScram, dbPsql)
		// One file for both streams keeps errors next to the statements that caused them.
		outFile, err := os.Create(filepath.Join(dir, "psql.out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = outFile, outFile
		runErr := cmd.Run()
		outFile.Close()
		var b strings.Builder
		fmt.Fprintf(&b, "exit: %v\n", runErr)
		for _, f := range []string{"psql.out", "orders_out.csv", "imported_out.txt"} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				fmt.Fprintf(&b, "=== %s: %v\n", f, err)
				continue
			}
			fmt.Fprintf(&b, "=== %s\n%s", f, data)
		}
		if strings.Contains(b.String(), strconv.Itoa(tg.port)) {
			t.Errorf("%s: psql output mentions the port %d; the comparison would be meaningless", tg.name, tg.port)
		}
		return b.String()
	})
	mustContain(t, "psql", out, "exit: <nil>", "ERROR:  22012: division by zero", "ERROR:  23505", "ERROR:  42601",
		"ERROR:  25P02", "NOTICE:  00000: notice with a value", "COPY 5", "COPY 2", "ERROR:  22P04", " Column |  Type", "n=5 top=99.99",
		"generated", "inline two", "ERROR:  26000", "done\n", "=== orders_out.csv\nid,customer,amount,tags,meta\n")
}

// recreateDatabase gives each side of a comparison the same empty database,
// so that serial values and messages match.
func recreateDatabase(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	super := superConn(t, ctx, "postgres")
	for _, s := range []string{
		"DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)",
		"CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER " + userScram,
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
