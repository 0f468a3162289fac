package proxy

import (
	"sync"
	"time"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// A statement the router decided to answer from a rollup and that failed
// afterwards is answered by the warehouse: the client sees nothing, and the
// dashboard is simply not faster. Such a failure is a warning, since the
// decision promised an answer, but a dashboard repeats its statements every
// few seconds, so each (rollup, error) pair is logged at most once per
// fallbackLogEvery, with the count of those held back since.
const (
	fallbackLogEvery = time.Minute
	// fallbackLogKeys bounds the pairs remembered: error texts may carry
	// values, and a new text must not grow the map without limit.
	fallbackLogKeys = 1024
	// maxShapeBytes bounds the statement shape a warning carries.
	maxShapeBytes = 2048
)

type fallbackKey struct{ rollup, err string }

type fallbackSeen struct {
	logged     time.Time // when the pair was last logged
	suppressed int       // occurrences held back since
}

// fallbackLimiter decides which fallbacks are logged.
type fallbackLimiter struct {
	mu    sync.Mutex
	every time.Duration
	now   func() time.Time
	seen  map[fallbackKey]*fallbackSeen
}

func newFallbackLimiter(every time.Duration) *fallbackLimiter {
	return &fallbackLimiter{every: every, now: time.Now, seen: map[fallbackKey]*fallbackSeen{}}
}

// allow reports whether a fallback of rollup with error text err is to be
// logged now and, if so, how many of the same pair were held back since it
// was last logged.
func (l *fallbackLimiter) allow(rollup, err string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := fallbackKey{rollup, err}
	if s := l.seen[k]; s != nil {
		if now.Sub(s.logged) < l.every {
			s.suppressed++
			return false, 0
		}
		n := s.suppressed
		s.logged, s.suppressed = now, 0
		return true, n
	}
	if len(l.seen) >= fallbackLogKeys {
		// Pairs quiet for a whole period would be logged at once anyway.
		for k, s := range l.seen {
			if now.Sub(s.logged) >= l.every {
				delete(l.seen, k)
			}
		}
		if len(l.seen) >= fallbackLogKeys {
			// As many distinct failures within one period: start afresh
			// rather than grow, at the cost of some counts.
			clear(l.seen)
		}
	}
	l.seen[k] = &fallbackSeen{logged: now}
	return true, 0
}

// statementShape is the statement with its constants replaced by $n
// placeholders, as pg_stat_statements shows it, and its fingerprint: enough
// to find the dashboard query without logging the values in it. A text
// beyond the parse limits is neither normalized nor fingerprinted.
func statementShape(sql string, limits parselimit.Limits) (shape, fingerprint string) {
	if err := limits.Check(sql); err != nil {
		return "(not parsed: " + err.(*parselimit.Error).Bound + ")", ""
	}
	shape, err := pg_query.Normalize(sql)
	if err != nil {
		return "(does not parse)", ""
	}
	if len(shape) > maxShapeBytes {
		n := maxShapeBytes
		for n > 0 && !utf8.RuneStart(shape[n]) {
			n-- // never cut a character in two
		}
		shape = shape[:n] + "..."
	}
	fingerprint, err = pg_query.Fingerprint(sql)
	if err != nil {
		fingerprint = ""
	}
	return shape, fingerprint
}
