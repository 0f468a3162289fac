package proxy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// parseRecorder is a Router that parses every statement and remembers the
// errors, passing everything through.
type parseRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *parseRecorder) Route(_ context.Context, st *Statement, _ *SessionInfo) RouteDecision {
	_, err := st.Parse()
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	return RouteDecision{Route: RoutePassthrough}
}

// TestStatementsBeyondParseLimits checks that a statement beyond the parse
// limits reaches no parser, passes through, gets the warehouse's own answer,
// and leaves the session working: in a transaction block it counts as a
// statement that may have written and changed settings.
func TestStatementsBeyondParseLimits(t *testing.T) {
	rec := &parseRecorder{}
	p := startProxy(t, func(o *Options) {
		o.Router = rec
		o.ParseLimits = parselimit.Limits{MaxBytes: 64 << 10}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(t, p.dsn(trustUser, "")).PgConn()
	chain := "SELECT 1" + strings.Repeat("+1", 30000)
	_, err := conn.Exec(ctx, chain).ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != sqlstate.StatementTooComplex {
		t.Fatalf("30,000 chained terms: %v, want Postgres's 54001", err)
	}
	wide := "SELECT " + strings.Repeat("1+", 40000) + "1"
	if _, err := conn.Prepare(ctx, "wide", wide, nil); !errors.As(err, &pe) || pe.Code != sqlstate.StatementTooComplex {
		t.Fatalf("prepared, 40,000 terms: %v, want 54001", err)
	}
	results, err := conn.Exec(ctx, "SELECT 1 WHERE '"+strings.Repeat("a", 100<<10)+"' <> ''").ReadAll()
	if err != nil || len(results) != 1 || len(results[0].Rows) != 1 {
		t.Fatalf("a 100 kB statement: %v", err)
	}
	rec.mu.Lock()
	errs := append([]error(nil), rec.errs...)
	rec.mu.Unlock()
	var beyond []string
	for _, err := range errs {
		var le *parselimit.Error
		if errors.As(err, &le) {
			beyond = append(beyond, le.Bound)
		}
	}
	// The Query beyond parse_max_bytes is relayed as it is read: no
	// router sees it.
	if strings.Join(beyond, ",") != "parse_max_depth,parse_max_bytes" || len(errs) != 2 {
		t.Errorf("the router saw parse limit errors %v of %v", beyond, errs)
	}
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatalf("after them: %v", err)
	}
}
