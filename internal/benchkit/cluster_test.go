package benchkit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// TestStartClusterExecAll starts a throw-away cluster as the benchmarks do,
// sets it up with ExecAll and stops it with KeepFirst.
func TestStartClusterExecAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	cluster, err := StartCluster(ctx, map[string]string{"timezone": "UTC"})
	if err != nil {
		pgcluster.Unavailable(t, err)
	}
	defer func() {
		KeepFirst(&err, cluster.Stop)
		if err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	}()
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := ExecAll(ctx, conn,
		`CREATE ROLE kit LOGIN PASSWORD 'kit'`,
		`CREATE DATABASE kit OWNER kit`); err != nil {
		t.Fatal(err)
	}
	var tz, owner string
	if err := conn.QueryRow(ctx, `SELECT current_setting('TimeZone'), pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'kit'`).Scan(&tz, &owner); err != nil {
		t.Fatal(err)
	}
	if tz != "UTC" || owner != "kit" {
		t.Fatalf("timezone %s, owner of kit %s: want UTC and kit", tz, owner)
	}
	err = ExecAll(ctx, conn, `SELECT 1`, `CREATE ROLE kit`, `SELECT 2`)
	if err == nil || !strings.HasPrefix(err.Error(), "CREATE ROLE kit: ") || !strings.Contains(err.Error(), "42710") {
		t.Fatalf("ExecAll with a failing statement: %v, want it named with its SQLSTATE", err)
	}
	err = nil
}
