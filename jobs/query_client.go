package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// QueryClientOptions configures a QueryClient.
type QueryClientOptions struct {
	// Subject defaults to QuerySubject.
	Subject string
	// Timeout is routing.worker_timeout: how long a statement waits for its
	// first rows (or its end) before it falls back. 0 means 5s.
	Timeout time.Duration
	// Window is how many chunks may be in flight or queued here; 0 means 4.
	Window int
	// ChunkBytes is the size at which a worker closes a chunk; 0 means 256 KiB
	// (a worker caps it at half the NATS server's max_payload).
	ChunkBytes int
	// Heartbeat is the liveness interval of both sides; a side silent for
	// four intervals is taken for gone. 0 means 1s.
	Heartbeat time.Duration
	Log       *slog.Logger
}

// QueryClient sends rollup routes to workers over NATS and streams their
// rows back: the proxy's executor.Executor when workers are scaled out.
// Decisions must name their files by storage key (routing.StorageKeys).
//
// Every failure before the first rows arrive is returned by Query, with a
// executor.FallbackError saying why, so that the statement falls back to the
// warehouse; a failure after rows were delivered is the rows' Err.
type QueryClient struct {
	nc *nats.Conn
	o  QueryClientOptions
}

// NewQueryClient returns a client over nc.
func NewQueryClient(nc *nats.Conn, o QueryClientOptions) *QueryClient {
	if o.Subject == "" {
		o.Subject = QuerySubject
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 4
	}
	o.Window = min(o.Window, maxWindow)
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 256 << 10
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	o.Heartbeat = min(max(o.Heartbeat, minHeartbeat), maxHeartbeat)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &QueryClient{nc: nc, o: o}
}

// Query implements executor.Executor. It returns once the first chunk of rows
// (or the end of an empty answer) has arrived.
func (c *QueryClient) Query(ctx context.Context, d *executor.Query) (executor.Rows, error) {
	fq, err := d.Split()
	if err != nil {
		return nil, executor.Fallback(executor.FallbackProtocol, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !c.nc.IsConnected() {
		return nil, executor.Fallback(executor.FallbackNATSDown, fmt.Errorf("not connected to NATS (%s)", c.nc.Status()))
	}
	req := queryRequest{
		V: protocolVersion, ID: randomID(8), Rollup: d.Rollup, Version: d.Version,
		Before: fq.Before, After: fq.After, Files: fq.Files,
		Window: c.o.Window, ChunkBytes: c.o.ChunkBytes, HeartbeatMS: c.o.Heartbeat.Milliseconds(),
	}
	for _, col := range d.Columns {
		req.Columns = append(req.Columns, queryColumn{Name: col.Name, DuckType: col.DuckType})
	}
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMS = max(time.Until(dl).Milliseconds(), 1)
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, executor.Fallback(executor.FallbackProtocol, err)
	}
	inbox := c.nc.NewInbox()
	mb := &mailbox{signal: make(chan struct{}, 1)}
	// A callback subscription rather than a synchronous one: the latter
	// allocates a channel of nats.Options.SubChanLen (64k) messages per
	// statement, while flow control bounds what can queue here anyway.
	sub, err := c.nc.Subscribe(inbox, mb.push)
	if err != nil {
		return nil, executor.Fallback(executor.FallbackNATSDown, err)
	}
	mb.sub = sub
	r := &remoteRows{c: c, ctx: ctx, mb: mb, id: req.ID, ncols: len(d.Columns), vals: make([]any, len(d.Columns))}
	r.granted.Store(uint64(c.o.Window))
	if err := r.start(body, inbox); err != nil {
		c.o.Log.Debug("rollup query failed", "query", req.ID, "rollup", d.Rollup, "reason", executor.FallbackReason(err, "other"), "err", err)
		return nil, err
	}
	return r, nil
}

// remoteRows is the proxy's side of one query. Next and Close run on the
// statement's goroutine; the keepalive timer and the cancel hook only read
// the control subject, fixed before they start, and the stopped flag.
type remoteRows struct {
	c     *QueryClient
	ctx   context.Context
	mb    *mailbox
	id    string
	ncols int

	ctrl     string      // the worker's control subject, once accepted
	stopped  atomic.Bool // no more control messages: done, failed or closed
	keep     *time.Timer
	keepMu   sync.Mutex
	unhook   func() bool // stops the ctx cancel hook
	finished bool        // the end message arrived
	closed   bool

	chunk   decoder       // the rest of the current chunk
	left    int           // rows left in it
	seq     uint64        // chunks received
	granted atomic.Uint64 // credit sent; the keepalive timer reads it
	rows    int64         // rows received
	vals    []any
	err     error
}

// start sends the request and waits, within the worker timeout, for a
// worker to take it and send the first rows.
func (r *remoteRows) start(body []byte, inbox string) error {
	c := r.c
	deadline := time.Now().Add(c.o.Timeout)
	publish := func() error {
		if err := c.nc.PublishMsg(&nats.Msg{Subject: c.o.Subject, Reply: inbox, Data: body}); err != nil {
			return executor.Fallback(executor.FallbackNATSDown, fmt.Errorf("send query: %w", err))
		}
		return nil
	}
	// fail gives up on an answer that may still be coming: a worker that
	// took the request is told to stop.
	fail := func(err error) error {
		if r.ctrl != "" {
			r.stop(true)
			r.unhook()
			r.mb.close()
		} else {
			go c.abandon(r.mb)
		}
		return err
	}
	// over ends an answer that has ended on the worker's side too.
	over := func(err error) error {
		r.stop(false)
		if r.unhook != nil {
			r.unhook()
		}
		r.mb.close()
		return err
	}
	if err := publish(); err != nil {
		r.mb.close()
		return err
	}
	backoff := time.Millisecond
	busy := false
	for {
		msg, err := r.receive(deadline)
		if busy && executor.FallbackReason(err, "") == executor.FallbackWorkerTimeout {
			err = executor.Fallback(executor.FallbackWorkersBusy, fmt.Errorf("workers busy for %s", c.o.Timeout))
		}
		if err != nil {
			return fail(err)
		}
		if isNoResponders(msg) {
			return over(errNoWorker)
		}
		if len(msg.Data) == 0 {
			return fail(executor.Fallback(executor.FallbackProtocol, errors.New("empty message from worker")))
		}
		switch msg.Data[0] {
		case msgBusy:
			// Another worker of the queue group may be free.
			busy = true
			wait := min(backoff, time.Until(deadline))
			if wait <= 0 {
				return over(executor.Fallback(executor.FallbackWorkersBusy, fmt.Errorf("workers busy for %s", c.o.Timeout)))
			}
			select {
			case <-time.After(wait):
			case <-r.ctx.Done():
				return over(r.ctx.Err())
			}
			backoff = min(2*backoff, 50*time.Millisecond)
			if err := publish(); err != nil {
				return fail(err)
			}
		case msgAccepted:
			busy = false
			if msg.Reply == "" {
				return fail(executor.Fallback(executor.FallbackProtocol, errors.New("worker accepted without a control subject")))
			}
			r.accepted(msg.Reply)
		case msgHeartbeat:
		case msgError:
			return over(r.handle(msg.Data))
		default:
			if r.ctrl == "" {
				return fail(executor.Fallback(executor.FallbackProtocol, fmt.Errorf("worker answered %q before accepting", msg.Data[0])))
			}
			if err := r.handle(msg.Data); err != nil {
				return fail(err)
			}
			return nil
		}
	}
}

// accepted starts the keepalives and the cancel hook for the worker's
// control subject.
func (r *remoteRows) accepted(ctrl string) {
	r.ctrl = ctrl
	hb := r.c.o.Heartbeat
	r.keepMu.Lock()
	r.keep = time.AfterFunc(hb, r.keepalive)
	r.keepMu.Unlock()
	r.unhook = context.AfterFunc(r.ctx, func() { r.stop(true) })
}

// keepalive repeats the credit every heartbeat: it tells the worker that
// this side still wants the answer, and makes up for a credit message lost
// on the way (core NATS delivers at most once).
func (r *remoteRows) keepalive() {
	if r.stopped.Load() {
		return
	}
	_ = r.c.nc.Publish(r.ctrl, creditMessage(r.granted.Load()))
	r.keepMu.Lock()
	if !r.stopped.Load() {
		r.keep.Reset(r.c.o.Heartbeat)
	}
	r.keepMu.Unlock()
}

// stop ends the control traffic, telling the worker to stop first if cancel.
// It is safe to call more than once and from the cancel hook.
func (r *remoteRows) stop(cancel bool) {
	if r.stopped.Swap(true) {
		return
	}
	if cancel && r.ctrl != "" {
		_ = r.c.nc.Publish(r.ctrl, []byte{ctlCancel})
	}
	r.keepMu.Lock()
	if r.keep != nil {
		r.keep.Stop()
	}
	r.keepMu.Unlock()
}

// receive waits for the worker's next message until deadline (zero: none),
// giving up on a worker silent for four heartbeats once it has accepted.
func (r *remoteRows) receive(deadline time.Time) (*nats.Msg, error) {
	limit := deadline
	silent := false
	if r.ctrl != "" {
		// Silence counts from now: a worker waiting for credit rightly said
		// nothing while this side was busy with earlier chunks.
		if s := time.Now().Add(missedHeartbeats * r.c.o.Heartbeat); limit.IsZero() || s.Before(limit) {
			limit, silent = s, true
		}
	}
	msg, err := r.mb.next(r.ctx, limit)
	switch {
	case err == nil:
		return msg, nil
	case r.ctx.Err() != nil:
		return nil, r.ctx.Err()
	case r.c.nc.IsConnected() && silent:
		return nil, executor.Fallback(executor.FallbackWorkerLost, fmt.Errorf("worker silent for %s", missedHeartbeats*r.c.o.Heartbeat))
	case r.c.nc.IsConnected():
		return nil, executor.Fallback(executor.FallbackWorkerTimeout, fmt.Errorf("no answer from a worker within %s", r.c.o.Timeout))
	}
	return nil, executor.Fallback(executor.FallbackNATSDown, fmt.Errorf("waiting for the worker: NATS %s", r.c.nc.Status()))
}

// mailbox queues the worker's messages for one statement. Flow control
// bounds the queue: the worker sends at most Window chunks beyond what was
// consumed, and consecutive heartbeats collapse into one.
type mailbox struct {
	sub    *nats.Subscription
	mu     sync.Mutex
	msgs   []*nats.Msg
	signal chan struct{} // capacity 1: something was queued
	// most is the longest the queue has been, for tests of flow control.
	most int
}

func (b *mailbox) push(m *nats.Msg) {
	b.mu.Lock()
	heartbeat := len(m.Data) == 1 && m.Data[0] == msgHeartbeat
	if n := len(b.msgs); !heartbeat || n == 0 || len(b.msgs[n-1].Data) != 1 || b.msgs[n-1].Data[0] != msgHeartbeat {
		b.msgs = append(b.msgs, m)
		b.most = max(b.most, len(b.msgs))
	}
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// next returns the next message, waiting until ctx ends or deadline passes
// (zero: no deadline); errDeadline reports the latter.
func (b *mailbox) next(ctx context.Context, deadline time.Time) (*nats.Msg, error) {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		b.mu.Lock()
		if len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs[0] = nil
			b.msgs = b.msgs[1:]
			b.mu.Unlock()
			return m, nil
		}
		b.mu.Unlock()
		select {
		case <-b.signal:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			return nil, errDeadline
		}
	}
}

func (b *mailbox) close() { _ = b.sub.Unsubscribe() }

var errDeadline = errors.New("deadline passed")

// handle takes a message after the worker accepted: rows, the end or an error.
func (r *remoteRows) handle(data []byte) error {
	switch data[0] {
	case msgHeartbeat:
		return nil
	case msgRows:
		d := decoder{b: data[1:]}
		seq, err1 := d.uvarint()
		n, err2 := d.uvarint()
		cols, err3 := d.uvarint()
		if err := errors.Join(err1, err2, err3); err != nil || seq != r.seq+1 || int(cols) != r.ncols || n == 0 {
			return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("malformed chunk %d after %d (%d columns, want %d)", seq, r.seq, cols, r.ncols))
		}
		r.seq, r.left, r.chunk = seq, int(n), d
		return nil
	case msgEnd:
		d := decoder{b: data[1:]}
		rows, err1 := d.uvarint()
		chunks, err2 := d.uvarint()
		if errors.Join(err1, err2) != nil || int64(rows) != r.rows || chunks != r.seq {
			return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("answer ended at %d rows in %d chunks; received %d in %d", rows, chunks, r.rows, r.seq))
		}
		r.finished = true
		r.stop(false)
		return nil
	case msgError:
		var qe queryError
		if err := json.Unmarshal(data[1:], &qe); err != nil {
			return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("malformed error from worker: %w", err))
		}
		r.stop(false)
		return executor.Fallback(qe.Reason, fmt.Errorf("worker: %s", qe.Message))
	}
	return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("unexpected message %q from worker", data[0]))
}

// Next implements executor.Rows.
func (r *remoteRows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	for r.left == 0 {
		if len(r.chunk.b) != 0 {
			r.err = executor.Fallback(executor.FallbackProtocol, fmt.Errorf("%d stray bytes after chunk %d", len(r.chunk.b), r.seq))
			r.stop(true)
			return false
		}
		if r.finished {
			return false
		}
		// The current chunk is consumed: the worker may send one more.
		if want := r.seq + uint64(r.c.o.Window); want > r.granted.Load() {
			r.granted.Store(want)
			if err := r.c.nc.Publish(r.ctrl, creditMessage(want)); err != nil {
				r.fail(executor.Fallback(executor.FallbackNATSDown, err))
				return false
			}
		}
		msg, err := r.receive(time.Time{})
		if err == nil && len(msg.Data) == 0 {
			err = executor.Fallback(executor.FallbackProtocol, errors.New("empty message from worker"))
		}
		if err == nil {
			err = r.handle(msg.Data)
		}
		if err != nil {
			r.fail(err)
			return false
		}
	}
	for i := range r.vals {
		v, err := r.chunk.value()
		if err != nil {
			r.fail(executor.Fallback(executor.FallbackProtocol, fmt.Errorf("chunk %d: %w", r.seq, err)))
			return false
		}
		r.vals[i] = v
	}
	r.left--
	r.rows++
	return true
}

func (r *remoteRows) fail(err error) {
	r.err = err
	r.stop(true)
}

// Values implements executor.Rows; the slice is reused by the next row.
func (r *remoteRows) Values() []any { return r.vals }

// Err implements executor.Rows.
func (r *remoteRows) Err() error { return r.err }

// Close implements executor.Rows: an answer not read to its end is cancelled
// on the worker.
func (r *remoteRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.stop(!r.finished)
	if r.unhook != nil {
		r.unhook()
	}
	r.mb.close()
	return nil
}

// abandon waits a little for a worker to accept a request its statement no
// longer waits for, and cancels it there. Without it the worker would stop
// anyway once the missing keepalives tell it the proxy is gone.
func (c *QueryClient) abandon(mb *mailbox) {
	defer mb.close()
	ctx, cancel := context.WithTimeout(context.Background(), missedHeartbeats*c.o.Heartbeat)
	defer cancel()
	for {
		msg, err := mb.next(ctx, time.Time{})
		if err != nil || len(msg.Data) == 0 {
			return
		}
		switch msg.Data[0] {
		case msgAccepted:
			if msg.Reply != "" {
				_ = c.nc.Publish(msg.Reply, []byte{ctlCancel})
			}
			return
		case msgBusy, msgError, msgEnd:
			return
		}
	}
}

// errNoWorker is the NATS server's word that no worker is subscribed.
var errNoWorker = executor.Fallback(executor.FallbackNoWorker, errors.New("no worker is answering rollup queries"))

// isNoResponders reports the NATS server's answer to a request nobody is
// subscribed for.
func isNoResponders(msg *nats.Msg) bool {
	return len(msg.Data) == 0 && msg.Header.Get("Status") == "503"
}
