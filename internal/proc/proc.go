// Package proc holds what the commands that start pgrollup and its parts as
// processes share (the demo and the benchmarks): free ports, the
// environment to start them in, the processes themselves (process.go),
// waiting until they serve (wait.go, rollups.go), and the end of a log for
// an error message.
package proc

import (
	"bufio"
	"net"
	"os"
	"strings"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that nothing listens
// on now: a pgrollup's client and admin listeners. All n are held until
// the last is chosen, so that none is handed out twice.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

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
