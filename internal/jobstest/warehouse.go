package jobstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// Warehouse is the Postgres cluster Main starts for a package's tests.
var Warehouse *pgcluster.Cluster

// Main starts Warehouse, runs the package's tests and exits with their code.
func Main(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobs tests need a Postgres server:", err)
		os.Exit(1)
	}
	Warehouse = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

// NewDatabase creates the database name afresh in Warehouse, runs stmts in it
// and returns its DSN.
func NewDatabase(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, Warehouse.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, s := range []string{`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`, `CREATE DATABASE "` + name + `"`} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	dsn := Warehouse.DSN(name)
	SQLExec(t, dsn, stmts...)
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
