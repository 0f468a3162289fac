package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// remoteRows is the proxy's side of one query. Next and Close run on the
// statement's goroutine; the keepalive timer and the cancel hook only read
// the control subject, fixed before they start, and the stopped flag.
type remoteRows struct {
	c     *Client
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
	// Until a worker takes the query it may have to give up sooner.
	acceptBy := deadline
	if c.o.AcceptTimeout > 0 && c.o.AcceptTimeout < c.o.Timeout {
		acceptBy = time.Now().Add(c.o.AcceptTimeout)
	}
	waitUntil := func() time.Time {
		if r.ctrl == "" {
			return acceptBy
		}
		return deadline
	}
	publish := func() error {
		if err := c.nc.PublishMsg(&nats.Msg{Subject: querySubject, Reply: inbox, Data: body}); err != nil {
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
	// Why the workers asked so far declined: busy, or of another release.
	var declined error
	for {
		msg, err := r.receive(waitUntil())
		if declined != nil && r.ctrl == "" && executor.FallbackReason(err, "") == executor.FallbackWorkerTimeout {
			err = declined
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
		kind := msg.Data[0]
		if kind == msgError && r.ctrl == "" {
			if err := decodeError(msg.Data[1:]); executor.FallbackReason(err, "") == executor.FallbackWorkerRelease {
				// A worker of another release refused; one of this
				// release may be in the queue group too.
				if c.otherRelease.allow() {
					c.o.Log.Warn("a worker of another release refused a rollup query", "err", err)
				}
				declined, kind = err, msgBusy
			} else {
				return over(err)
			}
		} else if kind == msgBusy {
			declined = executor.Fallback(executor.FallbackWorkersBusy, fmt.Errorf("every worker asked was busy for %s", c.o.Timeout))
		}
		switch kind {
		case msgBusy:
			// Another worker of the queue group may take it.
			wait := min(backoff, time.Until(waitUntil()))
			if wait <= 0 {
				return over(declined)
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
			declined = nil
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
		r.stop(false)
		return decodeError(data[1:])
	}
	return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("unexpected message %q from worker", data[0]))
}

// decodeError is the failure an 'E' message's body reports.
func decodeError(body []byte) error {
	var qe queryError
	if err := json.Unmarshal(body, &qe); err != nil {
		return executor.Fallback(executor.FallbackProtocol, fmt.Errorf("malformed error from worker: %w", err))
	}
	return executor.Fallback(qe.Reason, fmt.Errorf("worker: %s", qe.Message))
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
