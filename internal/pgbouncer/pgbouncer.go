// Package pgbouncer prepares PgBouncer for the benchmarks, the baseline
// pgrollup's passthrough and memory are measured against: its binary, its
// ini in session mode with SCRAM, the command that runs it, and starting it.
package pgbouncer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pgrollup/pgrollup/internal/proc"
)

// Options describe one PgBouncer in front of one database.
type Options struct {
	Bin        string // the pgbouncer binary (Find)
	Dir        string // where its ini, user list and log go
	Writer     string // who wrote the ini, for its first line
	Host       string // the database server
	ServerPort int
	Database   string
	User       string // the one user it knows, with Password
	Password   string
	Port       int // where it listens on 127.0.0.1
	MaxClients int
	// ServerIdleTimeout closes server connections idle this many seconds;
	// 0 keeps PgBouncer's default (600 s), under which a benchmark's runs
	// reuse the backends, warm, of the runs before.
	ServerIdleTimeout int
}

// Find returns the pgbouncer binary: flagValue when set, else from PATH,
// else Debian's /usr/sbin/pgbouncer.
func Find(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", errors.New("pgbouncer not found (Debian: apt-get install pgbouncer, or run scripts/deps.sh)")
}

func serverIdleTimeout(seconds int) string {
	if seconds <= 0 {
		return ""
	}
	return fmt.Sprintf("server_idle_timeout = %d\n", seconds)
}

// Command writes the ini and user list into o.Dir and returns the command
// that runs PgBouncer with them. PgBouncer refuses to run as root, so as
// root the command runs as the postgres OS user.
func Command(o Options) (*exec.Cmd, error) {
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer refuses to run as root and there is no postgres OS user to run it as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`; written by %s
[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = session
max_client_conn = %d
default_pool_size = %d
ignore_startup_parameters = extra_float_digits
logfile =
pidfile =
%s`, o.Writer, o.Database, o.Host, o.ServerPort, o.Database, o.Port, filepath.Join(o.Dir, "userlist.txt"), o.MaxClients+50, o.MaxClients+10, serverIdleTimeout(o.ServerIdleTimeout))
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  fmt.Sprintf("%q %q\n", o.User, o.Password),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	if cred != nil {
		for _, name := range []string{"", "pgbouncer.ini", "userlist.txt"} {
			if err := os.Chown(filepath.Join(o.Dir, name), int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
		// The postgres user must be able to reach the directory through its parent.
		if err := os.Chmod(filepath.Dir(o.Dir), 0o711); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(o.Bin, filepath.Join(o.Dir, "pgbouncer.ini"))
	cmd.Dir = o.Dir
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd, nil
}

// Start runs PgBouncer (Command) with its log in o.Dir and waits, for up to
// 15 seconds, until a session through it answers.
func Start(ctx context.Context, o Options) (*proc.Process, error) {
	cmd, err := Command(o)
	if err != nil {
		return nil, err
	}
	p, err := proc.Start("pgbouncer", filepath.Join(o.Dir, "pgbouncer.log"), cmd)
	if err != nil {
		return nil, err
	}
	dsn := url.URL{Scheme: "postgres", User: url.UserPassword(o.User, o.Password),
		Host: fmt.Sprintf("127.0.0.1:%d", o.Port), Path: "/" + o.Database, RawQuery: "sslmode=disable"}
	if err := proc.WaitSession(ctx, p, dsn.String(), 15*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}
