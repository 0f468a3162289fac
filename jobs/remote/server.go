package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// ServerOptions configures Serve.
type ServerOptions struct {
	// Cache makes the requested storage keys local files.
	Cache *cache.Cache
	// DuckDB is the worker's one shared database (worker.duckdb_memory_limit).
	DuckDB *duck.DB
	// Concurrency is how many queries run at once (worker.concurrency); a
	// request beyond it is answered busy so that the proxy asks another
	// worker. 0 means 4.
	Concurrency int
	// Name identifies the worker in answers and logs.
	Name string
	// Release is this worker's release; it refuses the queries of proxies
	// of another one.
	Release string
	// DrainTimeout is how long shutdown lets running queries finish before
	// it cancels them; 0 means 10s.
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// Server answers rollup queries for proxies over NATS.
type Server struct {
	o     ServerOptions
	nc    *nats.Conn
	sub   *nats.Subscription
	slots chan struct{}

	// base outlives the ctx given to Serve so that shutdown can let
	// running queries finish; cancelAll ends them after DrainTimeout.
	base      context.Context
	cancelAll context.CancelFunc

	mu      sync.Mutex // orders closing against wg.Add
	closing bool
	wg      sync.WaitGroup
	done    chan struct{}

	stats serverCounters
	// otherRelease limits the warning about proxies of another release.
	otherRelease rateLimit
}

// ServerStats counts what a Server did.
type ServerStats struct {
	Accepted  int64 // queries started
	Busy      int64 // requests refused at the concurrency limit
	Refused   int64 // requests of proxies of another release
	Completed int64 // answers sent whole
	Failed    int64 // answers that ended with an error message
	Cancelled int64 // stopped by the proxy's cancel, its silence or shutdown
	Chunks    int64 // chunks of rows sent
	Rows      int64 // rows sent
	Active    int64 // queries running now
	// MaxAhead is the most chunks ever sent beyond what the proxy had
	// consumed; flow control keeps it at or below the request's window.
	MaxAhead int64
}

type serverCounters struct {
	accepted, busy, refused, completed, failed, cancelled, chunks, rows, active, maxAhead atomic.Int64
}

// Why a query stopped early, for logs and counters.
var (
	errCancelled  = errors.New("cancelled by the proxy")
	errClientGone = errors.New("the proxy fell silent")
	errShutdown   = errors.New("worker shutting down")
)

// Serve subscribes to query requests in the workers' queue group and
// answers them until ctx ends; then it stops taking requests and lets the
// running queries finish for up to DrainTimeout. Wait blocks until then.
func Serve(ctx context.Context, nc *nats.Conn, o ServerOptions) (*Server, error) {
	if o.Cache == nil || o.DuckDB == nil {
		return nil, errors.New("query server: needs a cache and a DuckDB")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("worker", o.Name)
	s := &Server{o: o, nc: nc, slots: make(chan struct{}, o.Concurrency), done: make(chan struct{})}
	s.otherRelease.every = time.Minute
	s.base, s.cancelAll = context.WithCancel(context.WithoutCancel(ctx))
	sub, err := nc.QueueSubscribe(querySubject, queryQueue, s.onRequest)
	if err != nil {
		s.cancelAll()
		return nil, fmt.Errorf("query server: subscribe: %w", err)
	}
	// Requests sent after Serve returns must find the subscription.
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		_ = sub.Unsubscribe()
		s.cancelAll()
		return nil, fmt.Errorf("query server: %w", err)
	}
	s.sub = sub
	o.Log.Info("answering rollup queries", "subject", querySubject, "concurrency", o.Concurrency, "release", o.Release)
	go s.shutdownOn(ctx)
	return s, nil
}

func (s *Server) shutdownOn(ctx context.Context) {
	<-ctx.Done()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	// Drain hands the requests already received to onRequest, which answers
	// busy now, so that their proxies ask another worker at once.
	_ = s.sub.Drain()
	idle := make(chan struct{})
	go func() { s.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(s.o.DrainTimeout):
		s.o.Log.Warn("cancelling the queries still running at shutdown")
		s.cancelAll()
		<-idle
	}
	s.cancelAll()
	close(s.done)
}

// Wait blocks until the server has shut down.
func (s *Server) Wait() { <-s.done }

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	c := &s.stats
	return ServerStats{
		Accepted: c.accepted.Load(), Busy: c.busy.Load(), Refused: c.refused.Load(), Completed: c.completed.Load(), Failed: c.failed.Load(),
		Cancelled: c.cancelled.Load(), Chunks: c.chunks.Load(), Rows: c.rows.Load(), Active: c.active.Load(),
		MaxAhead: c.maxAhead.Load(),
	}
}

// onRequest runs on the subscription's goroutine: it only decides whether
// to take the request, so that a busy worker answers busy at once.
func (s *Server) onRequest(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	var req queryRequest
	err := json.Unmarshal(msg.Data, &req)
	if err == nil {
		err = req.check()
	}
	if err != nil {
		s.o.Log.Warn("malformed query request", "err", err)
		_ = s.nc.Publish(msg.Reply, encodeError(executor.FallbackProtocol, err))
		return
	}
	if req.Release != s.o.Release {
		err := fmt.Errorf("worker %s runs release %q, the proxy release %q: refused; run proxies and workers of one release", s.o.Name, s.o.Release, req.Release)
		s.stats.refused.Add(1)
		if s.otherRelease.allow() {
			s.o.Log.Warn("refusing rollup queries from a proxy of another release", "proxy_release", req.Release, "release", s.o.Release)
		}
		_ = s.nc.Publish(msg.Reply, encodeError(executor.FallbackWorkerRelease, err))
		return
	}
	s.mu.Lock()
	took := false
	if !s.closing {
		select {
		case s.slots <- struct{}{}:
			took = true
			s.wg.Add(1)
		default:
		}
	}
	s.mu.Unlock()
	if !took {
		s.stats.busy.Add(1)
		_ = s.nc.Publish(msg.Reply, append([]byte{msgBusy}, s.o.Name...))
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() { <-s.slots }()
		s.serve(msg.Reply, &req)
	}()
}
