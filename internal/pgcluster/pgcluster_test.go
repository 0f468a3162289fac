package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// syncBuffer is written by the log tailer and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStartStop(t *testing.T) {
	t.Setenv(EnvTestDSN, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logBuf syncBuffer
	c, err := Start(ctx, Options{
		HBA:    []string{"host all trusty 127.0.0.1/32 trust"},
		Config: map[string]string{"max_connections": "42", "application_name": "it's quoted"},
		Log:    &logBuf,
	})
	if err != nil {
		Unavailable(t, err)
	}
	defer c.Stop()

	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("superuser connect: %v", err)
	}
	var maxConn, appName, user, enc, collate string
	if err := conn.QueryRow(ctx, `SELECT current_setting('max_connections'), current_setting('application_name'),
		current_user, pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = current_database()`).
		Scan(&maxConn, &appName, &user, &enc, &collate); err != nil {
		t.Fatal(err)
	}
	// pgx sends no application_name, so the server-side default set through Options.Config shows.
	want := []string{"42", "it's quoted", "postgres", "UTF8", "C"}
	got := []string{maxConn, appName, user, enc, collate}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if _, err := conn.Exec(ctx, `CREATE ROLE trusty LOGIN; CREATE ROLE scram LOGIN PASSWORD 'pw'`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// The HBA line must come before the defaults: trusty gets in with any password.
	tc, err := pgx.Connect(ctx, c.DSNFor("trusty", "wrong", "postgres"))
	if err != nil {
		t.Errorf("trust user via extra HBA line: %v", err)
	} else {
		tc.Close(ctx)
	}
	// Host connections default to SCRAM: a wrong password is refused with 28P01.
	_, err = pgx.Connect(ctx, c.DSNFor("scram", "nope", "postgres"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.InvalidPassword {
		t.Errorf("wrong SCRAM password: got %v, want SQLSTATE 28P01", err)
	}
	sc, err := pgx.Connect(ctx, c.DSNFor("scram", "pw", "postgres"))
	if err != nil {
		t.Errorf("SCRAM user: %v", err)
	} else {
		sc.Close(ctx)
	}

	if !strings.Contains(c.DSN("x"), ":"+strconv.Itoa(c.Port)+"/") {
		t.Errorf("DSN %q lacks the port", c.DSN("x"))
	}
	if _, err := os.Stat(c.SocketDir() + "/.s.PGSQL." + strconv.Itoa(c.Port)); err != nil {
		t.Errorf("unix socket not inside Dir: %v", err)
	}
	logText, err := c.ServerLog()
	if err != nil || !bytes.Contains(logText, []byte("database system is ready")) {
		t.Errorf("server log: err=%v, text=%q", err, logText)
	}

	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s still exists after Stop (err=%v)", dir, err)
	}
	if nc, err := net.DialTimeout("tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), time.Second); err == nil {
		nc.Close()
		t.Errorf("port %d still accepts connections after Stop", c.Port)
	}
	if !strings.Contains(logBuf.String(), "database system is ready") {
		t.Errorf("Options.Log did not receive the server log, got %q", logBuf.String())
	}
}

func TestExternalDSN(t *testing.T) {
	t.Setenv(EnvTestDSN, "postgres://alice:s3cret@db.example:6543/shop?sslmode=require")
	c, err := Start(context.Background(), Options{HBA: []string{"ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.External || c.Host != "db.example" || c.Port != 6543 || c.SuperUser != "alice" || c.SuperPassword != "s3cret" || c.Dir != "" {
		t.Errorf("unexpected cluster %+v", c)
	}
	if got, want := c.DSN("other"), "postgres://alice:s3cret@db.example:6543/other?sslmode=require"; got != want {
		t.Errorf("DSN = %q, want %q", got, want)
	}
	if got, want := c.DSNFor("bob", "", "x"), "postgres://bob@db.example:6543/x?sslmode=require"; got != want {
		t.Errorf("DSNFor = %q, want %q", got, want)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("Stop of an external server: %v", err)
	}

	t.Setenv(EnvTestDSN, "host=localhost password=hunter2")
	if _, err := Start(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "postgres:// URL") {
		t.Errorf("keyword DSN: got %v, want an error asking for a URL", err)
	}
}

func TestDSNEscapes(t *testing.T) {
	c := &Cluster{Host: "127.0.0.1", Port: 5555, SuperUser: "postgres", SuperPassword: "p@ss/word"}
	cfg, err := pgconn.ParseConfig(c.DSNFor("us er", "p@ss/word", "my db"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "us er" || cfg.Password != "p@ss/word" || cfg.Database != "my db" || cfg.Port != 5555 || cfg.TLSConfig != nil {
		t.Errorf("round trip lost something: %+v", cfg)
	}
}

func TestPickBinDir(t *testing.T) {
	has := func(ok ...string) func(string) bool {
		return func(d string) bool {
			for _, o := range ok {
				if o == d {
					return true
				}
			}
			return false
		}
	}
	cases := []struct {
		name       string
		candidates []string
		fromConfig string
		ok         func(string) bool
		want       string // empty: an error naming the package
	}{
		{"highest version wins", []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}, "",
			has("/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"), "/usr/lib/postgresql/16/bin"},
		{"numeric not lexical", []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/10/bin"}, "",
			has("/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/10/bin"), "/usr/lib/postgresql/10/bin"},
		{"client-only highest is skipped", []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin"}, "",
			has("/usr/lib/postgresql/15/bin"), "/usr/lib/postgresql/15/bin"},
		{"pg_config fallback", nil, "/opt/pg/bin", has("/opt/pg/bin"), "/opt/pg/bin"},
		{"nothing installed", []string{"/usr/lib/postgresql/15/bin"}, "/usr/bin", has(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickBinDir(tc.candidates, tc.fromConfig, tc.ok)
			if tc.want == "" {
				if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install postgresql") {
					t.Fatalf("got %q, %v; want an error naming the package", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCrashLeavesNothing starts a cluster in a child process that then dies
// without calling Stop, as a test binary does on a panic or a timeout; the
// watchdog must stop the server and remove its directory.
func TestCrashLeavesNothing(t *testing.T) {
	if os.Getenv("PGCLUSTER_CRASH_CHILD") == "1" {
		c, err := Start(context.Background(), Options{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Printf("CLUSTER %s %d\n", c.Dir, c.Port)
		os.Exit(3) // no Stop
	}
	t.Setenv(EnvTestDSN, "")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLeavesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGCLUSTER_CRASH_CHILD=1")
	out, _ := cmd.Output()
	var dir string
	var port int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "CLUSTER ") {
			fmt.Sscanf(line, "CLUSTER %s %d", &dir, &port)
		}
	}
	if dir == "" {
		if bytes.Contains(out, []byte(ErrNotInstalled.Error())) {
			Unavailable(t, fmt.Errorf("%w (in the child process)", ErrNotInstalled))
		}
		t.Fatalf("child did not start a cluster:\n%s", out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		nc, dialErr := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if dialErr == nil {
			nc.Close()
		}
		if os.IsNotExist(statErr) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the child died: dir %s exists=%v, port %d open=%v", dir, statErr == nil, port, dialErr == nil)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Halt stops the server as a shutdown would; Resume starts it again on the
// same port with the same data; Stop cleans up a halted one too.
func TestHaltResume(t *testing.T) {
	t.Setenv(EnvTestDSN, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		Unavailable(t, err)
	}
	defer c.Stop()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (a int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if err == nil || errors.As(err, &pe) && pe.Code != sqlstate.AdminShutdown {
		t.Errorf("a session across Halt: %v, want 57P01 or a closed connection", err)
	}
	if c2, err := pgx.Connect(ctx, c.DSN("postgres")); err == nil {
		c2.Close(ctx)
		t.Fatal("connected to a halted server")
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	defer conn.Close(ctx)
	var a int
	if err := conn.QueryRow(ctx, "SELECT a FROM kept").Scan(&a); err != nil || a != 7 {
		t.Errorf("data after Resume: %d %v", a, err)
	}
	if err := c.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop of a halted cluster: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
}
