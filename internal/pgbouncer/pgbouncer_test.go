package pgbouncer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/proc"
)

// TestStart runs PgBouncer in front of a throw-away cluster and answers a
// statement through it.
func TestStart(t *testing.T) {
	bin, err := Find("")
	if err != nil {
		// make test installs it (scripts/deps.sh), and requires it as it
		// requires PostgreSQL; a bare go test may go without.
		if pgcluster.Required() {
			t.Fatalf("this test needs PgBouncer: %v", err)
		}
		t.Skipf("skipped: %v (%s=1 or CI=true makes this a failure)", err, pgcluster.EnvRequire)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		pgcluster.Unavailable(t, err)
	}
	defer cluster.Stop()
	admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, sql := range []string{`CREATE ROLE bouncer LOGIN PASSWORD 'pw'`, `CREATE DATABASE bouncer OWNER bouncer`} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	ports, err := proc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(ctx, Options{
		Bin: bin, Dir: t.TempDir(), Writer: "TestStart",
		Host: cluster.Host, ServerPort: cluster.Port, Database: "bouncer",
		User: "bouncer", Password: "pw", Port: ports[0], MaxClients: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	through := fmt.Sprintf("postgres://bouncer:pw@127.0.0.1:%d/bouncer?sslmode=disable", ports[0])
	conn, err := pgx.Connect(ctx, through)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var user string
	var port int
	if err := conn.QueryRow(ctx, `SELECT current_user::text, inet_server_port()`).Scan(&user, &port); err != nil {
		t.Fatal(err)
	}
	if user != "bouncer" || port != cluster.Port {
		t.Fatalf("through PgBouncer: user %s on the server's port %d, want bouncer on %d", user, port, cluster.Port)
	}
}
