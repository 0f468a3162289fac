package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgrollup/pgrollup/internal/freeport"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// EnvTestDSN names the environment variable that points Start at an existing server.
const EnvTestDSN = "PGROLLUP_TEST_DSN"

// serverPackageHint is appended to every "binaries missing" error so that the
// reader knows what to install without reading this code.
const serverPackageHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql) " +
	"or set " + EnvTestDSN + " to a postgres:// URL of an existing server"

// Options configures a throw-away cluster.
type Options struct {
	// HBA holds extra pg_hba.conf lines, placed before the defaults so that they win.
	HBA []string
	// Config holds extra postgresql.conf settings; they override the package's defaults.
	Config map[string]string
	// Log receives the server's log lines as they are written; nil discards them.
	// The log file stays in Dir while the cluster runs (see ServerLog).
	Log io.Writer
}

// Cluster is a running throw-away cluster, or an existing server named by PGROLLUP_TEST_DSN.
type Cluster struct {
	Host          string // TCP host clients connect to (127.0.0.1)
	Port          int    // TCP port
	Dir           string // temporary directory: data/, the unix socket and server.log; empty for an external server
	SuperUser     string
	SuperPassword string
	BinDir        string // directory of the server binaries used; empty for an external server
	External      bool   // true when the cluster came from PGROLLUP_TEST_DSN and is not ours to stop

	externalURL *url.URL // the PGROLLUP_TEST_DSN URL, when External
	asUser      *osUser  // non-nil when commands run as the postgres OS user
	stopOnce    sync.Once
	stopErr     error
	tailStop    chan struct{}
	tailDone    chan struct{}
	dog         *watchdog // stops the server if this process dies without Stop

	mu     sync.Mutex
	halted bool // stopped by Halt, to be started again by Resume
}

type osUser struct {
	name     string
	uid, gid int
}

// Start starts a new cluster, or returns the server named by PGROLLUP_TEST_DSN.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if dsn := os.Getenv(EnvTestDSN); dsn != "" {
		return external(dsn)
	}
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	var runAs *osUser
	if os.Geteuid() == 0 {
		runAs, err = lookupPostgresUser()
		if err != nil {
			return nil, err
		}
	}
	// A port chosen here may be taken by someone else before the postmaster binds
	// it; a few attempts make that race harmless.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := start(ctx, opts, binDir, runAs)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port already in use")

func start(ctx context.Context, opts Options, binDir string, runAs *osUser) (_ *Cluster, err error) {
	dir, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{
		Host:      "127.0.0.1",
		Dir:       dir,
		SuperUser: "postgres",
		BinDir:    binDir,
		asUser:    runAs,
	}
	defer func() {
		if err != nil {
			c.cleanupFailedStart()
		}
	}()
	// The unix socket path is limited to 107 bytes by the kernel.
	if n := len(filepath.Join(dir, ".s.PGSQL.65535")); n > 107 {
		return nil, fmt.Errorf("pgcluster: temporary directory %s is too long for a unix socket path (%d bytes); set TMPDIR to a shorter directory", dir, n)
	}
	if runAs != nil {
		if err := os.Chown(dir, runAs.uid, runAs.gid); err != nil {
			return nil, fmt.Errorf("pgcluster: giving %s to the %s user: %w", dir, runAs.name, err)
		}
	}
	pw, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	c.SuperPassword = pw
	pwFile := filepath.Join(dir, "pwfile")
	if err := c.writeOwned(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	out, err := c.run(ctx, filepath.Join(binDir, "initdb"),
		"-D", dataDir, "-U", c.SuperUser, "--pwfile="+pwFile,
		"-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "--no-instructions")
	if err != nil {
		hint := ""
		if runAs != nil {
			hint = fmt.Sprintf(" (initdb runs as the %s OS user: it needs to reach %s)", runAs.name, dir)
		}
		return nil, fmt.Errorf("pgcluster: initdb failed%s: %w\n%s", hint, err, out)
	}
	_ = os.Remove(pwFile)

	if err := c.prependHBA(dataDir, opts.HBA); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.Port = port
	if err := c.appendConfig(dataDir, port, opts.Config); err != nil {
		return nil, err
	}

	logFile := c.logPath()
	out, err = c.run(ctx, filepath.Join(binDir, "pg_ctl"),
		"-D", dataDir, "-l", logFile, "-w", "-t", "60", "start")
	if err != nil {
		logText, _ := os.ReadFile(logFile)
		if bytes.Contains(logText, []byte("Address already in use")) {
			return nil, fmt.Errorf("pgcluster: pg_ctl start on port %d: %w", port, errPortInUse)
		}
		return nil, fmt.Errorf("pgcluster: pg_ctl start failed: %w\n%s\nserver log:\n%s", err, out, logText)
	}
	if err := c.startWatchdog(); err != nil {
		return nil, fmt.Errorf("pgcluster: starting the clean-up watchdog: %w", err)
	}
	if opts.Log != nil {
		c.tailStop = make(chan struct{})
		c.tailDone = make(chan struct{})
		go c.tail(logFile, opts.Log)
	}
	return c, nil
}

// DSN returns the superuser's URL for database over TCP.
func (c *Cluster) DSN(database string) string {
	return c.DSNFor(c.SuperUser, c.SuperPassword, database)
}

// NewDatabase creates the database name afresh (dropping one of that name
// first), runs stmts in it, and returns the superuser's URL for it.
func (c *Cluster) NewDatabase(ctx context.Context, name string, stmts ...string) (string, error) {
	return c.NewLocaleDatabase(ctx, name, Locale{}, stmts...)
}

// Locale is the default collation CREATE DATABASE gives a database.
type Locale struct {
	// LibC is the libc locale (LOCALE), such as "en_US.UTF-8"; "" keeps the
	// template's, or "C" under ICU. The operating system must have it
	// (scripts/deps.sh generates en_US.UTF-8); Postgres loads it when the
	// database is created, so a running cluster needs no restart.
	LibC string
	// ICU, when set, makes ICU the locale provider with this locale, such as
	// "en-US".
	ICU string
}

// clause is the CREATE DATABASE options for l ("" for the template's).
func (l Locale) clause() string {
	if l.LibC == "" && l.ICU == "" {
		return ""
	}
	s := " TEMPLATE template0 ENCODING 'UTF8'"
	libc := l.LibC
	if l.ICU != "" {
		s += " LOCALE_PROVIDER icu ICU_LOCALE " + sqlquote.Literal(l.ICU)
		if libc == "" {
			libc = "C"
		}
	}
	return s + " LOCALE " + sqlquote.Literal(libc)
}

// NewLocaleDatabase is NewDatabase with the default collation loc.
func (c *Cluster) NewLocaleDatabase(ctx context.Context, name string, loc Locale, stmts ...string) (string, error) {
	admin, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	for _, s := range []string{"DROP DATABASE IF EXISTS " + sqlquote.Ident(name) + " WITH (FORCE)", "CREATE DATABASE " + sqlquote.Ident(name) + loc.clause()} {
		if _, err := admin.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
	}
	dsn := c.DSN(name)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
	}
	return dsn, nil
}

// DSNFor returns a URL for user (with password, unless empty) and database over TCP.
func (c *Cluster) DSNFor(user, password, database string) string {
	if c.externalURL != nil {
		u := *c.externalURL
		if password != "" {
			u.User = url.UserPassword(user, password)
		} else {
			u.User = url.User(user)
		}
		u.Path = "/" + database
		u.RawPath = ""
		return u.String()
	}
	u := url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// SocketDir is the directory holding the cluster's unix socket (local connections are trusted).
// It is empty for an external server.
func (c *Cluster) SocketDir() string { return c.Dir }

// ServerLog returns what the server has logged so far; useful in a failing test's output.
func (c *Cluster) ServerLog() ([]byte, error) {
	if c.External {
		return nil, errors.New("pgcluster: the log of an external server is not available")
	}
	return os.ReadFile(c.logPath())
}

// Stop shuts the cluster down (pg_ctl stop -m fast) and removes Dir. It is
// idempotent, and does nothing for an external server.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.External {
			return
		}
		// Generous timeout: a hung stop must not hang the test binary forever.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.mu.Lock()
		halted := c.halted
		c.mu.Unlock()
		var out []byte
		var err error
		if !halted {
			out, err = c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop")
		}
		c.stopTail()
		if err != nil {
			// Keep Dir: its log explains the failure, and the server may still run from it.
			c.stopErr = fmt.Errorf("pgcluster: pg_ctl stop failed (directory %s kept): %w\n%s", c.Dir, err, out)
			return
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			c.stopErr = fmt.Errorf("pgcluster: %w", err)
		}
		if c.dog != nil {
			c.dog.release()
		}
	})
	return c.stopErr
}

// Halt shuts the server down as an administrator would (pg_ctl stop -m
// fast: every session is terminated with "terminating connection due to
// administrator command", new ones are refused), keeping its directory, so
// that Resume starts it again on the same port: an outage of the warehouse,
// for tests and benchmarks. An external server cannot be halted.
func (c *Cluster) Halt(ctx context.Context) error {
	if c.External {
		return errors.New("pgcluster: an external server (" + EnvTestDSN + ") cannot be halted")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		return nil
	}
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out)
	}
	c.halted = true
	return nil
}

// Resume starts a server Halt stopped, and waits until it accepts
// connections.
func (c *Cluster) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.halted {
		return nil
	}
	out, err := c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", filepath.Join(c.Dir, "data"), "-l", c.logPath(), "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %w\n%s", err, out)
	}
	c.halted = false
	return nil
}

func (c *Cluster) logPath() string { return filepath.Join(c.Dir, "server.log") }

// cleanupFailedStart stops a server that might have come up and removes Dir.
func (c *Cluster) cleanupFailedStart() {
	if c.dog != nil {
		defer c.dog.release()
	}
	dataDir := filepath.Join(c.Dir, "data")
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _ = c.run(ctx, filepath.Join(c.BinDir, "pg_ctl"), "-D", dataDir, "-m", "immediate", "-w", "stop")
		cancel()
	}
	_ = os.RemoveAll(c.Dir)
}

// run executes a server binary, as the postgres OS user when we are root.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if c.asUser != nil {
		cmd = asUserCommand(ctx, c.asUser.name, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Dir = c.Dir
	// pg_ctl start leaves the postmaster holding inherited descriptors; with
	// pipes, Wait would block until the server exits, so collect output via a file.
	f, err := os.CreateTemp("", "pgcluster-out-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return out, runErr
}

func asUserCommand(ctx context.Context, userName, name string, args ...string) *exec.Cmd {
	if p, err := exec.LookPath("runuser"); err == nil {
		return exec.CommandContext(ctx, p, append([]string{"-u", userName, "--", name}, args...)...)
	}
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		quoted = append(quoted, shellQuote(a))
	}
	return exec.CommandContext(ctx, "su", userName, "-s", "/bin/sh", "-c", "exec "+strings.Join(quoted, " "))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeOwned writes a file that the postgres OS user must be able to read.
func (c *Cluster) writeOwned(path string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if c.asUser != nil {
		if err := os.Chown(path, c.asUser.uid, c.asUser.gid); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// prependHBA puts the caller's lines first: pg_hba.conf is matched top to bottom.
func (c *Cluster) prependHBA(dataDir string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	path := filepath.Join(dataDir, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("# added by pgcluster\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("\n")
	b.Write(old)
	return c.writeOwned(path, b.Bytes(), 0o600)
}

// defaultConfig trades durability for speed: the data is thrown away anyway.
var defaultConfig = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"logging_collector":  "off",
	"log_min_messages":   "warning",
	"shared_buffers":     "32MB",
	"max_wal_size":       "1GB",
	"checkpoint_timeout": "30min",
	"autovacuum_naptime": "10s",
}

func (c *Cluster) appendConfig(dataDir string, port int, extra map[string]string) error {
	path := filepath.Join(dataDir, "postgresql.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	var b bytes.Buffer
	b.Write(old)
	b.WriteString("\n# added by pgcluster\n")
	set := func(k, v string) {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(v, "'", "''"))
	}
	set("listen_addresses", c.Host)
	set("port", strconv.Itoa(port))
	set("unix_socket_directories", c.Dir)
	for _, m := range []map[string]string{defaultConfig, extra} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(k, m[k])
		}
	}
	return c.writeOwned(path, b.Bytes(), 0o600)
}

// tail copies new lines of the server log to w until Stop.
func (c *Cluster) tail(path string, w io.Writer) {
	defer close(c.tailDone)
	var off int64
	buf := make([]byte, 64<<10)
	copyNew := func() {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		for {
			n, err := f.ReadAt(buf, off)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				off += int64(n)
			}
			if err != nil || n == 0 {
				return
			}
		}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.tailStop:
			copyNew()
			return
		case <-t.C:
			copyNew()
		}
	}
}

func (c *Cluster) stopTail() {
	if c.tailStop != nil {
		close(c.tailStop)
		<-c.tailDone
	}
}

func external(dsn string) (*Cluster, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("pgcluster: %s must be a postgres:// URL, got %q", EnvTestDSN, redact(dsn))
	}
	c := &Cluster{External: true, externalURL: u, SuperUser: u.User.Username(), Host: u.Hostname()}
	c.SuperPassword, _ = u.User.Password()
	if c.SuperUser == "" {
		c.SuperUser = "postgres"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	c.Port = 5432
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("pgcluster: %s: bad port %q", EnvTestDSN, p)
		}
	}
	return c, nil
}

// redact hides a password in a URL-ish string before it goes into an error.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

// findBinDir locates a directory holding initdb, pg_ctl and postgres.
func findBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var fromConfig string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		fromConfig = strings.TrimSpace(string(out))
	}
	return pickBinDir(matches, fromConfig, hasServerBinaries)
}

// pickBinDir prefers the highest Debian-style version directory, then pg_config's.
func pickBinDir(candidates []string, fromConfig string, ok func(string) bool) (string, error) {
	sorted := append([]string(nil), candidates...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return versionLess(versionOf(sorted[j]), versionOf(sorted[i]))
	})
	if fromConfig != "" {
		sorted = append(sorted, fromConfig)
	}
	for _, d := range sorted {
		if ok(d) {
			return d, nil
		}
	}
	tried := "none found under /usr/lib/postgresql/*/bin"
	if len(sorted) > 0 {
		tried = "looked in " + strings.Join(sorted, ", ")
	}
	return "", fmt.Errorf("%w: no server binaries (initdb, pg_ctl, postgres) found (%s): %s", ErrNotInstalled, tried, serverPackageHint)
}

func hasServerBinaries(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf reads "15" or "9.6" from /usr/lib/postgresql/<version>/bin.
func versionOf(binDir string) []int {
	v := filepath.Base(filepath.Dir(binDir))
	var out []int
	for _, part := range strings.Split(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func lookupPostgresUser() (*osUser, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, so the server must run as the postgres OS user, which does not exist (%v): "+
			"it comes with the server package (Debian/Ubuntu: apt-get install postgresql), or run the tests as a normal user", ErrNotInstalled, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgcluster: postgres OS user has non-numeric ids %s:%s", u.Uid, u.Gid)
	}
	return &osUser{name: "postgres", uid: uid, gid: gid}, nil
}

func freePort() (int, error) {
	port, err := freeport.Port()
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %w", err)
	}
	return port, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	return hex.EncodeToString(b), nil
}
