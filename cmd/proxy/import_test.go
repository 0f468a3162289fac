package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportExitCodes runs pgrollup import as the command line does: exit 0
// and a document when everything is translated or with --partial, 1 and
// nothing on stdout when something is not or the input is bad, 2 on bad
// arguments.
func TestImportExitCodes(t *testing.T) {
	td := filepath.Join("..", "..", "importer", "testdata")
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("cubes:\n  - name: o\n    sql_table: o\n    measures:\n      - name: m\n        type: mode\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // part of stdout; "" means stdout must be empty
		stderr string
	}{
		{"cube", []string{"import", "cube", filepath.Join(td, "cube", "orders.yml"), filepath.Join(td, "cube", "customers.yml")}, 0, "name: orders_by_status_country", "indexes are ignored"},
		{"lightdash", []string{"import", "lightdash", "--schema", "shop", filepath.Join(td, "lightdash", "schema.yml")}, 0, "table: shop.orders", ""},
		{"untranslated", []string{"import", "cube", filepath.Join(td, "cube", "untranslatable.yml")}, 1, "", "untranslatable.yml:32: cube events, pre-aggregation raw: not translated"},
		{"partial", []string{"import", "cube", "--partial", filepath.Join(td, "cube", "untranslatable.yml")}, 0, "name: events_by_kind", "untranslatable.yml:32:"},
		{"bad input", []string{"import", "cube", bad}, 1, "", `bad.yml:6: measure o.m: unknown measure type "mode"`},
		{"bad input partial", []string{"import", "cube", "--partial", bad}, 1, "rollups: []", "unknown measure type"},
		{"missing file", []string{"import", "cube", filepath.Join(td, "nowhere.yml")}, 1, "", "no such file"},
		{"no kind", []string{"import"}, 2, "", "usage: pgrollup import"},
		{"unknown kind", []string{"import", "looker", "x.yml"}, 2, "", "usage: pgrollup import"},
		{"no files", []string{"import", "lightdash"}, 2, "", "usage: pgrollup import"},
		{"schema is lightdash's", []string{"import", "cube", "--schema", "s", "x.yml"}, 2, "", "-schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, c.code, stderr.String())
			}
			if c.stdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout not empty:\n%s", stdout.String())
			}
			if !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
		})
	}
}
