package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, located so that a user can jump to it.
type Error struct {
	File  string // the config file as the caller named it; "<config>" when parsed from memory
	Line  int    // 1-based; 0 when the value did not come from the file (an environment variable)
	Field string // path of the field, e.g. rollups[1].granularity (list indexes count from 0)
	Msg   string
}

// Error formats the problem the way compilers do, so editors and CI logs can link to it:
// "shop.yaml:23: rollups[1].granularity: unknown granularity ...".
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration. Loading reports all of them at once
// so that a user fixes a file in one round instead of one error per run.
type Errors []Error

// Error prints one problem per line, in file order.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// orNil avoids the typed-nil trap: an empty Errors stored in an error interface is not nil.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// sorted orders problems by line so the output reads top to bottom like the file.
// Problems without a line (environment overrides) come first.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// redacted replaces every secret in every message. Validation never quotes a secret on
// purpose; this is the guard against a message that quotes one by accident (a DSN the
// driver echoes, a YAML error that quotes a line).
func (es Errors) redacted(secrets []string) Errors {
	for i := range es {
		for _, s := range secrets {
			if s == "" {
				continue
			}
			es[i].Msg = strings.ReplaceAll(es[i].Msg, s, redactedMark)
			es[i].Field = strings.ReplaceAll(es[i].Field, s, redactedMark)
		}
	}
	return es
}

// redactedMark is what a secret looks like in messages; pgconn uses the same.
const redactedMark = "xxxxx"
