package remote

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// mailbox queues the worker's messages for one statement. Flow control
// bounds the queue: the worker sends at most Window chunks beyond what was
// consumed, and consecutive heartbeats collapse into one.
type mailbox struct {
	sub    *nats.Subscription
	mu     sync.Mutex
	msgs   []*nats.Msg
	signal chan struct{} // capacity 1: something was queued
	// connected, when set, is polled while waiting: with the connection to
	// NATS lost nothing more arrives (core NATS drops what is published
	// meanwhile), so a wait ends then rather than at its deadline.
	connected func() bool
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
	var poll <-chan time.Time
	if b.connected != nil {
		tk := time.NewTicker(disconnectPoll)
		defer tk.Stop()
		poll = tk.C
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
		case <-poll:
			if !b.connected() {
				return nil, errDisconnected
			}
		}
	}
}

func (b *mailbox) close() { _ = b.sub.Unsubscribe() }

var (
	errDeadline     = errors.New("deadline passed")
	errDisconnected = errors.New("disconnected from NATS")
)

// disconnectPoll is how often a wait checks the connection to NATS.
const disconnectPoll = 100 * time.Millisecond
