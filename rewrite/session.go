package rewrite

import (
	"errors"
	"strings"
	"sync"
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
	// Tables, when set, is how table names resolve in this session: a name
	// as written (unqualified "orders" or qualified "public.orders") maps to
	// the catalog table it is in this session's database, search_path and
	// temp tables. A name it lacks is some other table, and no rollup
	// answers a statement that reads it. nil resolves names through
	// SearchPath (offline explain).
	Tables map[string]string
	// RowFilters are the row-level security predicates that apply to the
	// session's current role, by catalog table: SQL over the table's bare
	// column names, with the session's settings already in it as
	// constants. "" means a policy applies that a rollup cannot evaluate.
	RowFilters map[string]string
	// ContextKey identifies Tables and RowFilters, for caching what was
	// prepared with them; sessions with equal keys have equal maps.
	ContextKey string
}

// zoneInfo is what decisions need to know about one TimeZone spelling.
type zoneInfo struct {
	name string // canonical name; "UTC" for every spelling of UTC
	loc  *time.Location
	err  error // the spelling is not supported
	// fracEnd is the end of the last period between 1970 and 2100 in which the
	// zone's UTC offset is not a whole number of hours; zero when there is none.
	fracEnd time.Time
}

// wholeHoursFrom reports whether the zone's UTC offset is a whole number of
// hours at every instant from lo (at the earliest 1970) to 2100.
func (z *zoneInfo) wholeHoursFrom(lo time.Time) bool {
	if z.err != nil {
		return false
	}
	if lo.Before(wholeHoursStart) {
		lo = wholeHoursStart
	}
	return z.fracEnd.IsZero() || !z.fracEnd.After(lo)
}

// The whole-hour check covers 1970-2100: rollups covering all time are assumed
// to hold no rows from before 1970, when most zones still had local mean time.
var (
	wholeHoursStart = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	wholeHoursEnd   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newZoneInfo(spelling string) *zoneInfo {
	z := &zoneInfo{}
	z.name, z.loc, z.err = canonicalZone(spelling)
	if z.err != nil || z.name == "UTC" {
		return z
	}
	// Walk the zone's periods (transitions, then its rule) rather than
	// sampling: a short fractional period must not be missed.
	for t := wholeHoursStart; t.Before(wholeHoursEnd); {
		lt := t.In(z.loc)
		_, off := lt.Zone()
		_, end := lt.ZoneBounds()
		if off%3600 != 0 {
			z.fracEnd = end
			if end.IsZero() || end.After(wholeHoursEnd) {
				z.fracEnd = wholeHoursEnd
			}
		}
		if end.IsZero() || !end.After(t) {
			break
		}
		t = end
	}
	return z
}

// zoneCache remembers zones by spelling, so that after the first use no
// decision reads the zone database from disk or walks a zone's history. A nil
// *zoneCache computes every time. It is bounded: when full it starts over.
type zoneCache struct {
	mu sync.Mutex
	m  map[string]*zoneInfo
}

const maxCachedZones = 256

var utcZone = &zoneInfo{name: "UTC", loc: time.UTC}

func (c *zoneCache) get(spelling string) *zoneInfo {
	if spelling == "UTC" {
		return utcZone
	}
	if c == nil {
		return newZoneInfo(spelling)
	}
	c.mu.Lock()
	z, ok := c.m[spelling]
	c.mu.Unlock()
	if ok {
		return z
	}
	z = newZoneInfo(spelling)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedZones {
		c.m = map[string]*zoneInfo{}
	}
	c.m[spelling] = z
	c.mu.Unlock()
	return z
}

// canonicalZone maps the spellings of a zone Postgres accepts to one IANA
// name, so that zones compare equal when they are the same zone. Zones given
// as POSIX strings or offsets are refused: their sign conventions differ
// between Postgres and other systems, and a wrong sign is a wrong answer.
//
// It loads the zone from the zone database; callers go through a zoneCache.
func canonicalZone(z string) (string, *time.Location, error) {
	switch strings.ToUpper(z) {
	case "UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU", "UCT", "ETC/UCT", "UNIVERSAL", "ETC/UNIVERSAL", "GREENWICH", "ETC/GREENWICH", "GMT0", "ETC/GMT0":
		return "UTC", time.UTC, nil
	}
	if z == "" || strings.ContainsAny(z, "0123456789") && !strings.Contains(z, "/") {
		return "", nil, errors.New("only IANA zone names are supported")
	}
	if strings.HasPrefix(z, "Etc/GMT") || strings.HasPrefix(z, "posix/") || strings.HasPrefix(z, "right/") {
		return "", nil, errors.New("only IANA zone names are supported")
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return "", nil, err
	}
	return loc.String(), loc, nil
}
