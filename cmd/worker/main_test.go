package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out); code != 2 {
		t.Errorf("--help: exit %d, want 2", code)
	}
	for _, want := range []string{"Usage:", "  -admin-listen string", "  -config string", "  -ack-wait duration"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not print %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"--config", "x.yaml", "extra"}, &out); code != 2 || !strings.Contains(out.String(), `unexpected argument "extra"`) {
		t.Errorf("a stray argument: exit %d\n%s", code, out.String())
	}
}

func TestNeedsNATSURL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgrollup.yaml")
	y := fmt.Sprintf("warehouse: {dsn: \"postgres://nobody@127.0.0.1:1/none\"}\ndata_dir: %q\n", dir)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run([]string{"--config", path}, &out); code != 1 || !strings.Contains(out.String(), "nats.url is empty") {
		t.Errorf("exit %d\n%s", code, out.String())
	}
}
