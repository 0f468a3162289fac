package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/local"
)

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
func (s *Server) serve(reply string, req *queryRequest) {
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
func (s *Server) stream(ctx context.Context, st *stream, reply string, req *queryRequest) (rows int64, chunks uint64, err error) {
	fq := executor.FileQuery{Before: req.Before, After: req.After, Files: req.Files}
	res, err := local.Run(ctx, s.o.Cache, s.o.DuckDB, fq, len(req.Columns))
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
func (s *Server) noteAhead(st *stream, seq uint64, window int) {
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
