package sqlquote

import "strings"

// Ident quotes an identifier: always in double quotes, with every double
// quote doubled.
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Literal quotes a string literal in standard form: in single quotes, with
// every single quote doubled. DuckDB, like Postgres with
// standard_conforming_strings on (its default), reads backslashes in it
// literally.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// EscapeLiteral quotes a string as an escape-string literal (E'...'), with
// backslashes and single quotes doubled, which Postgres reads the same
// whatever the session's standard_conforming_strings.
func EscapeLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "E'" + strings.ReplaceAll(s, "'", "''") + "'"
}
