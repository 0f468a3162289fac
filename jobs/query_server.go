package jobs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// QueryServerOptions configures ServeQueries.
type QueryServerOptions struct {
	// Cache makes the requested storage keys local files.
	Cache *Cache
	// DuckDB is the worker's one shared database (worker.duckdb_memory_limit).
	DuckDB *duck.DB
	// Concurrency is how many queries run at once (worker.concurrency); a
	// request beyond it is answered busy so that the proxy asks another
	// worker. 0 means 4.
	Concurrency int
	// Subject and Queue default to QuerySubject and QueryQueue.
	Subject, Queue string
	// Name identifies the worker in answers and logs.
	Name string
	// DrainTimeout is how long shutdown lets running queries finish before
	// it cancels them; 0 means 10s.
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// QueryServer answers rollup queries for proxies over NATS.
type QueryServer struct {
	o     QueryServerOptions
	nc    *nats.Conn
	sub   *nats.Subscription
	slots chan struct{}

	// base outlives the ctx given to ServeQueries so that shutdown can let
	// running queries finish; cancelAll ends them after DrainTimeout.
	base      context.Context
	cancelAll context.CancelFunc

	mu      sync.Mutex // orders closing against wg.Add
	closing bool
	wg      sync.WaitGroup
	done    chan struct{}

	stats queryServerCounters
}

// QueryServerStats counts what a QueryServer did.
type QueryServerStats struct {
	Accepted  int64 // queries started
	Busy      int64 // requests refused at the concurrency limit
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

type queryServerCounters struct {
	accepted, busy, completed, failed, cancelled, chunks, rows, active, maxAhead atomic.Int64
}

// Why a query stopped early, for logs and counters.
var (
	errCancelled  = errors.New("cancelled by the proxy")
	errClientGone = errors.New("the proxy fell silent")
	errShutdown   = errors.New("worker shutting down")
)

// ServeQueries subscribes to query requests in the workers' queue group and
// answers them until ctx ends; then it stops taking requests and lets the
// running queries finish for up to DrainTimeout. Wait blocks until then.
func ServeQueries(ctx context.Context, nc *nats.Conn, o QueryServerOptions) (*QueryServer, error) {
	if o.Cache == nil || o.DuckDB == nil {
		return nil, errors.New("query server: needs a cache and a DuckDB")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Subject == "" {
		o.Subject = QuerySubject
	}
	if o.Queue == "" {
		o.Queue = QueryQueue
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
	s := &QueryServer{o: o, nc: nc, slots: make(chan struct{}, o.Concurrency), done: make(chan struct{})}
	s.base, s.cancelAll = context.WithCancel(context.WithoutCancel(ctx))
	sub, err := nc.QueueSubscribe(o.Subject, o.Queue, s.onRequest)
	if err != nil {
		s.cancelAll()
		return nil, fmt.Errorf("query server: subscribe: %w", err)
	}
	// Requests sent after ServeQueries returns must find the subscription.
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		_ = sub.Unsubscribe()
		s.cancelAll()
		return nil, fmt.Errorf("query server: %w", err)
	}
	s.sub = sub
	o.Log.Info("answering rollup queries", "subject", o.Subject, "concurrency", o.Concurrency)
	go s.shutdownOn(ctx)
	return s, nil
}

func (s *QueryServer) shutdownOn(ctx context.Context) {
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
func (s *QueryServer) Wait() { <-s.done }

// Stats returns the counters.
func (s *QueryServer) Stats() QueryServerStats {
	c := &s.stats
	return QueryServerStats{
		Accepted: c.accepted.Load(), Busy: c.busy.Load(), Completed: c.completed.Load(), Failed: c.failed.Load(),
		Cancelled: c.cancelled.Load(), Chunks: c.chunks.Load(), Rows: c.rows.Load(), Active: c.active.Load(),
		MaxAhead: c.maxAhead.Load(),
	}
}

// onRequest runs on the subscription's goroutine: it only decides whether
// to take the request, so that a busy worker answers busy at once.
func (s *QueryServer) onRequest(msg *nats.Msg) {
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

// stream is the worker's side of one query.
type stream struct {
	mu       sync.Mutex
	credit   uint64        // chunks the proxy allows
	creditCh chan struct{} // closed and replaced when credit grows
	heard    time.Time     // when the proxy last spoke
	waiting  bool          // blocked on credit: no heartbeats then
	cancel   context.CancelCauseFunc
}

// onControl handles the proxy's control messages.
func (st *stream) onControl(msg *nats.Msg) {
	if len(msg.Data) == 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.heard = time.Now()
	switch msg.Data[0] {
	case ctlCredit:
		n, k := binary.Uvarint(msg.Data[1:])
		if k > 0 && n > st.credit {
			st.credit = n
			close(st.creditCh)
			st.creditCh = make(chan struct{})
		}
	case ctlCancel:
		st.cancel(errCancelled)
	}
}

// waitCredit blocks until chunk seq may be sent.
func (st *stream) waitCredit(ctx context.Context, seq uint64) error {
	for {
		st.mu.Lock()
		if st.credit >= seq {
			st.waiting = false
			st.mu.Unlock()
			return nil
		}
		st.waiting = true
		ch := st.creditCh
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// tick is called every heartbeat interval: it stops the query when the proxy
// has been silent too long, and otherwise says the worker is alive unless
// it is only waiting for the proxy.
func (st *stream) tick(limit time.Duration) (heartbeat bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if time.Since(st.heard) > limit {
		st.cancel(errClientGone)
		return false
	}
	return !st.waiting
}

// serve runs one accepted query and streams its rows to reply.
func (s *QueryServer) serve(reply string, req *queryRequest) {
	started := time.Now()
	s.stats.accepted.Add(1)
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	log := s.o.Log.With("query", req.ID, "rollup", req.Rollup, "version", req.Version)
	hb := req.heartbeat()

	ctx, cancel := context.WithCancelCause(s.base)
	defer cancel(nil)
	if req.TimeoutMS > 0 {
		// The proxy's own deadline plus a heartbeat: normally its cancel
		// arrives first.
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond+hb)
		defer stop()
	}
	st := &stream{credit: uint64(req.Window), creditCh: make(chan struct{}), heard: time.Now(), cancel: cancel}
	ctrl := s.nc.NewInbox()
	sub, err := s.nc.Subscribe(ctrl, st.onControl)
	if err != nil {
		s.stats.failed.Add(1)
		_ = s.nc.Publish(reply, encodeError(executor.FallbackProtocol, err))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishMsg(&nats.Msg{Subject: reply, Reply: ctrl, Data: append([]byte{msgAccepted}, s.o.Name...)}); err != nil {
		s.stats.failed.Add(1)
		return
	}

	tickDone := make(chan struct{})
	defer func() { <-tickDone }()
	go func() {
		defer close(tickDone)
		t := time.NewTicker(hb)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if st.tick(missedHeartbeats * hb) {
				_ = s.nc.Publish(reply, []byte{msgHeartbeat})
			}
		}
	}()
	// The ticker goroutine ends with ctx, which must end before it is waited for.
	defer cancel(nil)

	rows, chunks, err := s.stream(ctx, st, reply, req)
	elapsed := time.Since(started).Round(time.Microsecond)
	switch cause := context.Cause(ctx); {
	case err == nil:
		s.stats.completed.Add(1)
		log.Debug("query answered", "rows", rows, "chunks", chunks, "elapsed", elapsed)
	case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
		if cause == context.Canceled {
			cause = errShutdown
		}
		s.stats.cancelled.Add(1)
		log.Info("query stopped", "why", cause, "rows", rows, "elapsed", elapsed)
		// A proxy that cancelled or vanished does not read this; one that a
		// shutdown left waiting does, and falls back.
		_ = s.nc.Publish(reply, encodeError(executor.FallbackWorkerLost, cause))
	default:
		s.stats.failed.Add(1)
		reason := executor.FallbackReason(err, executor.FallbackQuery)
		log.Warn("query failed", "reason", reason, "err", err, "rows", rows, "elapsed", elapsed)
		_ = s.nc.Publish(reply, encodeError(reason, err))
	}
}

// flushAfter closes a chunk that has been filling this long, so that slowly
// produced rows still reach the proxy.
const flushAfter = 100 * time.Millisecond

// stream runs the query and sends its rows in chunks as credit allows, then
// the end message.
func (s *QueryServer) stream(ctx context.Context, st *stream, reply string, req *queryRequest) (rows int64, chunks uint64, err error) {
	fq := executor.FileQuery{Before: req.Before, After: req.After, Files: req.Files}
	res, err := runQuery(ctx, s.o.Cache, s.o.DuckDB, fq, len(req.Columns))
	if err != nil {
		return 0, 0, err
	}
	defer res.Close()
	limit := max(int(s.nc.MaxPayload()/2), minChunkBytes)
	chunkBytes := min(max(req.ChunkBytes, minChunkBytes), limit)
	ncols := len(req.Columns)
	// The buffer grows to the chunk size only for answers that need it.
	buf := make([]byte, 0, min(chunkBytes, 4<<10))
	seq := uint64(1)
	buf = rowsHeader(buf, seq, ncols)
	inChunk := 0
	opened := time.Now()
	send := func() error {
		if err := st.waitCredit(ctx, seq); err != nil {
			return err
		}
		finishRows(buf, seq, inChunk)
		if err := s.nc.Publish(reply, buf); err != nil {
			return fmt.Errorf("send rows: %w", err)
		}
		s.noteAhead(st, seq, req.Window)
		s.stats.chunks.Add(1)
		s.stats.rows.Add(int64(inChunk))
		chunks = seq
		seq++
		buf = rowsHeader(buf, seq, ncols)
		inChunk = 0
		opened = time.Now()
		return nil
	}
	for res.Next() {
		vals := res.Values()
		if len(vals) != ncols {
			return rows, chunks, executor.Fallback(executor.FallbackQuery, fmt.Errorf("query returned %d columns, want %d", len(vals), ncols))
		}
		for _, v := range vals {
			if buf, err = appendValue(buf, v); err != nil {
				return rows, chunks, executor.Fallback(executor.FallbackQuery, err)
			}
		}
		rows++
		inChunk++
		if len(buf) >= chunkBytes || (inChunk%1024 == 0 && time.Since(opened) > flushAfter) {
			if err := send(); err != nil {
				return rows, chunks, err
			}
		}
	}
	if err := res.Err(); err != nil {
		if ctx.Err() != nil {
			return rows, chunks, context.Cause(ctx)
		}
		return rows, chunks, executor.Fallback(executor.FallbackReason(err, executor.FallbackQuery), err)
	}
	if inChunk > 0 {
		if err := send(); err != nil {
			return rows, chunks, err
		}
	}
	if err := s.nc.Publish(reply, endMessage(rows, chunks)); err != nil {
		return rows, chunks, fmt.Errorf("send end: %w", err)
	}
	return rows, chunks, nil
}

// noteAhead records how far the worker has run ahead of the proxy's
// consumption: the proxy has consumed credit-window chunks.
func (s *QueryServer) noteAhead(st *stream, seq uint64, window int) {
	st.mu.Lock()
	consumed := int64(st.credit) - int64(window)
	st.mu.Unlock()
	ahead := int64(seq) - consumed
	for {
		cur := s.stats.maxAhead.Load()
		if ahead <= cur || s.stats.maxAhead.CompareAndSwap(cur, ahead) {
			return
		}
	}
}
