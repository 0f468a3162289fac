package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeTB records how a test was ended; Fatalf and Skipf unwind like the real ones.
type fakeTB struct{ fatal, skip string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(f)
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skip = fmt.Sprintf(format, args...)
	panic(f)
}

// ending runs fn with a fakeTB and returns it once fn returns or ends the test.
func ending(fn func(TB)) (f *fakeTB) {
	f = &fakeTB{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	fn(f)
	return f
}

func TestUnavailable(t *testing.T) {
	missing := fmt.Errorf("%w: no server binaries", ErrNotInstalled)
	broken := errors.New("pgcluster: initdb failed")
	cases := []struct {
		name, require, ci string
		err               error
		skip              bool
	}{
		{"missing locally", "", "", missing, true},
		{"missing under make test", "1", "", missing, false},
		{"missing in CI", "", "true", missing, false},
		{"CI=false is local", "", "false", missing, true},
		{"broken locally", "", "", broken, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			t.Setenv("CI", tc.ci)
			f := ending(func(tb TB) { Unavailable(tb, tc.err) })
			if tc.skip && (f.skip == "" || f.fatal != "") {
				t.Errorf("want a skip, got skip %q, fatal %q", f.skip, f.fatal)
			}
			if !tc.skip && (f.fatal == "" || f.skip != "") {
				t.Errorf("want a failure, got skip %q, fatal %q", f.skip, f.fatal)
			}
			if msg := f.skip + f.fatal; !strings.Contains(msg, tc.err.Error()) {
				t.Errorf("message %q does not carry the error", msg)
			}
		})
	}
}

// A Shared starts nothing until Get, starts once for callers at the same time,
// and hands every test the same cluster.
func TestSharedStartsOnFirstGet(t *testing.T) {
	t.Setenv(EnvTestDSN, "postgres://u:p@db.example:6543/x")
	var setups int
	s := &Shared{Setup: func(ctx context.Context, c *Cluster) error {
		setups++
		return nil
	}}
	if s.Started() != nil {
		t.Fatal("started before Get")
	}
	var wg sync.WaitGroup
	got := make([]*Cluster, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ending(func(tb TB) { got[i] = s.Get(tb) })
		}()
	}
	wg.Wait()
	for i, c := range got {
		if c == nil || c != got[0] || c.Port != 6543 {
			t.Fatalf("Get %d returned %+v, want the one cluster on port 6543", i, c)
		}
	}
	if setups != 1 {
		t.Errorf("Setup ran %d times, want 1", setups)
	}
	if s.Started() != got[0] {
		t.Error("Started does not return the cluster")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if f := ending(func(tb TB) { s.Get(tb) }); f.fatal == "" {
		t.Error("Get after Close did not fail")
	}
}

// A failed Setup fails (never skips) every test that asks, without trying again.
func TestSharedSetupFails(t *testing.T) {
	t.Setenv(EnvTestDSN, "postgres://u:p@db.example:6543/x")
	t.Setenv(EnvRequire, "")
	t.Setenv("CI", "")
	var setups int
	s := &Shared{Setup: func(ctx context.Context, c *Cluster) error {
		setups++
		return errors.New("no roles today")
	}}
	for i := 0; i < 2; i++ {
		if f := ending(func(tb TB) { s.Get(tb) }); !strings.Contains(f.fatal, "no roles today") {
			t.Errorf("Get %d: fatal %q, skip %q; want the Setup error as a failure", i, f.fatal, f.skip)
		}
	}
	if setups != 1 {
		t.Errorf("Setup ran %d times, want 1", setups)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

func TestSharedCloseUnused(t *testing.T) {
	var s Shared
	if err := s.Close(); err != nil || s.Started() != nil {
		t.Errorf("Close of an unused Shared: %v, started %v", err, s.Started())
	}
}
