package minio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryNeverBuilds: without the binary Binary fails at once, naming the
// command that builds it; with a build holding the lock it waits for it.
func TestBinaryNeverBuilds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	t.Setenv("PGROLLUP_MINIO_CACHE", dir)
	ctx := context.Background()

	started := time.Now()
	_, err := Binary(ctx)
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), BuildCommand) {
		t.Fatalf("no binary: err = %v, want ErrNotBuilt naming %q", err, BuildCommand)
	}
	if el := time.Since(started); el > 5*time.Second {
		t.Errorf("Binary took %s without a build to wait for", el)
	}

	// A build in progress: the lock is held until the binary is in place.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(ctx, lockPath(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = os.WriteFile(binaryPath(dir), []byte("#!/bin/sh\n"), 0o755)
		unlock()
	}()
	bin, err := Binary(ctx)
	if err != nil || bin != binaryPath(dir) {
		t.Fatalf("after the build: %q, %v", bin, err)
	}
	if _, ok, _ := Built(); !ok {
		t.Error("Built does not see the binary")
	}

	// Waiting ends with the caller's deadline.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	unlock, err = lock(ctx, lockPath(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := Binary(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock held past the deadline: err = %v", err)
	}
}
