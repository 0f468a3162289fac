package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/admin"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/routing"
)

// Options are the serve command's settings beside the configuration.
type Options struct {
	Log *slog.Logger
	// ShutdownTimeout is how long the end of ctx waits for sessions to
	// finish, and then for the builds to stop.
	ShutdownTimeout time.Duration
	// BuildWorker runs an in-process build worker; without it the
	// pgrollup-worker processes on nats.url run the builds.
	BuildWorker bool
	// Reloads: a signal on it reads the configuration file again (SIGHUP).
	Reloads <-chan os.Signal
}

// Run runs the proxy and its admin listener until ctx ends, then drains.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	log, shutdownTimeout, reloads := o.Log, o.ShutdownTimeout, o.Reloads
	if err := setSchedPolicy(cfg.SchedPolicy); err != nil {
		log.Warn("scheduling policy unchanged", "err", err)
	}
	tlsConfig, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	trusted, err := cfg.ProxyProtocol.Prefixes()
	if err != nil {
		return err
	}
	reg := app.NewRegistry()
	rctx, stopRouter := context.WithCancel(context.Background())
	defer stopRouter()
	b, err := app.StartBuilds(rctx, cfg, log, reg, o.BuildWorker)
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
		ProxyTrusted:    trusted,
		MaxMessageBytes: int(cfg.MaxMessageBytes),
		EventLoop:       cfg.EventLoop,
		OutageLogins:    cfg.Auth.OutageLogins,
		VerifierRefresh: cfg.Auth.Refresh.Std(),
		ParseLimits:     cfg.Limits.ParseLimits(),
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
			Details:  rt.exec.Details,
			Gatherer: reg,
			Token:    cfg.Admin.Token,
			API:      apiHandler(b.APIHandler(), rt.misses),
			Pprof:    cfg.Admin.Pprof,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(pgListener) }()
	go func() { errc <- adminSrv.Serve(adminListener) }()
	log.Info("pgrollup listening", "postgres", pgListener.Addr().String(), "admin", adminListener.Addr().String(),
		"proxy_protocol_from", cfg.ProxyProtocol.Trusted, "release", app.Release())

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

// apiHandler serves /api/: GET /api/misses from the router's record of what
// the warehouse answered, the rest (/api/rollups) from the job system.
func apiHandler(rollups http.Handler, misses *routing.Misses) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/misses", misses)
	mux.Handle("/api/", rollups)
	return mux
}
