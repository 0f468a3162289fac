// Package sqlquote quotes identifiers and string literals for the SQL that
// pgrollup generates, for Postgres and DuckDB alike (generated
// SQL quotes every identifier and literal; no user text is pasted into SQL).
//
// Identifiers are always quoted, so no name from a config or a statement can
// change a statement's structure or its case. Literals come in two forms:
// Literal is the standard one, for DuckDB and for Postgres sessions whose
// standard_conforming_strings pgrollup controls; EscapeLiteral reads the same
// whatever that setting is, for SQL run in a client's own session.
package sqlquote
