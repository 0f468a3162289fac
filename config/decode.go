package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// source remembers where each field of a Config came from, so that validation, which runs
// on the decoded structs, can still point at the line a user has to fix.
type source struct {
	file   string
	lines  map[string]int    // field path -> line of its key (or list item)
	blank  map[string]bool   // keys present with a null or "" value
	failed map[string]bool   // fields that did not decode; validation stays quiet about them
	env    map[string]string // field path -> environment variable that overrode it
}

func newSource(file string) *source {
	if file == "" {
		file = "<config>"
	}
	return &source{
		file:   file,
		lines:  map[string]int{"": 1}, // until the document says where it starts
		blank:  map[string]bool{},
		failed: map[string]bool{},
		env:    map[string]string{},
	}
}

// line is the line of a field or, when the field is absent, of the closest enclosing
// field that is present, so "missing key" errors point into the right block.
func (s *source) line(path string) int {
	if s == nil {
		return 0
	}
	if s.env[path] != "" {
		return 0
	}
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// isSet reports whether the file or the environment gave the field a non-empty value; only
// unset fields get defaults, so an explicit "concurrency: 0" is reported instead of replaced.
func (s *source) isSet(path string) bool {
	if s == nil {
		return false
	}
	if s.env[path] != "" {
		return true
	}
	_, ok := s.lines[path]
	return ok && !s.blank[path]
}

// failedAt reports whether path or a field containing it did not decode.
func (s *source) failedAt(path string) bool {
	if s == nil {
		return false
	}
	for {
		if s.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// envName is the environment variable that set the field, if one did.
func (s *source) envName(path string) string {
	if s == nil {
		return ""
	}
	return s.env[path]
}

func (s *source) fileName() string {
	if s == nil {
		return "<config>"
	}
	return s.file
}

// parentPath strips the last ".key" or "[i]" from a field path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// maxNodes bounds alias expansion: a few kilobytes of YAML anchors can otherwise expand
// into millions of nodes, each validated with the SQL parser. Real configs have thousands.
const maxNodes = 200_000

// decoder fills a Config from a yaml.Node tree by hand instead of through yaml.v3's
// decoder, because that one stops at the first unknown key and does not say which field
// a type error belongs to.
type decoder struct {
	src      *source
	errs     Errors
	nodes    int
	visiting map[*yaml.Node]bool // alias targets being decoded, to catch cycles
}

func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.src.failed[path] = true
	d.errs = append(d.errs, Error{File: d.src.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// decodeYAML reads the single YAML document in data into cfg. ok is false when the
// document is unusable as a whole (broken YAML, not a mapping), so nothing else is checked.
func decodeYAML(data []byte, cfg *Config, src *source) (errs Errors, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true // an empty file is all defaults
		}
		return Errors{syntaxError(src.file, err)}, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return Errors{syntaxError(src.file, err)}, false
		}
		return Errors{{File: src.file, Line: next.Line, Msg: "only one YAML document is allowed"}}, false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, true
	}
	src.lines[""] = root.Line
	if root.Kind != yaml.MappingNode {
		return Errors{{File: src.file, Line: root.Line, Msg: "the config must be a mapping of settings, got " + describe(root)}}, false
	}
	d := &decoder{src: src, visiting: map[*yaml.Node]bool{}}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	return d.errs, d.nodes <= maxNodes
}

var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// syntaxError turns a yaml.v3 parse error into an Error. yaml.v3 omits the line for
// problems on the first line, so a missing line means line 1.
func syntaxError(file string, err error) Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return Error{File: file, Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v, recording problems under path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(path, n.Line, "too many nodes (aliases expand to more than %d)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, v, path)
		return
	}
	if isNull(n) {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(path, n.Line, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) alias(n *yaml.Node, v reflect.Value, path string) {
	target := n.Alias
	if target == nil || d.visiting[target] {
		d.fail(path, n.Line, "alias *%s refers to itself", n.Value)
		return
	}
	d.visiting[target] = true
	defer delete(d.visiting, target)
	d.value(target, v, path)
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, "want a mapping, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	// Merge keys (<<: *defaults) first, so explicit keys override them wherever they appear.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Tag == "!!merge" {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.fail(path, key.Line, "keys must be plain strings, got %s", describe(key))
			continue
		}
		p := joinPath(path, key.Value)
		idx, known := fields[key.Value]
		if !known {
			d.fail(p, key.Line, "unknown key%s", suggestion(key.Value, fields))
			continue
		}
		if first, dup := seen[key.Value]; dup {
			if path == "" && appendableKeys[key.Value] && val.Kind == yaml.SequenceNode {
				// A list appended to the file (pgrollup advise's rollups)
				// adds to the one before.
				d.appendSequence(val, v.Field(idx), p)
				continue
			}
			d.fail(p, key.Line, "duplicate key (first set at line %d)", first)
			continue
		}
		seen[key.Value] = key.Line
		d.src.lines[p] = key.Line
		if isNull(val) || (val.Kind == yaml.ScalarNode && val.Value == "" && val.Tag == "!!str") {
			d.src.blank[p] = true
		}
		f := v.Field(idx)
		f.SetZero() // an explicit key replaces a merged value entirely, as YAML merge keys do
		d.value(val, f, p)
	}
}

func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		for _, item := range n.Content {
			d.merge(item, v, path)
		}
		return
	}
	d.value(n, v, path)
}

// appendableKeys are the top-level lists that may be given more than once,
// each occurrence adding its items to the earlier ones: so that the output of
// pgrollup advise can be appended to a config that already has rollups.
var appendableKeys = map[string]bool{"tables": true, "rollups": true}

// appendSequence decodes the items of n after those v already holds.
func (d *decoder) appendSequence(n *yaml.Node, v reflect.Value, path string) {
	start := v.Len()
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, start+i)
		d.src.lines[p] = item.Line
		d.value(item, s.Index(i), p)
	}
	v.Set(reflect.AppendSlice(v, s))
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n.Line, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.src.lines[p] = item.Line
		if isNull(item) || (item.Kind == yaml.ScalarNode && item.Value == "") {
			d.src.blank[p] = true
		}
		d.value(item, s.Index(i), p)
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "want %s, got %s", kindName(v.Type()), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(path, n.Line, "want %s, got %s", kindName(v.Type()), quoteShort(n.Value))
		}
	default:
		d.fail(path, n.Line, "cannot decode into %s", v.Type()) // a field type this decoder lacks
	}
}

// yamlFields maps yaml key names to struct field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// describe names a node's kind without quoting its value: a value in the wrong place may be
// a secret (a DSN written directly under warehouse:), and it is not known as one yet.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	}
	return "a string"
}

// quoteShort quotes a value that should have been a number or boolean; long values are
// cut, since they are more likely text pasted into the wrong field than a typo.
func quoteShort(s string) string {
	const limit = 24
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Pointer:
		return "a mapping"
	}
	return t.String()
}

// suggestion names the closest known key when a key looks like a typo of one.
func suggestion(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(key, name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
