package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdviseArguments: bad arguments, a config that does not load and an
// admin API that refuses the token each exit 1 with a message, and nothing
// on stdout.
func TestAdviseArguments(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "pgrollup.yaml")
	if err := os.WriteFile(cfg, []byte("warehouse:\n  dsn: postgres://svc@127.0.0.1:1/shop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "missing or wrong admin token", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--max", "0"}, "usage: pgrollup advise"},
		{[]string{"extra"}, "usage: pgrollup advise"},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, "missing.yaml"},
		{[]string{"--config", cfg, "--admin", "ftp://x"}, "--admin"},
		{[]string{"--config", cfg, "--admin", refusing.URL, "--token", "wrong"}, "pass --token"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"advise"}, c.args...), &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			if stdout.Len() != 0 || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stdout %q, stderr %q; want %q in stderr", stdout.String(), stderr.String(), c.want)
			}
		})
	}
}
