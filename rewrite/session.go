package rewrite

import (
	"errors"
	"strings"
	"time"
)

// Param is one bound parameter of an extended-protocol Bind, in text form.
// The proxy converts binary-format parameters to text before deciding; a
// parameter it cannot convert makes the statement pass through.
type Param struct {
	Type  uint32 // the OID from Parse, or 0 when the client left it unspecified
	Value string // text form
	Null  bool
}

// Session is what a decision reads from the client's session.
type Session struct {
	// TimeZone is the session's TimeZone setting (e.g. "UTC", "Europe/Berlin").
	TimeZone string
	// Now is the transaction start time: now(), current_timestamp and
	// current_date are folded from it.
	Now time.Time
	// Params are the bound parameters ($1 is Params[0]); nil for a simple query.
	Params []Param
	// SearchPath lists the schemas unqualified table names are looked up in;
	// empty means public.
	SearchPath []string
	// TxWrote: a data-modifying statement ran earlier in the current transaction.
	TxWrote bool
	// TxFailed: the transaction is in the failed state.
	TxFailed bool
	// CanRead reports whether the session's user may read everything rollup
	// reads (SELECT on its source tables and columns, no row-level security).
	// nil means yes (offline explain).
	CanRead func(rollup string) bool
}

// loadZone loads an IANA zone; Go's loader caches zones, so this is cheap after the first call.
func loadZone(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	return time.LoadLocation(name)
}

// canonicalZone maps the spellings of a zone Postgres accepts to one IANA
// name, so that zones compare equal when they are the same zone. Zones given
// as POSIX strings or offsets are refused: their sign conventions differ
// between Postgres and other systems, and a wrong sign is a wrong answer.
func canonicalZone(z string) (string, error) {
	switch strings.ToUpper(z) {
	case "UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU", "UCT", "ETC/UCT", "UNIVERSAL", "ETC/UNIVERSAL", "GREENWICH", "ETC/GREENWICH", "GMT0", "ETC/GMT0":
		return "UTC", nil
	}
	if z == "" || strings.ContainsAny(z, "0123456789") && !strings.Contains(z, "/") {
		return "", errors.New("only IANA zone names are supported")
	}
	if strings.HasPrefix(z, "Etc/GMT") || strings.HasPrefix(z, "posix/") || strings.HasPrefix(z, "right/") {
		return "", errors.New("only IANA zone names are supported")
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}
