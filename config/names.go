package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// rollupName is deliberately narrower than a SQL identifier: rollup names end up in file
// paths, NATS subjects, KV keys and metric labels, where quotes and dots would need escaping.
var rollupName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// plainColumn is a column name without a qualifier or quotes (a lambda's id column).
var plainColumn = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// parseRelationName splits a table name into its identifiers the way Postgres reads
// them: schema.table or table, unquoted parts folded to lower case, "Quoted" parts kept
// as written. It exists so that public.Orders and public.orders are the same table here,
// as they are in the warehouse.
func parseRelationName(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty name")
	}
	var parts []string
	rest := s
	for {
		part, tail, err := cutIdentifier(rest)
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
		if tail == "" {
			break
		}
		if tail[0] != '.' {
			return nil, fmt.Errorf("unexpected %q", tail)
		}
		rest = tail[1:]
	}
	if len(parts) > 2 {
		return nil, errors.New("want table or schema.table")
	}
	return parts, nil
}

// cutIdentifier reads one identifier from the start of s and returns the rest.
func cutIdentifier(s string) (ident, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		return cutQuotedIdentifier(s)
	}
	end := 0
	for end < len(s) && isIdentChar(s[end], end == 0) {
		end++
	}
	if end == 0 {
		if s == "" {
			return "", "", errors.New("missing identifier after '.'")
		}
		return "", "", fmt.Errorf("unexpected %q (quote identifiers that are not letters, digits and underscores)", s)
	}
	return strings.ToLower(s[:end]), s[end:], nil
}

func cutQuotedIdentifier(s string) (ident, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", errors.New("empty quoted identifier")
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", errors.New("unterminated quoted identifier")
}

// isIdentChar follows Postgres's scanner: letters, underscore and non-ASCII bytes start
// an identifier; digits and $ may follow.
func isIdentChar(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c >= 0x80:
		return true
	case c >= '0' && c <= '9', c == '$':
		return !first
	}
	return false
}

// relationKey is the comparison key of a table name; names that do not parse compare as written.
func relationKey(s string) string {
	parts, err := parseRelationName(s)
	if err != nil {
		return s
	}
	return strings.Join(parts, ".")
}

// relation is a parsed table name, used to resolve column qualifiers such as customers.country.
type relation struct {
	name  string   // as written in the config, for messages
	parts []string // [schema,] table
}

// matches reports whether a column qualifier (already case-folded by the SQL parser)
// names this relation: "customers" matches public.customers, "public.customers" must match
// in full.
func (r relation) matches(qualifier []string) bool {
	switch {
	case len(qualifier) == 1:
		return qualifier[0] == r.parts[len(r.parts)-1]
	case len(qualifier) == len(r.parts):
		return strings.Join(qualifier, ".") == strings.Join(r.parts, ".")
	}
	return false
}

// scope is the set of tables whose columns an expression may reference.
type scope []relation

func (s scope) resolves(qualifier []string) bool {
	for _, r := range s {
		if r.matches(qualifier) {
			return true
		}
	}
	return false
}

func (s scope) names() string {
	names := make([]string, len(s))
	for i, r := range s {
		names[i] = r.name
	}
	return strings.Join(names, ", ")
}
