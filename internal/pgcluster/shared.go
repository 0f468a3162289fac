package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// EnvRequire names the environment variable that makes a missing PostgreSQL
// server fail the tests that need one instead of skipping them. The Makefile's
// test targets set it; CI=true has the same effect.
const EnvRequire = "PGROLLUP_REQUIRE_POSTGRES"

// ErrNotInstalled is what Start's error wraps when no PostgreSQL server is
// installed: no server binaries, or (as root) no postgres OS user. Any other
// failure to start is a real error, never a reason to skip.
var ErrNotInstalled = errors.New("pgcluster: no PostgreSQL server installed")

// Required reports whether tests must fail rather than skip when the server is
// not installed: under `make test` (PGROLLUP_REQUIRE_POSTGRES=1) and in CI (CI=true).
func Required() bool {
	return envTrue(EnvRequire) || envTrue("CI")
}

func envTrue(name string) bool {
	b, err := strconv.ParseBool(os.Getenv(name))
	return err == nil && b
}

// Skippable reports whether err, from Start, may skip the tests that need the
// server: it is ErrNotInstalled and Required is false.
func Skippable(err error) bool {
	return errors.Is(err, ErrNotInstalled) && !Required()
}

// TB is the part of testing.TB that Shared.Get and Unavailable use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Unavailable ends a test that needed a cluster Start could not give: it skips
// the test when err is Skippable, and fails it otherwise.
func Unavailable(t TB, err error) {
	t.Helper()
	if Skippable(err) {
		t.Skipf("skipped: %v (%s=1 or CI=true makes this a failure)", err, EnvRequire)
	}
	t.Fatalf("this test needs PostgreSQL: %v", err)
}

// startTimeout bounds a Shared cluster's Start and Setup together.
const startTimeout = 3 * time.Minute

// Shared is the cluster of one test package, started by the first test that
// asks for it, so that the package's other tests run without a server:
//
//	var pg = pgcluster.Shared{Options: pgcluster.Options{...}}
//
//	func TestMain(m *testing.M) { code := m.Run(); pg.Exit(code) }
//
//	func TestX(t *testing.T) { dsn := pg.Get(t).DSN("postgres"); ... }
//
// Its zero value is ready to use. It must not be copied after first use.
type Shared struct {
	// Options are passed to Start.
	Options Options
	// Setup, when set, runs once on the new cluster (roles, databases). Its
	// error fails every test that asks for the cluster.
	Setup func(ctx context.Context, c *Cluster) error

	mu      sync.Mutex
	started bool
	closed  bool
	c       *Cluster
	err     error
}

// Get returns the package's cluster, starting it on the first call; callers
// running at the same time wait for that start. When there is no cluster, Get
// ends the test as Unavailable does; a start that failed is not tried again.
func (s *Shared) Get(t TB) *Cluster {
	t.Helper()
	c, err := s.get()
	if err != nil {
		Unavailable(t, err)
	}
	return c
}

func (s *Shared) get() (*Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("pgcluster: Shared.Get after Close")
	}
	if !s.started {
		s.started = true
		s.c, s.err = s.start()
	}
	return s.c, s.err
}

func (s *Shared) start() (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := Start(ctx, s.Options)
	if err != nil {
		return nil, err
	}
	if s.Setup != nil {
		if err := s.Setup(ctx, c); err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("pgcluster: setting up the cluster: %w", err)
		}
	}
	return c, nil
}

// Started returns the cluster if a test has started it, else nil; for
// TestMain's reports after m.Run (a server log on failure, say).
func (s *Shared) Started() *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// Close stops the cluster if one was started; later calls to Get fail. Call
// it from TestMain after m.Run.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.c == nil {
		return nil
	}
	return s.c.Stop()
}

// Exit closes s and exits the process with code, or with 1 when code is 0 and
// the cluster did not stop cleanly. It ends TestMain, directly or as
// goleak.Cleanup(s.Exit).
func (s *Shared) Exit(code int) {
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
