// Command pgrollup is the aggregate-aware Postgres proxy: it serves clients
// (the default "serve" command) and offers offline tools (validate, explain).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/admin"
	"github.com/pgrollup/pgrollup/internal/parselimit"
	"github.com/pgrollup/pgrollup/internal/selfsigned"
	"github.com/pgrollup/pgrollup/proxy"
)

const usage = `pgrollup: an aggregate-aware Postgres proxy

Usage:
  pgrollup [serve] --config FILE [--log-level debug|info|warn|error] [--shutdown-timeout 30s]
                   [--build-worker=false]
  pgrollup validate --config FILE
  pgrollup explain --config FILE [--timezone ZONE] [--json] "SQL"
  pgrollup status [--admin URL] [--token TOKEN] [--json]
  pgrollup refresh [--wait] [--timeout D] [--poll D] [--admin URL] [--token TOKEN] NAME...

serve runs the proxy, the admin listener, the build scheduler and an in-process
build worker. --build-worker=false leaves the builds to pgrollup-worker processes
on the NATS server of nats.url: the proxy still schedules builds and follows the
catalog, but takes no build job. SIGTERM drains the sessions and stops; SIGHUP
reads the config file again (tables, rollups and routing rules apply at once).
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
	if err := serve(ctx, cfg, log, *shutdownTimeout, *buildWorker, hup); err != nil {
		log.Error("pgrollup stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the proxy and its admin listener until ctx ends, then drains.
// buildWorker says whether this process also takes build jobs; a signal on
// reloads reads the configuration file again.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, shutdownTimeout time.Duration, buildWorker bool, reloads <-chan os.Signal) error {
	tlsConfig, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rctx, stopRouter := context.WithCancel(context.Background())
	defer stopRouter()
	b, err := startBuildsWith(rctx, cfg, log, reg, buildWorker)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := b.Close(closeCtx); err != nil {
			log.Warn("stopping builds", "err", err)
		}
	}()
	rt, err := startRouter(rctx, cfg, log, reg, b)
	if err != nil {
		return err
	}
	defer rt.Close()
	lookup, err := newAuthQuery(rctx, cfg.Auth, rt.pool)
	if err != nil {
		return err
	}
	defer lookup.Close()
	opts := proxy.Options{
		WarehouseDSN:    cfg.Warehouse.DSN,
		Router:          rt,
		Prober:          rt,
		TLS:             tlsConfig,
		Cleartext:       proxy.CleartextPolicy(cfg.Auth.CleartextWithoutTLS),
		MaxMessageBytes: int(cfg.MaxMessageBytes),
		OutageLogins:    cfg.Auth.OutageLogins,
		VerifierRefresh: cfg.Auth.Refresh.Std(),
		ParseLimits:     parseLimits(cfg),
		Registerer:      reg,
		Logger:          log,
	}
	if lookup != nil {
		// Not a typed nil in the interface: no lookup is nil.
		opts.Verifiers = lookup
	}
	srv, err := proxy.NewServer(opts)
	if err != nil {
		return err
	}
	pgListener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	adminListener, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		pgListener.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
	}
	adminSrv := &http.Server{
		Handler: admin.NewHandler(admin.Options{
			Ready:    func() bool { return srv.Ready() && rt.Ready() && b.Ready() },
			Gatherer: reg,
			Token:    cfg.Admin.Token,
			API:      b.APIHandler(),
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(pgListener) }()
	go func() { errc <- adminSrv.Serve(adminListener) }()
	log.Info("pgrollup listening", "postgres", pgListener.Addr().String(), "admin", adminListener.Addr().String())

	rl := &reloader{path: cfg.Path, running: cfg, builds: b, router: rt, log: log}
	var runErr error
wait:
	for {
		select {
		case <-reloads:
			log.Info("SIGHUP: reloading the configuration", "path", cfg.Path)
			rl.reload()
		case <-ctx.Done():
			log.Info("shutting down: draining sessions", "timeout", shutdownTimeout)
			break wait
		case runErr = <-errc:
			break wait
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("sessions still open at the shutdown deadline were closed", "err", err)
	}
	_ = adminSrv.Shutdown(shutdownCtx)
	if runErr != nil && !errors.Is(runErr, proxy.ErrServerClosed) && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	log.Info("pgrollup stopped")
	return nil
}

func loadTLS(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	c := cfg.TLS
	if c.SelfSigned && c.CertFile == "" && c.KeyFile == "" {
		c.CertFile = filepath.Join(cfg.DataDir, "tls", "cert.pem")
		c.KeyFile = filepath.Join(cfg.DataDir, "tls", "key.pem")
	}
	if c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	if c.SelfSigned {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		made, err := selfsigned.Ensure(c.CertFile, c.KeyFile, []string{"localhost", host})
		if err != nil {
			return nil, fmt.Errorf("tls: self-signed certificate: %w", err)
		}
		if made {
			pem, _ := os.ReadFile(c.CertFile)
			log.Info("made a self-signed certificate; clients connect with sslmode=require", "cert_file", c.CertFile, "sha256", selfsigned.Fingerprint(pem))
		}
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// parseLimits are the config's limits.parse_max_* as the proxy takes them.
func parseLimits(cfg *config.Config) parselimit.Limits {
	return parselimit.Limits{
		MaxBytes:  int(cfg.Limits.ParseMaxBytes),
		MaxDepth:  cfg.Limits.ParseMaxDepth,
		MaxTokens: cfg.Limits.ParseMaxTokens,
	}
}
