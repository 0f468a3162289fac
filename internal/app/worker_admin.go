package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/admin"
	"github.com/pgrollup/pgrollup/jobs/catalog"
)

// readiness is what GET /readyz reports: connected to NATS, with the catalog
// loaded and the query server subscribed, and not stopping.
type readiness struct {
	p        atomic.Pointer[liveState]
	stopping atomic.Bool
}

type liveState struct {
	conn *nats.Conn
	view *catalog.View
}

// set records the running connection and catalog view.
func (r *readiness) set(conn *nats.Conn, view *catalog.View) {
	r.p.Store(&liveState{conn: conn, view: view})
}

// stop marks the worker not ready for good: it has begun to shut down, and
// a probe should take it out of rotation before its builds and queries end.
func (r *readiness) stop() { r.stopping.Store(true) }

// ready is checked at every probe, so that a worker cut off from NATS stops
// reporting ready until the client has reconnected.
func (r *readiness) ready() bool {
	s := r.p.Load()
	if r.stopping.Load() || s == nil || !s.conn.IsConnected() {
		return false
	}
	select {
	case <-s.view.Ready():
		return true
	default:
		return false
	}
}

// adminServer is the worker's admin HTTP listener; a zero one serves nothing.
type adminServer struct {
	srv  *http.Server
	done chan struct{}
	log  *slog.Logger
}

// startAdmin serves /healthz, /readyz and /metrics on o.Admin with the same
// handler, and the same token rule, as the proxy's admin listener: the probes
// are open, /metrics needs the bearer token when one is set.
func startAdmin(o WorkerOptions, token string, gatherer prometheus.Gatherer, ready func() bool, log *slog.Logger) (*adminServer, error) {
	a := &adminServer{log: log}
	if o.Admin == "" {
		log.Info("no admin listener (--admin-listen is empty)")
		return a, nil
	}
	l, err := listenAdmin(o.Admin, !o.AdminFromFlag && o.Admin == config.DefaultAdminListen)
	if err != nil {
		return nil, err
	}
	if l == nil {
		log.Warn("admin listener not started: the built-in default address is taken, most likely by a pgrollup proxy on this host; give this worker its own with --admin-listen",
			"addr", o.Admin)
		return a, nil
	}
	a.srv = &http.Server{
		Handler: admin.NewHandler(admin.Options{
			Ready:    ready,
			Gatherer: gatherer,
			Token:    token,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "err", err)
		}
	}()
	log.Info("admin listening", "addr", l.Addr().String())
	return a, nil
}

// listenAdmin listens on addr. When the address is taken and mayShare is set
// (the built-in default, which a proxy on the same host listens on too), it
// returns nil, nil: a worker started beside a proxy with a shared config has
// always run, and keeps running, without an admin listener of its own.
func listenAdmin(addr string, mayShare bool) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if mayShare && errors.Is(err, syscall.EADDRINUSE) {
		return nil, nil
	}
	return nil, fmt.Errorf("admin listen %s: %w", addr, err)
}

// stop closes the listener, letting requests in progress finish briefly.
func (a *adminServer) stop() {
	if a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.log.Warn("stopping the admin listener", "err", err)
	}
	<-a.done
}
