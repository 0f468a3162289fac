package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// ClientOptions configures a Client.
type ClientOptions struct {
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
	// AcceptTimeout, when set and shorter than Timeout, is how long a
	// statement waits for a worker to take its query: a proxy that can
	// answer itself (routing.answer_on: auto) waits only this long before
	// it does. Once a worker has taken it, Timeout applies.
	AcceptTimeout time.Duration
	// Release is this proxy's release; workers refuse other releases.
	Release string
	Log     *slog.Logger
}

// Client sends rollup routes to workers over NATS and streams their
// rows back: the proxy's executor.Executor when workers are scaled out.
// Queries must name their files by storage key (routing.StorageKeys).
//
// Every failure before the first rows arrive is returned by Query, with a
// fallback reason saying why (executor.Fallback), so that the statement
// falls back to the warehouse; a failure after rows were delivered is the
// rows' Err.
type Client struct {
	nc *nats.Conn
	o  ClientOptions
	// otherRelease limits the warning about workers of another release.
	otherRelease rateLimit
}

// NewClient returns a client over nc.
func NewClient(nc *nats.Conn, o ClientOptions) *Client {
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
	c := &Client{nc: nc, o: o}
	c.otherRelease.every = time.Minute
	return c
}

// Query implements executor.Executor. It returns once the first chunk of rows
// (or the end of an empty answer) has arrived.
func (c *Client) Query(ctx context.Context, d *executor.Query) (executor.Rows, error) {
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
		V: protocolVersion, ID: requestID(), Release: c.o.Release, Rollup: d.Rollup, Version: d.Version,
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
	mb := &mailbox{signal: make(chan struct{}, 1), connected: c.nc.IsConnected}
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

// abandon waits a little for a worker to accept a request its statement no
// longer waits for, and cancels it there. Without it the worker would stop
// anyway once the missing keepalives tell it the proxy is gone.
func (c *Client) abandon(mb *mailbox) {
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
