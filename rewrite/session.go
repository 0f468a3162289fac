package rewrite

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
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
	// Staleness is the session's own bound on how old a rollup answer may
	// be (the setting pgrollup.max_staleness), which replaces the
	// catalog's MaxStaleness.
	Staleness StalenessSetting
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

// StalenessSetting is a session's pgrollup.max_staleness.
type StalenessSetting struct {
	// Set: the session has the setting, so Max replaces the catalog's
	// MaxStaleness; a Max of 0 then means as fresh as the warehouse.
	Set bool
	Max time.Duration
	// Invalid is the setting's text when it is not a duration: no rollup
	// answers until it is one again.
	Invalid string
}

// zoneInfo is what decisions need to know about one TimeZone spelling.
type zoneInfo struct {
	name string // canonical name; "UTC" for every spelling of UTC
	loc  *time.Location
	err  error // the spelling is not supported
	// east is a fixed offset DuckDB has no zone name for (not a whole
	// number of hours, or beyond the tz database's Etc/GMT zones), in
	// seconds east of Greenwich; arithmetic is true when it is set. The
	// DuckDB SQL then shifts by the offset instead of naming the zone.
	east       int
	arithmetic bool
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
	// Only canonicalZone's names for offsets without an Etc/GMT zone start
	// with a sign.
	if z.err == nil && (strings.HasPrefix(z.name, "+") || strings.HasPrefix(z.name, "-")) {
		_, z.east = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).In(z.loc).Zone()
		z.arithmetic = true
	}
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
// name, so that zones compare equal when they are the same zone. Fixed UTC
// offsets, in every spelling Postgres accepts or reports (fixedOffset), are
// read with Postgres's sign conventions and named by their Etc/GMT zone
// when the tz database has one (whole hours from -12 to +14); other fixed
// offsets are named as ISO writes them (+05:30), a name no IANA zone has,
// and newZoneInfo marks them for arithmetic. POSIX strings with daylight
// saving rules are refused.
//
// It loads the zone from the zone database; callers go through a zoneCache.
func canonicalZone(z string) (string, *time.Location, error) {
	switch strings.ToUpper(z) {
	case "UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU", "UCT", "ETC/UCT", "UNIVERSAL", "ETC/UNIVERSAL", "GREENWICH", "ETC/GREENWICH", "GMT0", "ETC/GMT0":
		return "UTC", time.UTC, nil
	}
	if east, ok := fixedOffset(z); ok {
		if east == 0 {
			return "UTC", time.UTC, nil
		}
		if east%3600 != 0 || east < -12*3600 || east > 14*3600 {
			name := offsetText(east)
			return name, time.FixedZone(name, east), nil
		}
		// The tz database's Etc/GMT zones have POSIX signs: Etc/GMT-2 is
		// two hours east of Greenwich. DuckDB reads them too.
		name := "Etc/GMT" + strconv.Itoa(-east/3600)
		if east < 0 {
			name = "Etc/GMT+" + strconv.Itoa(-east/3600)
		}
		return name, time.FixedZone(offsetText(east), east), nil
	}
	if z == "" || strings.ContainsAny(z, "0123456789") && !strings.Contains(z, "/") {
		return "", nil, errors.New("only IANA zone names and fixed UTC offsets are supported")
	}
	if strings.HasPrefix(z, "Etc/GMT") || strings.HasPrefix(z, "posix/") || strings.HasPrefix(z, "right/") {
		return "", nil, errors.New("only IANA zone names and fixed UTC offsets are supported")
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return "", nil, err
	}
	return loc.String(), loc, nil
}

// fixedOffset reads z as a zone at a fixed offset from UTC, the way Postgres
// reads a TimeZone setting, and returns the offset in seconds east of
// Greenwich. ok is false when z is not one (a zone name, or a POSIX string
// with daylight saving rules).
//
//   - A number is hours east (SQL's sign): SET TIME ZONE 5 or '-3.5'.
//   - Etc/GMT+N is the tz database's zone N hours west (POSIX sign).
//   - A POSIX string with no daylight saving part is [name]offset, the
//     offset hours west (POSIX sign): 'UTC+5' is five hours west of
//     Greenwich. The name is letters, or anything between < and >, and
//     Postgres allows it to be empty. This is also how Postgres reports
//     offsets set as numbers or intervals: SET TIME ZONE INTERVAL '+05:30'
//     HOUR TO MINUTE reports <+05:30>-05:30, and a startup option
//     timezone=+00:00 reports +00:00.
func fixedOffset(z string) (int, bool) {
	if z == "" {
		return 0, false
	}
	if h, ok := sqlHours(z); ok {
		return h, true
	}
	if rest, ok := strings.CutPrefix(z, "Etc/GMT"); ok {
		if rest == "" || (rest[0] != '+' && rest[0] != '-') {
			return 0, false
		}
		n, err := strconv.Atoi(rest[1:])
		if err != nil || n > 14 || len(rest) > 3 {
			return 0, false
		}
		if rest[0] == '+' {
			n = -n
		}
		return n * 3600, true
	}
	rest := z
	switch {
	case rest[0] == '<':
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return 0, false
		}
		rest = rest[end+1:]
	default:
		i := 0
		for i < len(rest) && (rest[i] >= 'a' && rest[i] <= 'z' || rest[i] >= 'A' && rest[i] <= 'Z') {
			i++
		}
		if i > 0 && i < 3 {
			return 0, false
		}
		rest = rest[i:]
	}
	west, ok := posixOffset(rest)
	if !ok {
		return 0, false
	}
	return -west, true
}

// sqlHours reads a plain number of hours, as Postgres's check_timezone does
// before anything else ('5', '-3', '+5.5'), and returns seconds east.
func sqlHours(z string) (int, bool) {
	s := z
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || s == "." {
		return 0, false
	}
	h, err := strconv.ParseFloat(z, 64)
	if err != nil || h < -24 || h > 24 {
		return 0, false
	}
	secs := h * 3600
	if secs != float64(int(secs)) {
		return 0, false
	}
	return int(secs), true
}

// posixOffset reads a whole POSIX offset, [+-]hh[:mm[:ss]], and returns it
// in seconds west of Greenwich; ok is false when anything follows.
func posixOffset(s string) (int, bool) {
	sign := 1
	switch {
	case strings.HasPrefix(s, "-"):
		sign, s = -1, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, false
	}
	limits := []int{24, 59, 59}
	secs := 0
	for i, p := range parts {
		if p == "" || len(p) > 2 || strings.Trim(p, "0123456789") != "" {
			return 0, false
		}
		n, _ := strconv.Atoi(p)
		if n > limits[i] {
			return 0, false
		}
		secs += n * []int{3600, 60, 1}[i]
	}
	return sign * secs, true
}

// offsetText writes an offset east of Greenwich as ISO does: +05, -03:30.
func offsetText(east int) string {
	sign := "+"
	if east < 0 {
		sign, east = "-", -east
	}
	s := sign + fmt.Sprintf("%02d", east/3600)
	if m := east % 3600 / 60; m != 0 || east%60 != 0 {
		s += fmt.Sprintf(":%02d", m)
	}
	if sec := east % 60; sec != 0 {
		s += fmt.Sprintf(":%02d", sec)
	}
	return s
}

// localSQL is DuckDB SQL for the wall clock of zone z at the instant s
// (Postgres's timezone(z, timestamptz)).
func localSQL(z *zoneInfo, s string) string {
	if z.arithmetic {
		return "(timezone('UTC', " + s + ") + INTERVAL (" + strconv.Itoa(z.east) + ") SECOND)"
	}
	return "timezone(" + sqlquote.Literal(z.name) + ", " + s + ")"
}

// instantSQL is DuckDB SQL for the instant at which zone z's wall clock
// shows s (Postgres's timezone(z, timestamp)).
func instantSQL(z *zoneInfo, s string) string {
	if z.arithmetic {
		return "timezone('UTC', " + s + " - INTERVAL (" + strconv.Itoa(z.east) + ") SECOND)"
	}
	return "timezone(" + sqlquote.Literal(z.name) + ", " + s + ")"
}
