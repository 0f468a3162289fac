// Command build builds the MinIO server that the tests start (package
// internal/minio) into its cache folder, once per machine: scripts/deps.sh
// runs it, so that no test builds MinIO inside its deadline.
//
// Usage:
//
//	go run ./internal/minio/build [-check]
//
// It prints nothing when the binary is there already, progress lines while it
// builds, and waits for a build another process holds the lock for. -check
// only reports, on standard output: "built PATH" or "missing PATH".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgrollup/pgrollup/internal/minio"
)

func main() {
	check := flag.Bool("check", false, `only print "built PATH" or "missing PATH"`)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *check {
		bin, ok, err := minio.Built()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if ok {
			fmt.Println("built", bin)
		} else {
			fmt.Println("missing", bin)
		}
		return
	}
	if _, err := minio.Build(ctx, os.Stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "minio: build interrupted")
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
