package proc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

var testPG pgcluster.Shared

func TestMain(m *testing.M) { code := m.Run(); testPG.Exit(code) }

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Fatalf("FreePorts(3) = %v, want three distinct ports", ports)
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("the free port %d cannot be listened on: %v", port, err)
		}
		l.Close()
	}
}

// started starts a real process, `sh -c script`, for the waits to watch.
func started(t *testing.T, script string) *Process {
	t.Helper()
	p, err := Start("sh", filepath.Join(t.TempDir(), "sh.log"), exec.Command("sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return p
}

func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		script string
		ready  bool
		limit  time.Duration
		want   string // in the error; "" for none
	}{
		{"ready", "sleep 30", true, 5 * time.Second, ""},
		{"not ready in time", "sleep 30", false, 300 * time.Millisecond, "sh not ready after 300ms (GET " + srv.URL + "/readyz: 503 Service Unavailable)"},
		{"exited", "echo giving up; exit 3", false, 5 * time.Second, "sh exited (exit status 3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			p := started(t, tc.script)
			err := WaitReady(ctx, p, srv.URL+"/readyz", tc.limit)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("WaitReady: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("WaitReady: %v, want an error with %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), p.LogPath):
				t.Fatalf("WaitReady's error has no end of the log: %v", err)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		ready.Store(false)
		if err := WaitReady(ctx, started(t, "sleep 30"), srv.URL, time.Minute); err != context.Canceled {
			t.Fatalf("WaitReady after its context ended: %v", err)
		}
	})
}

func TestWaitSession(t *testing.T) {
	ctx := context.Background()
	c := testPG.Get(t)
	p := started(t, "sleep 30")
	if err := WaitSession(ctx, p, c.DSN("postgres"), 30*time.Second); err != nil {
		t.Fatalf("WaitSession on a running server: %v", err)
	}
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("postgres://u@127.0.0.1:%d/db?sslmode=disable", ports[0])
	err = WaitSession(ctx, p, nobody, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "sh: no working session after 300ms") {
		t.Fatalf("WaitSession with no server: %v", err)
	}
}
