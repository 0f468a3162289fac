package jobstest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// testPG is the Postgres cluster of a package's tests, started by the first
// test that needs it.
var testPG pgcluster.Shared

// Warehouse returns the package's Postgres cluster, starting it on first
// use (pgcluster.Shared: a missing Postgres skips the test, or fails it
// under make test and CI).
func Warehouse(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return testPG.Get(t)
}

// Main runs the package's tests, stops the cluster if a test started it,
// and fails the run if the tests left goroutines behind.
func Main(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testPG.Exit))
}

// NewDatabase creates the database name afresh in Warehouse, runs stmts in it
// and returns its DSN.
func NewDatabase(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	dsn, err := Warehouse(t).NewDatabase(context.Background(), name, stmts...)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// SQLExec runs stmts on dsn.
func SQLExec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Shop is a table of orders to build rollups from.
var Shop = []string{
	`CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2), created_at timestamptz NOT NULL)`,
	`INSERT INTO orders SELECT i, (ARRAY['new','paid'])[1 + i % 2], i % 100, now() - i * interval '7 minutes' FROM generate_series(1, 3000) i`,
}

// LoadConfig parses a config with the warehouse dsn and data_dir dir
// followed by body, without environment overrides.
func LoadConfig(t testing.TB, dsn, dir, body string) *config.Config {
	t.Helper()
	y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\n%s", dsn, dir, body)
	cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}
