package proc

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	var b strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(log, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := Tail(log, 2), "last lines of "+log+":\n    line 9\n    line 10"; got != want {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(empty, 5); got != "("+empty+" is empty)" {
		t.Fatalf("Tail of an empty file = %q", got)
	}
	if got := Tail(filepath.Join(dir, "missing"), 5); got != "" {
		t.Fatalf("Tail of a missing file = %q", got)
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("the free port %d cannot be listened on: %v", port, err)
	}
	l.Close()
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("PGROLLUP_LISTEN", "0.0.0.0:1")
	t.Setenv("PGROLLUP_KEEP_ME_NOT", "x")
	t.Setenv("OTHER_VAR", "kept")
	env := strings.Join(CleanEnv(), "\n")
	if strings.Contains(env, "PGROLLUP_") || !strings.Contains(env, "OTHER_VAR=kept") {
		t.Fatalf("CleanEnv = %s", env)
	}
}

func TestEnvWithout(t *testing.T) {
	t.Setenv("PGROLLUP_LISTEN", "0.0.0.0:1")
	t.Setenv("PGHOST", "elsewhere")
	t.Setenv("OTHER_VAR", "kept")
	for _, tc := range []struct {
		prefix     string
		gone, kept []string
	}{
		{"PGROLLUP_", []string{"PGROLLUP_LISTEN="}, []string{"PGHOST=elsewhere", "OTHER_VAR=kept"}},
		{"PG", []string{"PGROLLUP_LISTEN=", "PGHOST="}, []string{"OTHER_VAR=kept"}},
	} {
		env := "\n" + strings.Join(EnvWithout(tc.prefix), "\n")
		for _, g := range tc.gone {
			if strings.Contains(env, "\n"+g) {
				t.Errorf("EnvWithout(%q) has %s", tc.prefix, g)
			}
		}
		for _, k := range tc.kept {
			if !strings.Contains(env, "\n"+k) {
				t.Errorf("EnvWithout(%q) lacks %s", tc.prefix, k)
			}
		}
	}
}
