package benchkit

import (
	"fmt"
	"strings"
	"time"
)

// Step prints the start of a step of a command: "==> " and the message.
func Step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

// Done prints a result of the current step, indented under it.
func Done(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

// Since is the time since t, to the hundredth of a second, for progress lines.
func Since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

// FirstLine is the first line of s without its surrounding white space,
// with " ..." when more lines follow: a statement or a failure in one
// line of a message.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// Indent indents every line of s by four spaces, without a final newline:
// a config, a statement or a program's output under a progress line.
func Indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
