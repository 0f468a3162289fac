package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/config"
)

// TestConfigYAML: the config loads, with what it names and the rollups'
// files and the cache where the benchmarks' configs used to put them, with
// Go's profiles served or not.
func TestConfigYAML(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		testConfigYAML(t, pprof)
	}
}

func testConfigYAML(t *testing.T, pprof bool) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	text := Config{
		Writer: "TestConfigYAML", Listen: "127.0.0.1:7001", Admin: "127.0.0.1:7002",
		WarehouseDSN: "postgres://u:p@127.0.0.1:5432/db", DataDir: dataDir, Pprof: pprof,
	}.YAML("worker:\n  concurrency: 1\n")
	if !strings.HasPrefix(text, "# written by TestConfigYAML\n") {
		t.Fatalf("the config does not start with its writer:\n%s", text)
	}
	path := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, c := range []struct{ what, got, want string }{
		{"listen", cfg.Listen, "127.0.0.1:7001"},
		{"admin.listen", cfg.Admin.Listen, "127.0.0.1:7002"},
		{"warehouse.dsn", cfg.Warehouse.DSN, "postgres://u:p@127.0.0.1:5432/db"},
		{"data_dir", cfg.DataDir, dataDir},
		{"storage.url", cfg.Storage.URL, "file://" + filepath.Join(dataDir, "rollups")},
		{"worker.cache_dir", cfg.Worker.CacheDir, filepath.Join(dataDir, "cache")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if cfg.Admin.Pprof != pprof {
		t.Errorf("admin.pprof = %v, want %v", cfg.Admin.Pprof, pprof)
	}
	if cfg.Worker.Concurrency != 1 {
		t.Errorf("worker.concurrency = %d: the sections appended are lost", cfg.Worker.Concurrency)
	}
}

// TestStartPgrollup runs a stand-in for the binary that logs how it was
// started: `serve --config DIR/pgrollup.yaml` and the arguments given, in
// an environment without PGROLLUP_* variables, its output in
// DIR/pgrollup.log.
func TestStartPgrollup(t *testing.T) {
	t.Setenv("PGROLLUP_LISTEN", "0.0.0.0:1")
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-pgrollup")
	script := "#!/bin/sh\necho \"args: $*\"\necho \"config: $(head -1 \"$3\")\"\nenv | grep '^PGROLLUP_' || echo 'no PGROLLUP_ variables'\n"
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := StartPgrollup(bin, dir, "# the config\n", "--shutdown-timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited:
	case <-time.After(10 * time.Second):
		p.Stop(time.Second)
		t.Fatal("the stand-in did not exit")
	}
	if p.WaitErr != nil {
		t.Fatalf("the stand-in failed: %v\n%s", p.WaitErr, Tail(p.LogPath, 10))
	}
	log, err := os.ReadFile(filepath.Join(dir, "pgrollup.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := "args: serve --config " + filepath.Join(dir, "pgrollup.yaml") + " --shutdown-timeout 5s\nconfig: # the config\nno PGROLLUP_ variables\n"
	if string(log) != want {
		t.Fatalf("the stand-in logged:\n%s\nwant:\n%s", log, want)
	}
}
