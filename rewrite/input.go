package rewrite

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// numericInput is the numeric input this package vouches for.
var numericInput = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$`)

// CertainInput reports whether Postgres's input function for type oid
// certainly accepts text: a subset of what it accepts (decimal integers in
// range, plain decimals, the common booleans, ISO dates and times, any
// text). A value written into a statement as a literal fails where the
// statement is parsed, not where its parameter would have been bound, so
// only values that cannot fail are written in.
func CertainInput(oid uint32, text string) bool {
	s := strings.TrimSpace(text)
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID:
		return true
	case pgtype.Int2OID:
		_, err := strconv.ParseInt(s, 10, 16)
		return err == nil
	case pgtype.Int4OID:
		_, err := strconv.ParseInt(s, 10, 32)
		return err == nil
	case pgtype.Int8OID:
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	case pgtype.NumericOID:
		return numericInput.MatchString(s)
	case pgtype.BoolOID:
		switch strings.ToLower(s) {
		case "t", "f", "true", "false", "yes", "no", "on", "off", "1", "0":
			return true
		}
		return false
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		_, _, _, ok := parseTimeWall(s)
		return ok
	}
	return false
}
