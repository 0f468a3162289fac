package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// configDoc is the reference of every key, checked here against the structs.
const configDoc = "../docs/configuration.md"

// listIndex is a list index in a field path, tables[0].name: the key is tables[].name.
var listIndex = regexp.MustCompile(`\[\d+\]`)

// docKey is one row of a table in configDoc.
type docKey struct {
	section string // the "## " heading the row is under
	cells   []string
}

// readDoc returns configDoc, and its table rows whose first cell is one
// `backticked` name, by that name.
func readDoc(t *testing.T) (string, map[string]docKey) {
	t.Helper()
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docKey{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := tableCells(line)
		name, ok := backticked(cells[0])
		if !ok {
			t.Errorf("%s: the first cell of %q is not one `name`", configDoc, line)
			continue
		}
		if _, dup := rows[name]; dup {
			t.Errorf("%s: %s is documented twice", configDoc, name)
		}
		rows[name] = docKey{section: section, cells: cells}
	}
	return string(data), rows
}

// tableCells splits a Markdown table row on the pipes not escaped as \|.
func tableCells(line string) []string {
	var cells []string
	var cell strings.Builder
	line = strings.TrimSpace(line)
	for i := 1; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return cells
}

func backticked(cell string) (string, bool) {
	s, ok := strings.CutPrefix(cell, "`")
	s, ok2 := strings.CutSuffix(s, "`")
	return s, ok && ok2 && s != "" && !strings.Contains(s, "`")
}

// keyPaths lists the keys of t's yaml fields as the config file writes them, a
// list's elements as name[]: only the keys that hold values, not the blocks.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for name, i := range yamlFields(t) {
		ft, path := t.Field(i).Type, prefix+name
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), path+"[].")...)
		default:
			out = append(out, path)
		}
	}
	sort.Strings(out)
	return out
}

// valueAt is the field at key path (list elements: the first).
func valueAt(c *Config, path string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(path, ".") {
		name, list := strings.CutSuffix(part, "[]")
		v = v.Field(yamlFields(v.Type())[name])
		if list {
			v = v.Index(0)
		}
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
	}
	return v
}

// TestConfigDocKeys checks docs/configuration.md against the structs: every
// key documented once, no key that does not exist, and each default the one
// Load applies. A default is "required" (validation reports the key when it
// is missing), "empty" or "none" (no value), or one `value`, in which <key>
// stands for that key's value and paths are relative to the config file.
func TestConfigDocKeys(t *testing.T) {
	_, rows := readDoc(t)
	keys := keyPaths(reflect.TypeFor[Config](), "")
	documented := map[string]bool{}
	for name, r := range rows {
		if r.section == "Keys" {
			documented[name] = true
		}
	}
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("%s: key %s is not documented under Keys", configDoc, k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("%s documents %s, which is not a key of the config structs", configDoc, k)
	}

	// What an empty file with one table, join, rollup, build_range and lambda gets.
	base := t.TempDir()
	c := &Config{Tables: []Table{{Joins: []Join{{}}}}, Rollups: []Rollup{{BuildRange: &BuildRange{}, Lambda: &Lambda{}}}}
	applyDefaults(c, nil)
	resolvePaths(c, base)
	missing := map[string]bool{}
	for _, e := range c.validate() {
		if strings.HasPrefix(e.Msg, "required") {
			missing[listIndex.ReplaceAllString(e.Field, "[]")] = true
		}
	}
	actual := func(k string) string {
		v := valueAt(c, k)
		if v.IsZero() && v.Kind() != reflect.Bool {
			return ""
		}
		return strings.ReplaceAll(fmt.Sprint(v.Interface()), base, ".")
	}
	for _, k := range keys {
		r, ok := rows[k]
		if !ok {
			continue // reported above
		}
		if len(r.cells) != 3 {
			t.Errorf("%s: the row of %s does not have the three cells key, default, effect", configDoc, k)
			continue
		}
		got, cell := actual(k), r.cells[1]
		if missing[k] && cell != "required" {
			t.Errorf("%s: %s is required, documented with default %q", configDoc, k, cell)
		}
		switch cell {
		case "required":
			if got != "" || !missing[k] {
				t.Errorf("%s: %s is documented as required, but it defaults to %q or validation does not require it", configDoc, k, got)
			}
			continue
		case "empty", "none":
			if got != "" {
				t.Errorf("%s: %s is documented without a default, but it defaults to %q", configDoc, k, got)
			}
			continue
		}
		want, ok := backticked(cell)
		if !ok {
			t.Errorf("%s: the default of %s, %q, is not required, empty, none or one `value`", configDoc, k, cell)
			continue
		}
		want = regexp.MustCompile(`<([a-z_.]+)>`).ReplaceAllStringFunc(want, func(m string) string {
			return actual(m[1 : len(m)-1])
		})
		if got != want {
			t.Errorf("%s: %s is documented with default %s, but it defaults to %q", configDoc, k, cell, got)
		}
	}
}

// TestConfigDocEnvironment checks the documented environment variables
// against the ones Load reads.
func TestConfigDocEnvironment(t *testing.T) {
	_, rows := readDoc(t)
	documented := map[string]string{}
	for name, r := range rows {
		if r.section == "Environment variables" {
			documented[name], _ = backticked(r.cells[len(r.cells)-1])
		}
	}
	for _, o := range envOverrides {
		if documented[o.name] != o.path {
			t.Errorf("%s: %s replaces %s, documented as %q", configDoc, o.name, o.path, documented[o.name])
		}
		delete(documented, o.name)
	}
	for name := range documented {
		t.Errorf("%s documents %s, which pgrollup does not read", configDoc, name)
	}
}

// TestConfigDocExample loads the full example and checks that it sets every key.
func TestConfigDocExample(t *testing.T) {
	doc, _ := readDoc(t)
	_, after, _ := strings.Cut(doc, "## A full example")
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, found := strings.Cut(block, "```")
	if !found {
		t.Fatalf("%s: no yaml block under \"A full example\"", configDoc)
	}
	c, err := ParseWithEnv([]byte(block), filepath.Join(t.TempDir(), "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s: the full example does not load:\n%v", configDoc, err)
	}
	set := map[string]bool{}
	for p := range c.src.lines {
		set[listIndex.ReplaceAllString(p, "[]")] = true
	}
	for _, k := range keyPaths(reflect.TypeFor[Config](), "") {
		if !set[k] {
			t.Errorf("%s: the full example does not set %s", configDoc, k)
		}
	}
}
