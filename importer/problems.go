package importer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Source is one input file: its name, as errors show it, and its contents.
type Source struct {
	Name string
	Data []byte
}

// Problem is one located message about the input: an error, an item left
// untranslated, or a note.
type Problem struct {
	File string
	Line int // 1-based; 0 when the whole file is meant
	Msg  string
}

// String formats the problem as compilers do, "file:line: message", so that
// editors and CI logs link to it.
func (p Problem) String() string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Msg
	}
	return p.File + ": " + p.Msg
}

// Errors is bad input: every problem found in the files, in the order found.
// pgrollup import prints nothing when there is one, unless --partial.
type Errors []Problem

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, p := range es {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// untranslatable is why one item has no pgrollup equivalent; the item is
// left out and reported, and the rest is translated.
type untranslatable struct{ msg string }

func (u *untranslatable) Error() string { return u.msg }

func skip(format string, args ...any) error {
	return &untranslatable{msg: fmt.Sprintf(format, args...)}
}

// badInput is an error in the input itself, such as a reference to a
// member that does not exist.
type badInput struct{ msg string }

func (b *badInput) Error() string { return b.msg }

// errReported stands for bad input already reported where it is defined:
// what uses it is left out without a second report.
var errReported = &badInput{msg: "reported above"}

func bad(format string, args ...any) error {
	return &badInput{msg: fmt.Sprintf(format, args...)}
}

// file reads one input file and collects what it finds about it.
type file struct {
	name string
	res  *Result
	errs *Errors
}

// errorf records bad input at n.
func (f *file) errorf(n *yaml.Node, format string, args ...any) {
	*f.errs = append(*f.errs, Problem{File: f.name, Line: lineOf(n), Msg: fmt.Sprintf(format, args...)})
}

// skipf records an item left untranslated at n.
func (f *file) skipf(n *yaml.Node, format string, args ...any) {
	f.res.Untranslated = append(f.res.Untranslated, Problem{File: f.name, Line: lineOf(n), Msg: fmt.Sprintf(format, args...)})
}

// notef records an item ignored on purpose at n.
func (f *file) notef(n *yaml.Node, format string, args ...any) {
	f.res.Notes = append(f.res.Notes, Problem{File: f.name, Line: lineOf(n), Msg: fmt.Sprintf(format, args...)})
}

// report files err at n: bad input as an error, anything else as an item
// left untranslated, prefixed with what was being translated.
func (f *file) report(n *yaml.Node, what string, err error) {
	if errors.Is(err, errReported) {
		return
	}
	var b *badInput
	if errors.As(err, &b) {
		f.errorf(n, "%s: %v", what, err)
		return
	}
	f.skipf(n, "%s: not translated: %v", what, err)
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// yamlLine finds the line in yaml.v3's syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+): `)

// parse reads src into its document node; a syntax error is recorded with
// its line and yields nil.
func parse(src Source, errs *Errors) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(src.Data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			line, _ = strconv.Atoi(msg[m[2]:m[3]])
			msg = msg[:m[0]] + msg[m[1]:]
		}
		*errs = append(*errs, Problem{File: src.Name, Line: line, Msg: "malformed YAML: " + msg})
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return resolve(doc.Content[0])
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// pair is one key of a mapping with its value.
type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs lists a mapping's keys in order; nil for anything else.
func pairs(n *yaml.Node) []pair {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, pair{key: n.Content[i].Value, k: n.Content[i], v: resolve(n.Content[i+1])})
	}
	return out
}

// get is the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	for _, p := range pairs(n) {
		if p.key == key {
			return p.v
		}
	}
	return nil
}

// items lists a sequence's elements; a missing node is an empty list.
func items(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
	}
	return out
}

// scalar is a scalar node's text, or "" for none.
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return strings.TrimSpace(n.Value)
}

// isKind reports whether n is absent or of kind k; otherwise it records an
// error naming what was expected.
func (f *file) isKind(n *yaml.Node, k yaml.Kind, what string) bool {
	if n == nil || n.Kind == k || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return true
	}
	want := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a value"}[k]
	f.errorf(n, "%s: want %s", what, want)
	return false
}

// stringList reads a list of names (a single name is a list of one).
func (f *file) stringList(n *yaml.Node, what string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if scalar(n) == "" {
			return nil
		}
		return []*yaml.Node{n}
	}
	if !f.isKind(n, yaml.SequenceNode, what) {
		return nil
	}
	var out []*yaml.Node
	for _, it := range items(n) {
		if it.Kind != yaml.ScalarNode || scalar(it) == "" {
			f.errorf(it, "%s: want a name", what)
			continue
		}
		out = append(out, it)
	}
	return out
}
