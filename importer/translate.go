package importer

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pgrollup/pgrollup/config"
)

// ident is an SQL identifier as models write column names.
var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// plainColumn is a column, bare or qualified by a table: what pgrollup
// accepts as a dimension.
var plainColumn = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$`)

// word is an identifier inside an SQL expression.
var word = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// arithmeticWords are the words an expression over measures may hold
// besides the measures: casts and NULL guards around a division.
var arithmeticWords = map[string]bool{
	"nullif": true, "coalesce": true, "cast": true, "as": true, "numeric": true, "decimal": true,
	"float": true, "float4": true, "float8": true, "double": true, "precision": true, "real": true,
	"int": true, "integer": true, "bigint": true,
}

// arithmetic reports whether rest, an expression with its measure
// references taken out, is only numbers, operators and the words above, so
// that the expression is computed from the stored measures at query time.
func arithmetic(rest string) bool {
	for _, w := range word.FindAllString(rest, -1) {
		if !arithmeticWords[strings.ToLower(w)] {
			return false
		}
	}
	return strings.Trim(word.ReplaceAllString(rest, ""), " \t\r\n0123456789.+-*/%(),:") == ""
}

// aggregate writes one stored measure: fn over arg (count(*) when arg is
// empty), with DISTINCT for distinct counts.
func aggregate(fn, arg string, distinct bool) string {
	switch {
	case arg == "":
		return fn + "(*)"
	case distinct:
		return fn + "(DISTINCT " + arg + ")"
	}
	return fn + "(" + arg + ")"
}

// granularity maps a source tool's time granularity onto pgrollup's; what
// is finer than an hour, or custom, has no equivalent.
func granularity(s string) (config.Granularity, error) {
	switch g := config.Granularity(strings.ToLower(strings.TrimSpace(s))); g {
	case config.Hour, config.Day, config.Week, config.Month, config.Quarter, config.Year:
		return g, nil
	case "second", "minute", "millisecond":
		return "", skip("granularity %s is finer than pgrollup's finest, hour", s)
	default:
		return "", skip("granularity %q is not one of hour, day, week, month, quarter, year", s)
	}
}

// names hands out rollup names: letters, digits and underscores, unique
// ignoring case as config wants them.
type names map[string]bool

func (ns names) name(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("_")
		}
		for _, r := range p {
			if r < 128 && (r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				b.WriteRune(r)
			} else {
				b.WriteRune('_')
			}
		}
	}
	base := b.String()
	if base == "" || base[0] >= '0' && base[0] <= '9' {
		base = "r_" + base
	}
	name := base
	for i := 2; ns[strings.ToLower(name)]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	ns[strings.ToLower(name)] = true
	return name
}

// addMeasures appends ms to r's measures, each once.
func addMeasures(r *config.Rollup, ms ...string) {
	for _, m := range ms {
		if !contains(r.Measures, m) {
			r.Measures = append(r.Measures, m)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// finish checks what was translated against config, and returns it with
// the bad input found, if any.
func finish(res *Result, errs Errors) (*Result, error) {
	res.check()
	if len(errs) > 0 {
		return res, errs
	}
	return res, nil
}

// refParts splits a match of cubeRef or ldRef (submatch indexes mm in s):
// the first name, the second after a dot ("" for none), and whether a dot
// follows the reference.
func refParts(s string, mm []int) (first, second string, dot bool) {
	first, dot = s[mm[2]:mm[3]], mm[6] >= 0
	if mm[4] >= 0 {
		second = s[mm[4]:mm[5]]
	}
	return first, second, dot
}
