package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/internal/freeport"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// The roles every test can use. Each authenticates differently against Postgres,
// so the proxy's relayed authentication is exercised for each method.
const (
	userScram = "e2e_scram" // SCRAM-SHA-256 (the cluster's default for TCP)
	userMD5   = "e2e_md5"   // MD5 password and an md5 pg_hba.conf line
	userTrust = "e2e_trust" // trust pg_hba.conf line, no password at all
	dbMain    = "e2e"       // owned by userScram; most tests work here
	dbBench   = "e2e_bench" // pgbench's tables
	adminTok  = "e2e-admin-token"
)

var passwords = map[string]string{
	userScram: "scram-pw-'\"x",
	userMD5:   "md5-pw",
	userTrust: "",
}

// env is the shared state TestMain sets up.
var env struct {
	pg      *pgcluster.Cluster
	tmp     string
	bin     string // the pgrollup binary built from ./cmd/proxy
	proxy   *proxyProc
	tlsCert string // PEM files of the self-signed certificate the proxy presents
	tlsKey  string
	certPEM []byte
	failed  bool
}

// requiredTools maps each external client to the Debian package that provides it.
var requiredTools = map[string]string{
	"psql":                           "postgresql-client",
	"pgbench":                        "postgresql-client (pgbench)",
	"javac":                          "default-jdk-headless",
	"java":                           "default-jdk-headless",
	"/usr/share/java/postgresql.jar": "libpostgresql-jdbc-java",
	"/usr/bin/python3":               "python3-psycopg2 (with python3)",
	"node":                           "nodejs",
}

// requireTool fails (never skips) a test whose client is not installed: a
// compatibility suite that silently skips its clients proves nothing.
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		pkg := requiredTools[name]
		if strings.HasPrefix(name, "/") {
			if _, err := os.Stat(name); err != nil {
				t.Fatalf("%s is missing: install the Debian package %s (apt-get install %s)", name, pkg, strings.Fields(pkg)[0])
			}
			continue
		}
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("%s is not on PATH: install the Debian package %s (apt-get install %s)", name, pkg, strings.Fields(pkg)[0])
		}
	}
}

// Every test here needs Postgres and the pgrollup in front of it, so TestMain
// starts both up front rather than on first use. Goroutines of the test binary
// still running once everything is shut down are leaks of the tests or of the
// packages they use.
func TestMain(m *testing.M) {
	code := run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	env.tmp, err = os.MkdirTemp("", "pgrollup-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(env.tmp)

	// Build while Postgres starts: both take seconds.
	buildErr := make(chan error, 1)
	go func() { buildErr <- buildProxy(ctx) }()

	env.pg, err = pgcluster.Start(ctx, pgcluster.Options{
		HBA: []string{
			"host all " + userTrust + " 127.0.0.1/32 trust",
			"host all " + userMD5 + " 127.0.0.1/32 md5",
		},
		Config: map[string]string{"max_connections": "200"},
	})
	if err != nil {
		<-buildErr
		if pgcluster.Skippable(err) {
			// The rule pgcluster.Unavailable applies to one test, for all of them.
			fmt.Fprintf(os.Stderr, "e2e: every test skipped: %v (%s=1 or CI=true makes this a failure)\n", err, pgcluster.EnvRequire)
			return 0
		}
		fmt.Fprintln(os.Stderr, "e2e: starting Postgres:", err)
		return 1
	}
	defer func() {
		if env.failed {
			if log, err := env.pg.ServerLog(); err == nil {
				fmt.Fprintf(os.Stderr, "\n===== Postgres server log =====\n%s\n", tail(log, 200))
			}
		}
		if err := env.pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}()
	if err := setupDatabase(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setting up Postgres:", err)
		<-buildErr
		return 1
	}
	if err := writeCert(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		<-buildErr
		return 1
	}
	if err := <-buildErr; err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.proxy, err = startProxy(ctx, "main", proxyOptions{TLS: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting pgrollup:", err)
		return 1
	}
	code := m.Run()
	// The set-up context may be spent by now; the checks get their own.
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tableNames.Lock()
	if tableNames.conn != nil {
		tableNames.conn.Close(ctx)
	}
	tableNames.Unlock()
	if err := checkNoSessionsLeft(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	env.failed = code != 0
	exitErr := env.proxy.stop(10 * time.Second)
	if exitErr != nil {
		fmt.Fprintln(os.Stderr, "e2e: pgrollup did not shut down cleanly on SIGTERM:", exitErr)
		env.failed = true
		code = 1
	}
	if env.failed {
		fmt.Fprintf(os.Stderr, "\n===== pgrollup log (main) =====\n%s\n", tail(env.proxy.log.Bytes(), 300))
	}
	return code
}

// checkNoSessionsLeft runs after every test has closed its connections: an
// upstream session of a test role still open means the proxy leaked it.
func checkNoSessionsLeft(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, env.pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(usename || ' ' || coalesce(application_name, '') || ': ' || left(query, 60)), '{}')
			FROM pg_stat_activity WHERE usename = ANY($1)`, []string{userScram, userMD5, userTrust}).Scan(&left)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("upstream sessions still open 5s after the tests closed theirs (leaked by the proxy?):\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buildProxy builds the pgrollup the tests run; PGROLLUP_RACE=1 builds it
// with the race detector, whose reports end the process with an error.
func buildProxy(ctx context.Context) error {
	env.bin = filepath.Join(env.tmp, "pgrollup")
	args := []string{"build", "-o", env.bin}
	if os.Getenv("PGROLLUP_RACE") != "" {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/proxy")...)
	cmd.Dir = ".." // the module root: tests run in e2e/
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/proxy: %v\n%s", err, out)
	}
	return nil
}

// setupDatabase creates the roles and databases every test relies on.
func setupDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, env.pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	stmts := []string{
		// Idempotent, for a reused server named by PGROLLUP_TEST_DSN.
		"DROP DATABASE IF EXISTS " + dbMain + " WITH (FORCE)",
		"DROP DATABASE IF EXISTS " + dbBench + " WITH (FORCE)",
		"DROP DATABASE IF EXISTS " + dbPsql + " WITH (FORCE)",
		"DROP ROLE IF EXISTS " + userScram,
		"DROP ROLE IF EXISTS " + userMD5,
		"DROP ROLE IF EXISTS " + userTrust,
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE " + userScram + " LOGIN CREATEDB PASSWORD " + quote(passwords[userScram]),
		"SET password_encryption = 'md5'",
		"CREATE ROLE " + userMD5 + " LOGIN PASSWORD " + quote(passwords[userMD5]),
		"RESET password_encryption",
		"CREATE ROLE " + userTrust + " LOGIN",
		"CREATE DATABASE " + dbMain + " OWNER " + userScram,
		"CREATE DATABASE " + dbBench + " OWNER " + userScram,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	// Both other roles may work in the main database's public schema.
	db, err := pgx.Connect(ctx, env.pg.DSN(dbMain))
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "GRANT ALL ON SCHEMA public TO PUBLIC"); err != nil {
		return err
	}
	owner, err := pgx.Connect(ctx, directDSN(userScram, dbMain))
	if err != nil {
		return err
	}
	defer owner.Close(ctx)
	if _, err := owner.Exec(ctx, fixtureSQL); err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	return nil
}

// fixtureSQL holds the read-only tables many tests query: one row per corner
// of each common type, and a thousand rows to aggregate and page through.
const fixtureSQL = `
CREATE TABLE types (
	id int PRIMARY KEY,
	i2 int2, i4 int4, i8 int8, num numeric(12,2), f4 float4, f8 float8,
	t text, vc varchar(10), bp char(3), b bool, d date, ts timestamp(3), tstz timestamptz,
	iv interval, u uuid, j json, jb jsonb, by bytea, ia int4[], ta text[], ip inet, tm time
);
INSERT INTO types VALUES
	(1, 1, 2, 3, 12.34, 1.5, 2.25, 'hello', 'short', 'ab', true, '2024-01-31', '2024-01-31 12:34:56.789',
	 '2024-01-31 12:34:56.789+01', '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '{"a": [1, 2]}', '{"b": {"c": null}}', '\x00ff10', '{1,NULL,3}', '{"x","y z",NULL}', '192.168.0.1/24', '23:59:59.999'),
	(2, -32768, -2147483648, -9223372036854775808, -9999999999.99, 'NaN', '-Infinity', 'ünïcödé ✓ ''q'' "d"', '', '   ',
	 false, 'infinity', '1999-12-31 23:59:59', '1970-01-01 00:00:00+00', '-1 mons -2 days',
	 '00000000-0000-0000-0000-000000000000', '[]', '[]', '\x', '{}', '{}', '::1', '00:00'),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL);
CREATE TABLE items (
	id int PRIMARY KEY,
	category text NOT NULL,
	amount numeric(12,2),
	qty int,
	created_at timestamptz NOT NULL
);
INSERT INTO items
SELECT g, (ARRAY['books','games','music','tools'])[1 + g % 4], round((g * 7.31) % 500, 2), g % 13,
	timestamptz '2024-01-01 00:00:00+00' + (g * interval '37 minutes')
FROM generate_series(1, 1000) g;
GRANT SELECT ON types, items TO PUBLIC;
ANALYZE types, items;
`

// writeCert makes a self-signed certificate for 127.0.0.1 and localhost.
func writeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "pgrollup-e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	env.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	env.tlsCert = filepath.Join(env.tmp, "server.crt")
	env.tlsKey = filepath.Join(env.tmp, "server.key")
	if err := os.WriteFile(env.tlsCert, env.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(env.tlsKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// proxyOptions varies the proxy's configuration between instances.
type proxyOptions struct {
	TLS       bool
	Cleartext string // auth.cleartext_without_tls; empty: loopback
}

// proxyProc is one running pgrollup subprocess.
type proxyProc struct {
	name   string
	cmd    *exec.Cmd
	host   string
	port   int
	admin  string // host:port of the admin HTTP listener
	log    *syncBuffer
	exited chan struct{}
	err    error // the process's exit error, valid after exited is closed
}

func (p *proxyProc) addr() string { return net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

// DSN returns a URL for user on database through this proxy, without TLS.
func (p *proxyProc) DSN(user, database string) string {
	return dsn(p.host, p.port, user, passwords[user], database, "disable")
}

func dsn(host string, port int, user, password, database, sslmode string) string {
	u := fmt.Sprintf("postgres://%s@%s/%s?sslmode=%s", user, net.JoinHostPort(host, strconv.Itoa(port)), database, sslmode)
	if password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=%s", user, urlEscape(password), net.JoinHostPort(host, strconv.Itoa(port)), database, sslmode)
	}
	return u
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// directDSN returns a URL for user on database straight to Postgres.
func directDSN(user, database string) string {
	return dsn(env.pg.Host, env.pg.Port, user, passwords[user], database, "disable")
}

// target is one side of a differential comparison.
type target struct {
	name string // "direct" or "proxy"
	host string
	port int
}

func (tg target) DSN(user, database string) string {
	return dsn(tg.host, tg.port, user, passwords[user], database, "disable")
}

func (tg target) addr() string { return net.JoinHostPort(tg.host, strconv.Itoa(tg.port)) }

// targets returns Postgres itself and the main proxy, in that order.
func targets() []target {
	return []target{
		{name: "direct", host: env.pg.Host, port: env.pg.Port},
		{name: "proxy", host: env.proxy.host, port: env.proxy.port},
	}
}

func freePort() (int, error) { return freeport.Port() }

// startProxy writes a config for one pgrollup instance, starts it and waits for /readyz.
func startProxy(ctx context.Context, name string, opts proxyOptions) (*proxyProc, error) {
	dir := filepath.Join(env.tmp, "proxy-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cleartext := opts.Cleartext
	if cleartext == "" {
		cleartext = "loopback"
	}
	cfg := map[string]any{
		"listen":    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"warehouse": map[string]any{"dsn": env.pg.DSN(dbMain)},
		"data_dir":  filepath.Join(dir, "data"),
		"storage":   map[string]any{"url": "file://" + filepath.Join(dir, "data", "rollups")},
		"admin": map[string]any{
			"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
			"token":  adminTok,
		},
		"auth": map[string]any{"cleartext_without_tls": cleartext},
		// Small, so that the oversized-message test needs only a couple of MB.
		"max_message_bytes": "1MB",
		// Continuous verification would add executor work of its own to
		// what the tests count (verify_test.go tests it).
		"routing": map[string]any{"verify_fraction": 0},
	}
	if opts.TLS {
		cfg["tls"] = map[string]any{"cert_file": env.tlsCert, "key_file": env.tlsKey}
	}
	if v := os.Getenv("PGROLLUP_TEST_EVENT_LOOP"); v != "" {
		cfg["event_loop"] = v != "0" // the default is on
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgFile, text, 0o600); err != nil {
		return nil, err
	}
	p := &proxyProc{
		name:   name,
		host:   "127.0.0.1",
		port:   port,
		admin:  net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		log:    &syncBuffer{},
		exited: make(chan struct{}),
	}
	return p.start(ctx, cfgFile, text, "debug")
}

// start runs the proxy on cfgFile (whose text goes into error messages) at
// the given log level and waits for /readyz.
func (p *proxyProc) start(ctx context.Context, cfgFile string, text []byte, logLevel string) (*proxyProc, error) {
	p.cmd = exec.Command(env.bin, "serve", "--config", cfgFile, "--log-level", logLevel)
	p.cmd.Dir = filepath.Dir(cfgFile)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	// Only our own environment, minus PG* variables that could redirect the proxy.
	p.cmd.Env = cleanEnv()
	// If the test binary dies (a timeout panic), the proxy must not outlive it.
	p.cmd.SysProcAttr = dieWithParent()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("pgrollup (%s) exited before it was ready: %v\nconfig:\n%s\nlog:\n%s", p.name, p.err, text, p.log.Bytes())
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if code, _, err := p.adminGet("/readyz"); err == nil && code == http.StatusOK {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("pgrollup (%s) not ready after 60s (GET /readyz)\nconfig:\n%s\nlog:\n%s", p.name, text, p.log.Bytes())
		}
	}
}

// adminGet fetches a path from the proxy's admin listener, with the bearer token.
func (p *proxyProc) adminGet(path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+p.admin+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminTok)
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// stop sends SIGTERM and waits for the exit; an error means a non-zero exit or a hang.
func (p *proxyProc) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("had already exited: %v", p.err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("still running %s after SIGTERM; killed", timeout)
	}
}

func (p *proxyProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// cleanEnv is the environment for subprocesses, without PG* variables so that
// nothing from the developer's shell redirects a client.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// libpqEnv is the environment that points a libpq client (psql, pgbench) at tg.
func libpqEnv(tg target, user, database string) []string {
	return cleanEnv(
		"PGHOST="+tg.host,
		"PGPORT="+strconv.Itoa(tg.port),
		"PGUSER="+user,
		"PGPASSWORD="+passwords[user],
		"PGDATABASE="+database,
		"PGSSLMODE=disable",
		"PGCONNECT_TIMEOUT=10",
		"PGTZ=UTC",
		"LC_ALL=C",
		"LANG=C",
	)
}

// connect opens a pgx connection or fails the test.
func connect(t *testing.T, ctx context.Context, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// superConn opens a superuser connection straight to Postgres, for checks
// that must not go through the proxy (pg_stat_activity, setup).
func superConn(t *testing.T, ctx context.Context, database string) *pgx.Conn {
	t.Helper()
	return connect(t, ctx, env.pg.DSN(database))
}

// waitForActivity polls pg_stat_activity until a query matching pattern runs.
func waitForActivity(ctx context.Context, super *pgx.Conn, pattern string) error {
	for {
		var n int
		err := super.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()`, pattern).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no active query like %q: %w", pattern, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for a subprocess writer and a test reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func tail(b []byte, lines int) []byte {
	parts := bytes.Split(b, []byte("\n"))
	if len(parts) > lines {
		parts = append([][]byte{[]byte(fmt.Sprintf("... (%d earlier lines)", len(parts)-lines))}, parts[len(parts)-lines:]...)
	}
	return bytes.Join(parts, []byte("\n"))
}

// requireSame fails with a readable diff when the proxy's rendering differs from Postgres's.
func requireSame(t *testing.T, what, direct, proxy string) {
	t.Helper()
	if direct == proxy {
		return
	}
	t.Errorf("%s: pgrollup differs from Postgres:\n%s", what, lineDiff(direct, proxy))
}

// lineDiff shows the first differing lines with some context.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	var out strings.Builder
	from := max(0, i-3)
	fmt.Fprintf(&out, "first difference at line %d (direct has %d lines, proxy %d)\n", i+1, len(al), len(bl))
	for j := from; j < i; j++ {
		fmt.Fprintf(&out, "  %s\n", clip(al[j]))
	}
	for j := i; j < min(len(al), i+8); j++ {
		fmt.Fprintf(&out, "- %s\n", clip(al[j]))
	}
	for j := i; j < min(len(bl), i+8); j++ {
		fmt.Fprintf(&out, "+ %s\n", clip(bl[j]))
	}
	if i < len(al) && i < len(bl) {
		// Long lines: show where inside the line they part.
		x, y := al[i], bl[i]
		k := 0
		for k < len(x) && k < len(y) && x[k] == y[k] {
			k++
		}
		lo := max(0, k-80)
		fmt.Fprintf(&out, "line %d differs at byte %d:\n- ...%s\n+ ...%s\n", i+1, k, clip(x[lo:]), clip(y[lo:]))
	}
	return out.String()
}

// clip keeps a diff readable when a line holds a large value.
func clip(s string) string {
	if len(s) > 400 {
		return s[:400] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// errorText renders an error, reducing a Postgres error to its fields so that
// a wrapper mentioning the port does not make two equal errors differ.
func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErrorText(pgErr)
	}
	return "non-Postgres error: " + err.Error()
}
