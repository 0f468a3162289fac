package proxy

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestFallbackLimiter(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := newFallbackLimiter(time.Minute)
	l.now = clock.now
	steps := []struct {
		advance        time.Duration
		rollup, err    string
		log            bool
		wantSuppressed int
	}{
		{0, "a", "boom", true, 0},
		{time.Second, "a", "boom", false, 0},
		{time.Second, "a", "boom", false, 0},
		{0, "a", "other", true, 0}, // another error of the same rollup
		{0, "b", "boom", true, 0},  // the same error of another rollup
		{57 * time.Second, "a", "boom", false, 0},
		{time.Second, "a", "boom", true, 3}, // a minute after it was logged
		{time.Second, "a", "boom", false, 0},
		{2 * time.Minute, "a", "boom", true, 1},
		{0, "b", "boom", true, 0},
	}
	for i, s := range steps {
		clock.advance(s.advance)
		log, n := l.allow(s.rollup, s.err)
		if log != s.log || n != s.wantSuppressed {
			t.Fatalf("step %d (%s, %s): logged %v with %d suppressed, want %v with %d", i, s.rollup, s.err, log, n, s.log, s.wantSuppressed)
		}
	}
}

// The limiter forgets quiet pairs, and at worst everything, rather than
// remember every distinct error text.
func TestFallbackLimiterIsBounded(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := newFallbackLimiter(time.Minute)
	l.now = clock.now
	for i := 0; i < 3*fallbackLogKeys; i++ {
		if log, _ := l.allow("a", "value "+strconv.Itoa(i)); !log {
			t.Fatalf("a new error text %d was held back", i)
		}
		if len(l.seen) > fallbackLogKeys {
			t.Fatalf("%d pairs remembered", len(l.seen))
		}
	}
}

func TestStatementShape(t *testing.T) {
	shape, fp := statementShape("SELECT sum(amount) FROM orders WHERE status = 'paid' AND id > 42", parselimit.Limits{})
	if want := "SELECT sum(amount) FROM orders WHERE status = $1 AND id > $2"; shape != want {
		t.Errorf("shape %q, want %q", shape, want)
	}
	if _, fp2 := statementShape("select sum(amount) from orders where status = 'new' and id > 7", parselimit.Limits{}); fp == "" || fp2 != fp {
		t.Errorf("fingerprints %q and %q: the same statement with other values must have one", fp, fp2)
	}
	long, _ := statementShape("SELECT '"+strings.Repeat("é", 10)+"' AS "+strings.Repeat("é", maxShapeBytes), parselimit.Limits{})
	if len(long) > maxShapeBytes+3 || !strings.HasSuffix(long, "...") || !strings.HasPrefix(long, "SELECT $1 AS ") {
		t.Errorf("long statement shaped as %.40q... (%d bytes)", long, len(long))
	}
	if strings.ContainsRune(long, '\uFFFD') {
		t.Error("a character was cut in two")
	}
	// Normalize and Fingerprint walk the tree as the parser does: a
	// statement beyond the limits never reaches them.
	deep, fp := statementShape("SELECT 1"+strings.Repeat("+1", 30000), parselimit.Limits{})
	if deep != "(not parsed: parse_max_depth)" || fp != "" {
		t.Errorf("a statement beyond the parse limits shaped as %q, %q", deep, fp)
	}
}

// An answer that fails after the decision is relayed, counted under its
// reason and logged at WARN with the rollup, the error and the statement's
// shape (never its values), once per minute per rollup and error; the next
// warning says how many were held back.
func TestFallbackWarns(t *testing.T) {
	logs := &lockedBuffer{}
	p := startProxy(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.Router = answering(localSQL, namedAnswer{seriesAnswer{fail: errors.New("cannot convert duckdb.Decimal")}})
	})
	clock := &fakeClock{t: time.Now()}
	p.srv.fallbackLog.now = clock.now
	conn := connect(t, p.dsn(trustUser, ""))
	counter := p.srv.metrics.Fallbacks.WithLabelValues("answer_failed")
	before := testutil.ToFloat64(counter)
	run := func() {
		t.Helper()
		for name, mode := range execModes {
			if got := rows(t, conn, mode, localSQL); !strings.HasSuffix(got, "SELECT 5") {
				t.Fatalf("%s: the warehouse answered %q, want its 5 rows", name, got)
			}
		}
	}
	run()
	clock.advance(fallbackLogEvery)
	run()
	if got, want := testutil.ToFloat64(counter)-before, float64(2*len(execModes)); got != want {
		t.Errorf("%v fallbacks counted as answer_failed, want %v", got, want)
	}

	var warnings []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "WARN" {
			warnings = append(warnings, rec)
		}
	}
	if len(warnings) != 2 {
		t.Fatalf("%d warnings, want one per minute:\n%s", len(warnings), logs.String())
	}
	for i, w := range warnings {
		if w["rollup"] != "orders_daily" || w["reason"] != "answer_failed" || w["err"] != "cannot convert duckdb.Decimal" {
			t.Errorf("warning %d: %v", i, w)
		}
		stmt, _ := w["statement"].(string)
		if !strings.Contains(stmt, "generate_series($") || strings.Contains(stmt, "'row '") {
			t.Errorf("warning %d shows the statement as %q, want its shape without values", i, stmt)
		}
		if fp, _ := w["fingerprint"].(string); fp == "" {
			t.Errorf("warning %d has no fingerprint", i)
		}
	}
	if n := warnings[0]["suppressed"]; n != float64(0) {
		t.Errorf("first warning: %v suppressed, want 0", n)
	}
	if n, want := warnings[1]["suppressed"], float64(len(execModes)-1); n != want {
		t.Errorf("second warning: %v suppressed, want %v", n, want)
	}
}
