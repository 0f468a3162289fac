package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// testPG is the warehouse of the tests that need one, started by the first of
// them with the roles of each authentication method.
var testPG = pgcluster.Shared{
	Options: pgcluster.Options{
		HBA: []string{"host all " + trustUser + " 127.0.0.1/32 trust", "host all " + md5User + " 127.0.0.1/32 md5"},
	},
	Setup: setupRoles,
}

// cluster returns the warehouse, starting it on first use; without one the test
// is skipped, or failed under make test and CI.
func cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	return testPG.Get(t)
}

const (
	scramUser, scramPassword = "scram_user", "scram secret"
	md5User, md5Password     = "md5_user", "md5 secret"
	trustUser                = "trust_user"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testPG.Exit))
}

func setupRoles(ctx context.Context, c *pgcluster.Cluster) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"DROP ROLE IF EXISTS " + scramUser + ", " + md5User + ", " + trustUser,
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE " + scramUser + " LOGIN PASSWORD '" + scramPassword + "'",
		"SET password_encryption = 'md5'",
		"CREATE ROLE " + md5User + " LOGIN PASSWORD '" + md5Password + "'",
		"CREATE ROLE " + trustUser + " LOGIN",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// testIdleTick is the idle sweeper's tick in tests.
const testIdleTick = 10 * time.Millisecond

// testProxy runs a Server on a loopback port for the length of a test.
type testProxy struct {
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

func startProxy(t testing.TB, mutate func(*Options)) *testProxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{WarehouseDSN: cluster(t).DSN("postgres"), Registerer: reg}
	// As pgrollup serve runs it by default, unless
	// PGROLLUP_TEST_EVENT_LOOP=0 (make test runs the package both ways).
	opts.EventLoop = os.Getenv("PGROLLUP_TEST_EVENT_LOOP") != "0"
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Silent connections park within tens of milliseconds, so that every
	// test also runs its sessions through parking and resuming (idle.go).
	srv.idleTick = testIdleTick
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return &testProxy{srv: srv, addr: l.Addr().String(), reg: reg}
}

func (p *testProxy) dsn(user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: p.addr, Path: "/postgres", RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestAuthentication(t *testing.T) {
	p := startProxy(t, nil)
	tests := []struct {
		name, user, password string
		wantCode             string // empty: success
	}{
		{"trust", trustUser, "", ""},
		{"scram", scramUser, scramPassword, ""},
		{"scram wrong password", scramUser, "nope", sqlstate.InvalidPassword},
		{"md5", md5User, md5Password, ""},
		{"md5 wrong password", md5User, "nope", sqlstate.InvalidPassword},
		{"unknown role", "nobody_here", "x", sqlstate.InvalidPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, p.dsn(tt.user, tt.password))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer conn.Close(ctx)
				var user string
				if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
					t.Fatal(err)
				}
				if user != tt.user {
					t.Fatalf("current_user = %q, want %q", user, tt.user)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.wantCode {
				t.Fatalf("err = %v, want SQLSTATE %s", err, tt.wantCode)
			}
			// The same attempt directly must fail the same way.
			direct, derr := pgx.Connect(ctx, cluster(t).DSNFor(tt.user, tt.password, "postgres"))
			var directErr *pgconn.PgError
			if !errors.As(derr, &directErr) {
				direct.Close(ctx)
				t.Fatalf("direct connect did not fail: %v", derr)
			}
			if directErr.Message != pgErr.Message || directErr.Severity != pgErr.Severity {
				t.Fatalf("through proxy %q/%q, direct %q/%q", pgErr.Severity, pgErr.Message, directErr.Severity, directErr.Message)
			}
		})
	}
}

func TestCleartextPolicyNever(t *testing.T) {
	p := startProxy(t, func(o *Options) { o.Cleartext = CleartextNever })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, p.dsn(scramUser, scramPassword))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.InvalidAuthorizationSpecification {
		t.Fatalf("err = %v, want SQLSTATE %s", err, sqlstate.InvalidAuthorizationSpecification)
	}
	// Trust needs no password, so the policy does not get in its way.
	conn := connect(t, p.dsn(trustUser, ""))
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// queries returns pgrollup_queries_total{route} as the registry gathers
// it, with the sessions' tallies.
func (p *testProxy) queries(t testing.TB, r Route) float64 {
	t.Helper()
	return p.gathered(t, "pgrollup_queries_total", r).GetCounter().GetValue()
}

// timed returns the sample count of pgrollup_query_duration_seconds{route}.
func (p *testProxy) timed(t testing.TB, r Route) uint64 {
	t.Helper()
	return p.gathered(t, "pgrollup_query_duration_seconds", r).GetHistogram().GetSampleCount()
}

// gathered returns the series of the metric name with route r.
func (p *testProxy) gathered(t testing.TB, name string, r Route) *dto.Metric {
	t.Helper()
	families, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == string(r) {
					return m
				}
			}
		}
	}
	t.Fatalf("no %s{route=%q}", name, r)
	return nil
}

func TestQueriesAreCounted(t *testing.T) {
	p := startProxy(t, nil)
	conn := connect(t, p.dsn(trustUser, ""))
	ctx := context.Background()
	before := p.queries(t, RoutePassthrough)
	for i := range 3 {
		var n int
		if err := conn.QueryRow(ctx, "select $1::int", i).Scan(&n); err != nil || n != i {
			t.Fatalf("got %d, %v", n, err)
		}
	}
	if _, err := conn.Exec(ctx, "select 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got := p.queries(t, RoutePassthrough) - before; got != 4 {
		t.Fatalf("passthrough queries counted %v, want 4", got)
	}
	if got := testutil.ToFloat64(p.srv.metrics.ClientConnections); got != 1 {
		t.Fatalf("client connections %v, want 1", got)
	}
}

func TestCancel(t *testing.T) {
	p := startProxy(t, nil)
	conn := connect(t, p.dsn(trustUser, ""))
	ctx := context.Background()
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := conn.PgConn().CancelRequest(ctx); err != nil {
			t.Errorf("cancel request: %v", err)
		}
	}()
	start := time.Now()
	_, err := conn.Exec(ctx, "select pg_sleep(20)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != sqlstate.QueryCanceled {
		t.Fatalf("err = %v, want SQLSTATE 57014", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// The session survives its cancelled statement.
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after cancel: %d, %v", one, err)
	}
}
