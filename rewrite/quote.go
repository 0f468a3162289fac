package rewrite

import "strings"

// quoteIdent quotes an identifier for DuckDB (and Postgres): always quoted, so
// no name from a config or a query can change the statement's structure.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes a string literal. DuckDB, like Postgres with
// standard_conforming_strings, treats backslashes literally in '...'.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
