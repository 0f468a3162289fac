// Package proc holds what the commands that start pgrollup and its parts as
// processes share (the demo and the benchmarks): free ports, the
// environment to start them in, the processes themselves (process.go),
// waiting until they serve (wait.go, rollups.go), and the end of a log for
// an error message.
package proc

import (
	"bufio"
	"os"
	"strings"

	"github.com/pgrollup/pgrollup/internal/freeport"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now
// (freeport.Port).
func FreePort() (int, error) { return freeport.Port() }

// FreePorts returns n distinct TCP ports on 127.0.0.1 that nothing listens
// on now: a pgrollup's client and admin listeners (freeport.Ports).
func FreePorts(n int) ([]int, error) { return freeport.Ports(n) }

// CleanEnv is the environment without PGROLLUP_* variables, which would
// override a generated config (PGROLLUP_LISTEN, PGROLLUP_WAREHOUSE_DSN, ...).
func CleanEnv() []string { return EnvWithout("PGROLLUP_") }

// EnvWithout is the environment without the variables whose names start
// with prefix: "PG" leaves out libpq's (PGHOST, PGPASSWORD, ...) too.
func EnvWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// Tail returns the last n lines of a file, indented, for error messages.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "(" + path + " is empty)"
	}
	return "last lines of " + path + ":\n    " + strings.Join(lines, "\n    ")
}
