package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// Main runs a command's work with a context that Ctrl-C (SIGINT) or
// SIGTERM ends, so that it stops what it started in order; the processes it
// starts are in their own process groups (proc.Start) and do not get the
// signal themselves. A failure is printed as "name: error" on stderr, or
// "name: interrupted" when the signal ended the work, and exits 1.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err == nil {
		return
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "%s: interrupted\n", name)
	} else {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(1)
}

// StartCluster starts a throw-away PostgreSQL cluster (pgcluster.Start)
// with the settings of config, printed as a step.
func StartCluster(ctx context.Context, config map[string]string) (*pgcluster.Cluster, error) {
	Step("Starting a throw-away PostgreSQL cluster")
	return pgcluster.Start(ctx, pgcluster.Options{Config: config})
}

// KeepFirst calls stop and puts its error in *err unless *err holds one
// already: `defer benchkit.KeepFirst(&err, cluster.Stop)` stops what a
// function started without hiding the function's own error or losing the
// stop's.
func KeepFirst(err *error, stop func() error) {
	if stopErr := stop(); stopErr != nil && *err == nil {
		*err = stopErr
	}
}

// ExecAll runs each statement on conn in turn, as a benchmark sets up its
// roles and databases; an error names the statement that failed.
func ExecAll(ctx context.Context, conn *pgx.Conn, stmts ...string) error {
	for _, sql := range stmts {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// PgrollupBinary is the absolute path of the pgrollup binary at path (a
// command's -pgrollup), or an error that says how to make it: `make build`,
// or the make target that runs the command and builds it first.
func PgrollupBinary(path, makeTarget string) (string, error) {
	bin, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("pgrollup binary: %w (run `make build`, or use `make %s`)", err, makeTarget)
	}
	return bin, nil
}

// TempDir makes a temporary directory for a command's configs and logs;
// remove removes it, or with keep prints where it is and leaves it.
func TempDir(prefix string, keep bool) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if keep {
			fmt.Printf("Kept %s (configs and logs)\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}, nil
}
