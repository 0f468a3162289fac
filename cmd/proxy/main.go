// Command pgrollup is the aggregate-aware Postgres proxy: it serves clients
// (the default "serve" command) and offers offline tools (validate, explain, import)
// and the admin API's clients (status, refresh, advise). This package reads the
// command line; internal/app/serve assembles and runs the proxy.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app/serve"
)

const usage = `pgrollup: an aggregate-aware Postgres proxy

Usage:
  pgrollup [serve] --config FILE [--log-level debug|info|warn|error] [--shutdown-timeout 30s]
                   [--build-worker=false]
  pgrollup validate --config FILE
  pgrollup explain --config FILE [--warehouse DSN | --offline] [--timezone ZONE] [--json] "SQL"
  pgrollup status [--admin URL] [--token TOKEN] [--json]
  pgrollup refresh [--wait] [--timeout D] [--poll D] [--admin URL] [--token TOKEN] NAME...
  pgrollup import cube [--partial] FILE...
  pgrollup import lightdash [--schema S] [--partial] FILE...
  pgrollup advise [--config FILE] [--warehouse DSN] [--admin URL] [--token TOKEN]
                  [--max N] [--min-statements K]

serve runs the proxy, the admin listener, the build scheduler and an in-process
build worker. --build-worker=false leaves the builds to pgrollup-worker processes
on the NATS server of nats.url: the proxy still schedules builds and follows the
catalog, but takes no build job. SIGTERM drains the sessions and stops; SIGHUP
reads the config file again (tables, rollups and routing rules apply at once).
import prints the tables and rollups of Cube models' or Lightdash's
pre-aggregations, to append to a config (docs/migrating.md).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(args, stderr)
	case "validate":
		return runValidate(args, stdout, stderr)
	case "explain":
		return runExplain(args, stdout, stderr)
	case "status":
		return runStatus(args, stdout, stderr)
	case "refresh":
		return runRefresh(args, stdout, stderr)
	case "import":
		return runImport(args, stdout, stderr)
	case "advise":
		return runAdvise(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "pgrollup: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "pgrollup.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d tables, %d rollups)\n", *path, len(cfg.Tables), len(cfg.Rollups))
	return 0
}

func runServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "pgrollup.yaml", "config file")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for sessions to finish")
	buildWorker := fs.Bool("build-worker", true, "run an in-process build worker; false leaves the builds to pgrollup-worker processes (needs nats.url)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "pgrollup: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serve.Run(ctx, cfg, serve.Options{Log: log, ShutdownTimeout: *shutdownTimeout, BuildWorker: *buildWorker, Reloads: hup}); err != nil {
		log.Error("pgrollup stopped", "err", err)
		return 1
	}
	return 0
}
