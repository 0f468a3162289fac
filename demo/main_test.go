package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

func loadDemoConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	o := options{listen: "127.0.0.1:7432", admin: "127.0.0.1:7480", cleartext: "loopback"}
	path := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(path, []byte(demoConfig(o, "postgres://postgres:secret@127.0.0.1:5432/shop", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the demo's config does not load: %v", err)
	}
	return cfg
}

// The dashboard shows what pgrollup does with statements it can answer, so
// every statement but the last must match a rollup (the last shows a
// passthrough), decided as `pgrollup explain` decides: from the config
// alone, in the demo's session zone.
func TestDashboardStatementsMatch(t *testing.T) {
	cfg := loadDemoConfig(t)
	if len(cfg.Rollups) != 4 {
		t.Errorf("the demo declares %d rollups, want 4", len(cfg.Rollups))
	}
	cat, err := rewrite.NewOfflineCatalog(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for i, st := range dashboard {
		tree, err := pg_query.Parse(st.sql)
		if err != nil {
			t.Fatalf("%s: %v", st.title, err)
		}
		d := rewrite.DecideAnalysis(rewrite.Analyze(tree), rewrite.Session{TimeZone: "UTC", Now: time.Now()}, cat)
		last := i == len(dashboard)-1
		switch {
		case !last && d.Outcome != rewrite.OutcomeRollup:
			t.Errorf("%s passes through: %s\n%s", st.title, d.Reason, st.sql)
		case last && d.Outcome == rewrite.OutcomeRollup:
			t.Errorf("%s, meant to show a passthrough, matches %s", st.title, d.Rollup)
		}
		for _, c := range d.Candidates {
			if c.Match {
				used[c.Rollup] = true
			}
		}
		if !strings.Contains(strings.ToUpper(st.sql), "ORDER BY") {
			t.Errorf("%s has no ORDER BY: its answers could not be compared row by row", st.title)
		}
	}
	for _, r := range cfg.Rollups {
		if !used[r.Name] {
			t.Errorf("no dashboard statement can use rollup %s", r.Name)
		}
	}
}

// docker compose serves the same rollups over the same data as make demo.
func TestComposeMatchesDemo(t *testing.T) {
	var demo map[string]any
	if err := yaml.Unmarshal([]byte(rollupsYAML), &demo); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"pgrollup.yaml", "pgrollup-s3.yaml"} {
		text, err := os.ReadFile(filepath.Join("..", "deploy", "pgrollup", file))
		if err != nil {
			t.Fatal(err)
		}
		var compose map[string]any
		if err := yaml.Unmarshal(text, &compose); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, key := range []string{"tables", "rollups"} {
			if !reflect.DeepEqual(demo[key], compose[key]) {
				t.Errorf("deploy/pgrollup/%s: %s differ from the demo's (demo/config.go)", file, key)
			}
		}
	}
	text, err := os.ReadFile(filepath.Join("..", "deploy", "postgres", "init", "01-shop.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(schemaSQL, ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" && !strings.Contains(string(text), stmt) {
			t.Errorf("deploy/postgres/init/01-shop.sql lacks the demo's\n%s", stmt)
		}
	}
	for _, gen := range []string{"setseed(0.4242)", "sqrt(random()) * interval '730 days'", "generate_series(1, 5000000)"} {
		if !strings.Contains(string(text), gen) {
			t.Errorf("deploy/postgres/init/01-shop.sql does not generate orders as the demo does: no %q", gen)
		}
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 5000000: "5,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		1500 * time.Millisecond: "1.50 s", 42 * time.Millisecond: "42 ms", 4200 * time.Microsecond: "4.2 ms",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := speedup(2*time.Second, 10*time.Millisecond); got != "200x" {
		t.Errorf("speedup = %q", got)
	}
	if got := speedup(15*time.Millisecond, 10*time.Millisecond); got != "1.5x" {
		t.Errorf("speedup = %q", got)
	}
}
