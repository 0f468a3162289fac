package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseDuration reads a Go duration ("90s", "1h30m") or a Postgres-style interval made of
// number-unit pairs ("3 days", "2 hours", "1 week", "1 day 12 hours", "30 min", "3d").
// Both forms are accepted because config authors copy values from Go docs and from SQL alike.
// The empty string is zero. Months and years are refused: they have no fixed length.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return Duration(d), nil
	}
	return parseInterval(s)
}

// intervalPart is one "<number> <unit>" pair of a Postgres-style interval.
var intervalPart = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([a-zµ]+)\s*`)

// intervalUnits are the fixed-length units Postgres accepts in interval input.
var intervalUnits = map[string]time.Duration{
	"us": time.Microsecond, "µs": time.Microsecond, "usec": time.Microsecond, "usecs": time.Microsecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// variableUnits are interval units whose length depends on the calendar.
var variableUnits = map[string]bool{
	"mon": true, "mons": true, "month": true, "months": true,
	"y": true, "yr": true, "yrs": true, "year": true, "years": true,
	"decade": true, "decades": true, "century": true, "centuries": true,
}

func parseInterval(s string) (Duration, error) {
	rest := strings.ToLower(s)
	var total float64
	for rest != "" {
		m := intervalPart.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 90s, 1h30m or 3 days)", s)
		}
		unit, ok := intervalUnits[m[2]]
		if !ok {
			if variableUnits[m[2]] {
				return 0, fmt.Errorf("invalid duration %q: months and years have no fixed length (use days or weeks)", s)
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, m[2])
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", s, err)
		}
		total += n * float64(unit)
		rest = rest[len(m[0]):]
	}
	if math.Abs(total) > math.MaxInt64 {
		return 0, fmt.Errorf("invalid duration %q: out of range", s)
	}
	return Duration(math.Round(total)), nil
}

// Std is the duration as the standard library type.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String writes whole days as "N days" and anything else as a Go duration without
// trailing zero units ("1h30m", not "1h30m0s"); both forms parse back to the same value.
func (d Duration) String() string {
	const day = 24 * time.Hour
	std := time.Duration(d)
	switch {
	case std == 0:
		return "0s"
	case std == day:
		return "1 day"
	case std > 0 && std%day == 0:
		return strconv.FormatInt(int64(std/day), 10) + " days"
	}
	s := std.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML refuses a bare number: "30" could mean seconds or minutes, and guessing
// wrong silently changes a timeout by a factor of 60.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration such as 90s or 3 days")
	}
	switch n.Tag {
	case "!!null":
		*d = 0
		return nil
	case "!!int", "!!float":
		if n.Value == "0" {
			*d = 0
			return nil
		}
		return fmt.Errorf("duration %s needs a unit (e.g. %ss or %s minutes)", n.Value, n.Value, n.Value)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the form String produces.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText lets JSON (the admin API) show durations the way the config file writes them.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts what ParseDuration accepts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Byte size units. kB, MB, GB and TB are powers of 1024, as in Postgres's memory settings
// (shared_buffers = 64MB is 64 * 1024 * 1024 bytes) and in DuckDB's memory_limit; KiB, MiB,
// GiB and TiB are accepted as explicit spellings of the same values. There are no
// 1000-based units, because two meanings for "MB" in one file is a trap.
const (
	KB ByteSize = 1 << (10 * (iota + 1))
	MB
	GB
	TB
)

var sizeUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"k": KB, "kb": KB, "kib": KB,
	"m": MB, "mb": MB, "mib": MB,
	"g": GB, "gb": GB, "gib": GB,
	"t": TB, "tb": TB, "tib": TB,
}

var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)$`)

// ParseByteSize reads "64MB", "10GB", "512KiB", "1.5GB", "64 MB" or a plain number of bytes.
// Units are case-insensitive and 1024-based (see KB). Fractions round to the nearest byte.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 64MB, 10GB, 512KiB or a number of bytes)", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, kB, MB, GB or TB)", s, m[2])
	}
	if !strings.Contains(m[1], ".") {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("invalid size %q: out of range", s)
		}
		return ByteSize(n) * unit, nil
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	total := math.Round(f * float64(unit))
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	return ByteSize(total), nil
}

// Int64 is the size in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

// String uses the largest unit that divides the size exactly, with Postgres's spelling
// ("64MB", "512kB"), so DuckDB and Postgres settings can be passed the same text.
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TB, "TB"}, {GB, "GB"}, {MB, "MB"}, {KB, "kB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML accepts a YAML integer as bytes and a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a size such as 64MB or 10GB")
	}
	if n.Tag == "!!null" {
		*b = 0
		return nil
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes the form String produces.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalText lets JSON (the admin API) show sizes the way the config file writes them.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText accepts what ParseByteSize accepts.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Granularities lists every valid granularity, finest first.
func Granularities() []Granularity {
	return []Granularity{Hour, Day, Week, Month, Quarter, Year}
}

// Valid reports whether g is one of the granularities pgrollup can bucket by.
func (g Granularity) Valid() bool {
	for _, v := range Granularities() {
		if g == v {
			return true
		}
	}
	return false
}

// String is the name used in the config file and in date_trunc.
func (g Granularity) String() string { return string(g) }

// CanRollUpTo reports whether every bucket of g lies inside exactly one bucket of coarse,
// so coarse buckets (or partitions) are unions of whole g buckets. The order is
// hour -> day -> month -> quarter -> year, and hour/day -> week; ISO weeks cross month and
// year boundaries, so week rolls up to nothing but week (docs/matching.md, rule 3).
func (g Granularity) CanRollUpTo(coarse Granularity) bool {
	if !g.Valid() || !coarse.Valid() {
		return false
	}
	switch {
	case g == coarse:
		return true
	case g == Week || coarse == Week:
		return coarse == Week && (g == Hour || g == Day)
	default:
		return granularityRank(g) < granularityRank(coarse)
	}
}

func granularityRank(g Granularity) int {
	for i, v := range Granularities() {
		if g == v {
			return i
		}
	}
	return -1
}
