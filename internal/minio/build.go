package minio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrNotBuilt is returned by Binary when the MinIO binary is not in its cache
// folder and no build of it is under way.
var ErrNotBuilt = errors.New("minio: the MinIO binary is not built")

// BuildCommand is what builds the binary; Binary's error names it.
const BuildCommand = "bash scripts/deps.sh minio"

// Dir is the cache folder of the pinned MinIO binary: $PGROLLUP_MINIO_CACHE,
// else the user cache directory under pgrollup/minio/VERSION.
func Dir() (string, error) {
	if dir := os.Getenv("PGROLLUP_MINIO_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("minio: no cache directory: %w", err)
	}
	return filepath.Join(base, "pgrollup", "minio", Version), nil
}

// Built returns the path of the MinIO binary and whether it is there.
func Built() (string, bool, error) {
	dir, err := Dir()
	if err != nil {
		return "", false, err
	}
	bin := binaryPath(dir)
	_, err = os.Stat(bin)
	return bin, err == nil, nil
}

// binaryPath is the binary in dir.
func binaryPath(dir string) string { return filepath.Join(dir, "minio") }

// lockPath is the file whose lock a build holds, in dir.
func lockPath(dir string) string { return filepath.Join(dir, ".build.lock") }

// Binary returns the path of the MinIO binary. It never builds it: a build
// takes minutes and would run inside a test's deadline, and several test
// binaries would race to do it. When a build holds the lock (scripts/deps.sh,
// or Build in another process), Binary waits for it as long as ctx allows;
// when the binary is missing and nothing builds it, the error wraps
// ErrNotBuilt and names BuildCommand.
func Binary(ctx context.Context) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	bin := binaryPath(dir)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if _, err := os.Stat(dir); err == nil {
		// A build in progress holds the lock: wait for it, then look again.
		unlock, err := lock(ctx, lockPath(dir), nil)
		if err != nil {
			return "", fmt.Errorf("minio: waiting for the build in progress (%s): %w", lockPath(dir), err)
		}
		unlock()
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	return "", fmt.Errorf("%w at %s: run `%s` first (it builds MinIO %s from its Go module once, in minutes)",
		ErrNotBuilt, bin, BuildCommand, Version)
}

// Build builds the pinned MinIO into its cache folder unless it is there
// already, and returns its path. One build runs at a time on a machine: a
// file lock in the cache folder serialises builds and makes Binary wait for
// them. progress, when not nil, gets a line about every 15 seconds while the
// build runs, and the compiler's output if it fails.
func Build(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("minio: %w", err)
	}
	bin := binaryPath(dir)
	if progress == nil {
		progress = io.Discard
	}
	unlock, err := lock(ctx, lockPath(dir), func() {
		fmt.Fprintf(progress, "minio: another build of MinIO holds %s; waiting for it\n", lockPath(dir))
	})
	if err != nil {
		return "", fmt.Errorf("minio: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built while this one waited
	}
	// Build outside any module so that MinIO never enters this module's go.mod or go.sum.
	work, err := os.MkdirTemp("", "pgrollup-minio-build-*")
	if err != nil {
		return "", fmt.Errorf("minio: %w", err)
	}
	defer os.RemoveAll(work)
	// GOBIN is a private folder renamed into place afterwards, so that the
	// cache folder never holds a half-written binary.
	gobin, err := os.MkdirTemp(dir, ".gobin-*")
	if err != nil {
		return "", fmt.Errorf("minio: %w", err)
	}
	defer os.RemoveAll(gobin)
	fmt.Fprintf(progress, "minio: building %s@%s into %s (once per machine; minutes)\n", module, Version, dir)
	started := time.Now()
	cmd := exec.CommandContext(ctx, "go", "install", "-v", module+"@"+Version)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod", "GO111MODULE=on", "GOWORK=off")
	out, err := cmd.StderrPipe()
	if err != nil {
		return "", fmt.Errorf("minio: %w", err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("minio: go install: %w", err)
	}
	// go install -v names each package as it compiles it: the count is the
	// progress, and the lines are kept for the error.
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			mu.Lock()
			n := len(lines)
			mu.Unlock()
			fmt.Fprintf(progress, "minio: still building after %s (%d packages so far)\n", time.Since(started).Round(time.Second), n)
		}
	}
	if err := cmd.Wait(); err != nil {
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("minio: go install %s@%s: %w\n%s", module, Version, err, tailLines(lines, 40))
	}
	if err := os.Rename(binaryPath(gobin), bin); err != nil {
		return "", fmt.Errorf("minio: go install did not produce the binary: %w", err)
	}
	fmt.Fprintf(progress, "minio: built %s in %s\n", bin, time.Since(started).Round(time.Second))
	return bin, nil
}

// lock takes an exclusive lock on the file at path, polling until ctx ends;
// waiting is called once if the lock is held by someone else.
func lock(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for told := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !told && waiting != nil {
			waiting()
		}
		told = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func tailLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}
