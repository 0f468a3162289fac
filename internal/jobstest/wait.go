package jobstest

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// State is the catalog's state of def, nil when it has none.
func State(t testing.TB, cat *catalog.Catalog, def *rollup.Definition) *rollup.State {
	t.Helper()
	st, err := cat.Get(context.Background(), def.Name, def.Identity())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Records are the builds of st with the result ("" for all).
func Records(st *rollup.State, result string) []rollup.BuildRecord {
	var out []rollup.BuildRecord
	if st == nil {
		return nil
	}
	for _, b := range st.Builds {
		if result == "" || b.Result == result {
			out = append(out, b)
		}
	}
	return out
}

// Log writes debug logs to the test's log.
func Log(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer{T: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Writer writes to the test's log, each line after Name when it is set.
type Writer struct {
	T    *testing.T
	Name string // of the process whose output this is; may be empty
}

// Write logs p, one call a line.
func (w Writer) Write(p []byte) (int, error) {
	if w.Name != "" {
		w.T.Logf("%s: %s", w.Name, strings.TrimSpace(string(p)))
	} else {
		w.T.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// WorkerRelease is the release of the worker BuildWorker builds: without
// VCS stamping, the module version of a development build. Clients of that
// worker must send it (remote.ClientOptions.Release).
const WorkerRelease = "(devel)"

// BuildWorker builds pgrollup-worker for tests that run it in its own
// process, and kill it.
func BuildWorker(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgrollup-worker")
	out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "github.com/pgrollup/pgrollup/cmd/worker").CombinedOutput()
	if err != nil {
		t.Fatalf("build the worker: %v\n%s", err, out)
	}
	return bin
}

// Buffer is a log that a test reads while the code under test writes it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
