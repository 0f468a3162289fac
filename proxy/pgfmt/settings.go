package pgfmt

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DateStyle is the output-format half of the DateStyle setting.
type DateStyle uint8

// The output formats of DateStyle.
const (
	DateStyleISO DateStyle = iota
	DateStyleSQL
	DateStylePostgres
	DateStyleGerman
)

// DateOrder is the field-order half of the DateStyle setting. Only the SQL and
// Postgres output formats look at it when printing.
type DateOrder uint8

// The field orders of DateStyle.
const (
	DateOrderMDY DateOrder = iota
	DateOrderDMY
	DateOrderYMD
)

// IntervalStyle is the IntervalStyle setting.
type IntervalStyle uint8

// The values of IntervalStyle.
const (
	IntervalStylePostgres IntervalStyle = iota
	IntervalStylePostgresVerbose
	IntervalStyleSQLStandard
	IntervalStyleISO8601
)

// Settings are the session parameters that change text output. The zero value
// is not usable (TimeZone is nil); use DefaultSettings or SettingsFromParams.
type Settings struct {
	DateStyle     DateStyle
	DateOrder     DateOrder
	IntervalStyle IntervalStyle
	// TimeZone is the session's TimeZone, see LoadTimeZone.
	TimeZone *time.Location
	// ExtraFloatDigits is extra_float_digits, -15..3. Postgres does not report
	// it in ParameterStatus, so the session must track it (clients such as pgx
	// and pgjdbc send 3 in the startup packet).
	ExtraFloatDigits int
}

// DefaultSettings returns the settings of a server with no configuration:
// DateStyle "ISO, MDY", IntervalStyle "postgres", TimeZone GMT,
// extra_float_digits 1.
func DefaultSettings() Settings {
	return Settings{TimeZone: time.UTC, ExtraFloatDigits: 1}
}

// SettingsFromParams builds Settings from parameter values as the server reports
// them in ParameterStatus ("DateStyle", "IntervalStyle", "TimeZone"), plus
// "extra_float_digits" when the caller knows it (from the startup packet or a
// tracked SET). Missing keys keep DefaultSettings' value.
func SettingsFromParams(params map[string]string) (Settings, error) {
	s := DefaultSettings()
	if v, ok := params["DateStyle"]; ok {
		style, order, err := ParseDateStyle(v)
		if err != nil {
			return s, err
		}
		s.DateStyle, s.DateOrder = style, order
	}
	if v, ok := params["IntervalStyle"]; ok {
		is, err := ParseIntervalStyle(v)
		if err != nil {
			return s, err
		}
		s.IntervalStyle = is
	}
	if v, ok := params["TimeZone"]; ok {
		loc, err := LoadTimeZone(v)
		if err != nil {
			return s, err
		}
		s.TimeZone = loc
	}
	if v, ok := params["extra_float_digits"]; ok {
		n, err := ParseExtraFloatDigits(v)
		if err != nil {
			return s, err
		}
		s.ExtraFloatDigits = n
	}
	return s, nil
}

// ParseDateStyle parses a DateStyle value the way the server's check_datestyle
// does: comma-separated, case-insensitive keywords, at most one format and one
// order. GERMAN implies DMY unless an order is given; a missing format is ISO and
// a missing order MDY (the server would keep the previous ones, but it always
// reports both).
func ParseDateStyle(v string) (DateStyle, DateOrder, error) {
	style, order := DateStyleISO, DateOrderMDY
	haveStyle, haveOrder := false, false
	setStyle := func(s DateStyle) bool {
		if haveStyle && style != s {
			return false
		}
		style, haveStyle = s, true
		return true
	}
	setOrder := func(o DateOrder) bool {
		if haveOrder && order != o {
			return false
		}
		order, haveOrder = o, true
		return true
	}
	for _, tok := range strings.Split(v, ",") {
		tok = strings.TrimSpace(tok)
		ok := true
		switch strings.ToUpper(tok) {
		case "ISO":
			ok = setStyle(DateStyleISO)
		case "SQL":
			ok = setStyle(DateStyleSQL)
		case "POSTGRES":
			ok = setStyle(DateStylePostgres)
		case "GERMAN":
			ok = setStyle(DateStyleGerman)
			if ok && !haveOrder {
				order = DateOrderDMY
			}
		case "YMD":
			ok = setOrder(DateOrderYMD)
		case "DMY", "EURO", "EUROPEAN":
			ok = setOrder(DateOrderDMY)
		case "MDY", "US", "NONEURO", "NONEUROPEAN":
			ok = setOrder(DateOrderMDY)
		case "DEFAULT":
			// The boot value is "ISO, MDY"; a real session reports the resolved value.
			ok = setStyle(DateStyleISO) && setOrder(DateOrderMDY)
		default:
			return 0, 0, fmt.Errorf("pgfmt: unrecognized DateStyle keyword %q in %q", tok, v)
		}
		if !ok {
			return 0, 0, fmt.Errorf("pgfmt: conflicting DateStyle specifications in %q", v)
		}
	}
	return style, order, nil
}

// ParseIntervalStyle parses an IntervalStyle value (case-insensitive, as the
// server's enum GUCs are).
func ParseIntervalStyle(v string) (IntervalStyle, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "postgres":
		return IntervalStylePostgres, nil
	case "postgres_verbose":
		return IntervalStylePostgresVerbose, nil
	case "sql_standard":
		return IntervalStyleSQLStandard, nil
	case "iso_8601":
		return IntervalStyleISO8601, nil
	}
	return 0, fmt.Errorf("pgfmt: unrecognized IntervalStyle %q", v)
}

// ParseExtraFloatDigits parses an extra_float_digits value; the server accepts
// -15..3.
func ParseExtraFloatDigits(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < -15 || n > 3 {
		return 0, fmt.Errorf("pgfmt: invalid extra_float_digits %q (want an integer from -15 to 3)", v)
	}
	return n, nil
}
