package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestPgbench initialises pgbench's tables directly, then runs every query
// mode with the built-in and a custom script through the proxy with several
// clients. Every run must finish with zero failed transactions, and the data
// must stay consistent.
func TestPgbench(t *testing.T) {
	requireTool(t, "pgbench")
	ctx := testCtx(t, 120*time.Second)
	direct := targets()[0]
	proxy := targets()[1]
	initCmd := exec.CommandContext(ctx, "pgbench", "-i", "-s", "2", "-q")
	initCmd.Env = libpqEnv(direct, userScram, dbBench)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	custom, err := filepath.Abs("testdata/pgbench_custom.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"simple", "extended", "prepared"} {
		for _, script := range []struct {
			name string
			args []string
		}{
			{"tpcb-like", []string{"-t", "100"}},
			{"select-only", []string{"-S", "-t", "500"}},
			{"custom", []string{"-f", custom, "-t", "100"}},
		} {
			t.Run(mode+"/"+script.name, func(t *testing.T) {
				args := append([]string{"-n", "-M", mode, "-c", "4", "-j", "2"}, script.args...)
				cmd := exec.CommandContext(ctx, "pgbench", args...)
				cmd.Env = libpqEnv(proxy, userScram, dbBench)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("pgbench %v through pgrollup: %v\n%s", args, err, out)
				}
				m := pgbenchProcessed.FindSubmatch(out)
				if m == nil {
					t.Fatalf("no transaction count in pgbench output:\n%s", out)
				}
				if n, _ := strconv.Atoi(string(m[1])); n <= 0 {
					t.Errorf("processed %d transactions:\n%s", n, out)
				}
				f := pgbenchFailed.FindSubmatch(out)
				if f == nil {
					t.Fatalf("no failed-transaction count in pgbench output (pgbench 15 or newer prints it):\n%s", out)
				}
				if string(f[1]) != "0" {
					t.Errorf("%s failed transactions:\n%s", f[1], out)
				}
			})
		}
	}
	// Every delta that reached an account is in the history, and vice versa:
	// a dropped or doubled statement in the proxy would break this.
	super := superConn(t, ctx, dbBench)
	var accounts, history, n int64
	if err := super.QueryRow(ctx, `SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		(SELECT count(*) FROM pgbench_history)`).Scan(&accounts, &history, &n); err != nil {
		t.Fatal(err)
	}
	if accounts != history {
		t.Errorf("sum(abalance)=%d but sum(history.delta)=%d", accounts, history)
	}
	// 4 clients x 100 transactions, for tpcb-like and custom, in three modes.
	if want := int64(3 * 2 * 4 * 100); n != want {
		t.Errorf("pgbench_history has %d rows, want %d", n, want)
	}
}
