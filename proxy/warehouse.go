package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// warehouse is where client sessions are relayed: the hosts, ports and TLS
// settings of the configured DSN. Its credentials are deliberately not kept:
// a client session authenticates with the client's own.
type warehouse struct {
	targets        []target
	connectTimeout time.Duration
	dial           pgconn.DialFunc
}

// target is one address to try, in the order the DSN lists them.
type target struct {
	network, address string
	tls              *tls.Config // nil: no TLS
	// tlsOptional is set when a later target is the same address without TLS,
	// as sslmode=prefer and allow produce: a server answering 'N' to
	// SSLRequest is then used in the clear on the same connection.
	tlsOptional bool
}

func newWarehouse(dsn string) (*warehouse, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("warehouse dsn: %w", err)
	}
	w := &warehouse{connectTimeout: cfg.ConnectTimeout, dial: cfg.DialFunc}
	if w.connectTimeout == 0 {
		w.connectTimeout = 10 * time.Second
	}
	add := func(host string, port uint16, tc *tls.Config) {
		network, address := pgconn.NetworkAddress(host, port)
		w.targets = append(w.targets, target{network: network, address: address, tls: tc})
	}
	add(cfg.Host, cfg.Port, cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		add(fb.Host, fb.Port, fb.TLSConfig)
	}
	for i := range w.targets {
		for _, later := range w.targets[i+1:] {
			if later.address == w.targets[i].address && later.tls == nil {
				w.targets[i].tlsOptional = true
			}
		}
	}
	// A target that only repeats an earlier address without TLS is covered
	// by tlsOptional and would only cost a second connection attempt.
	kept := w.targets[:0]
	seenOptional := map[string]bool{}
	for _, t := range w.targets {
		if t.tls == nil && seenOptional[t.address] {
			continue
		}
		if t.tlsOptional {
			seenOptional[t.address] = true
		}
		kept = append(kept, t)
	}
	w.targets = kept
	return w, nil
}

// alwaysTLS reports whether every connection to the warehouse uses TLS.
func (w *warehouse) alwaysTLS() bool {
	for _, t := range w.targets {
		if t.tls == nil || t.tlsOptional {
			return false
		}
	}
	return true
}

// connect opens a connection to the first reachable warehouse address,
// negotiating TLS as the DSN's sslmode asks.
func (w *warehouse) connect(ctx context.Context) (net.Conn, error) {
	ctx, cancel := detachedTimeout(ctx, w.connectTimeout)
	defer cancel()
	var errs []error
	for _, t := range w.targets {
		conn, err := w.connectTarget(ctx, t)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t.address, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (w *warehouse) connectTarget(ctx context.Context, t target) (net.Conn, error) {
	conn, err := w.dial(ctx, t.network, t.address)
	if err != nil {
		return nil, err
	}
	if t.tls == nil {
		return conn, nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], sslRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		conn.Close()
		return nil, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		conn.Close()
		return nil, err
	}
	switch answer[0] {
	case 'S':
		tc := tls.Client(conn, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		_ = conn.SetDeadline(time.Time{})
		return tc, nil
	case 'N':
		if !t.tlsOptional {
			conn.Close()
			return nil, errors.New("server refused TLS connection")
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	default:
		conn.Close()
		return nil, fmt.Errorf("unexpected answer %q to SSLRequest", answer[0])
	}
}

// cancel asks the warehouse to cancel the query running on backend pid.
// Postgres answers a CancelRequest by closing the connection, whatever the
// outcome, so there is nothing to read.
func (w *warehouse) cancel(ctx context.Context, pid uint32, secret []byte) error {
	conn, err := w.connect(ctx)
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	defer conn.Close()
	msg := make([]byte, 0, 12+len(secret))
	msg = binary.BigEndian.AppendUint32(msg, uint32(12+len(secret)))
	msg = binary.BigEndian.AppendUint32(msg, cancelRequestCode)
	msg = binary.BigEndian.AppendUint32(msg, pid)
	msg = append(msg, secret...)
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	// Wait for the server to close so the cancel has been delivered before
	// the client is told nothing (which is all Postgres tells it either).
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, conn)
	return nil
}

// detachedTimeout is context.WithTimeout(parent, d) without registering the
// child with parent: a context keeps the map of children its first child
// made for as long as it lives, which for a session's context is a
// twentieth of what an idle session costs. A goroutine carries the
// parent's end to the child instead, for as long as the child lives.
func detachedTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), d)
	if done := parent.Done(); done != nil {
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}
