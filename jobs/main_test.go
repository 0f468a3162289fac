package jobs

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

var warehouse *pgcluster.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobs tests need a Postgres server:", err)
		os.Exit(1)
	}
	warehouse = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

func newDatabase(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, warehouse.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, s := range []string{`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`, `CREATE DATABASE "` + name + `"`} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	dsn := warehouse.DSN(name)
	sqlExec(t, dsn, stmts...)
	return dsn
}

func sqlExec(t testing.TB, dsn string, stmts ...string) {
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

var shop = []string{
	`CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2), created_at timestamptz NOT NULL)`,
	`INSERT INTO orders SELECT i, (ARRAY['new','paid'])[1 + i % 2], i % 100, now() - i * interval '7 minutes' FROM generate_series(1, 3000) i`,
}

func loadConfig(t testing.TB, dsn, dir, body string) *config.Config {
	t.Helper()
	y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\n%s", dsn, dir, body)
	cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

// embedded starts an embedded NATS server in dir and returns a JetStream context.
func embedded(t testing.TB, dir string) (*node.Server, jetstream.JetStream, *catalog.Catalog) {
	t.Helper()
	srv, err := node.StartServer(context.Background(), node.ServerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	js, cat := setup(t, nc)
	return srv, js, cat
}

func setup(t testing.TB, nc *nats.Conn) (jetstream.JetStream, *catalog.Catalog) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, kv, err := node.Setup(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return js, catalog.New(kv)
}

// natsServer starts Debian's nats-server binary with JetStream in its own process.
func natsServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("multi-process tests need nats-server (apt-get install nats-server): %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func state(t testing.TB, cat *catalog.Catalog, def *rollup.Definition) *rollup.State {
	t.Helper()
	st, err := cat.Get(context.Background(), def.Name, def.Identity())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func records(st *rollup.State, result string) []rollup.BuildRecord {
	var out []rollup.BuildRecord
	if st == nil {
		return nil
	}
	for _, b := range st.Builds {
		if result == "" || b.Result == result {
			out = append(out, b)
		}
	}
	return out
}
