package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// When the warehouse is unreachable a session keeps what does not need it:
// statements a rollup answers are answered, and everything else gets an
// error saying the warehouse is unreachable, after which the session goes
// on. A session's warehouse connection that dies (a shutdown, a restart, a
// network fault) leaves the session detached rather than ended; the next
// statement that needs the warehouse opens a new connection for it once the
// warehouse is back (session_reattach.go). Clients can even log in meanwhile:
// the proxy authenticates them itself with the SCRAM verifiers it holds
// (verifiers.go), and starts their sessions from what the last session of the
// same login read at its start (logins.go).
//
// warehouseMonitor decides whether the warehouse is up. Sessions report
// what looks like an outage, and the monitor confirms it by asking for a
// session as the service account (knockCheck): a warehouse that answers,
// with a request for the password or an error such as too many connections,
// is up; one that cannot be reached or says it is starting up or shutting
// down is not. While it is down the monitor checks four times a second, so that
// sessions relay again soon after it is back (a refused connection costs
// the warehouse's host next to nothing); while up every few seconds, so that
// pgrollup_warehouse_up follows it without traffic.

const (
	// checkEveryUp and checkEveryDown are how often the monitor connects.
	checkEveryUp   = 5 * time.Second
	checkEveryDown = 250 * time.Millisecond
	// checkTimeout bounds one check: a warehouse that takes longer to
	// accept a connection is as good as down for clients.
	checkTimeout = 5 * time.Second
)

// warehouseMonitor follows whether the warehouse accepts connections.
type warehouseMonitor struct {
	check func(ctx context.Context) error
	gauge prometheus.Gauge
	log   *slog.Logger

	up   atomic.Bool
	wake chan struct{}

	mu        sync.Mutex
	downSince time.Time
	// running is the check under way, which confirm waits for rather than
	// start another; nil when none.
	running *monitorCheck
}

type monitorCheck struct {
	done chan struct{}
	up   bool
}

// newWarehouseMonitor starts out believing the warehouse up: a session that
// finds it down says so at once.
func newWarehouseMonitor(check func(ctx context.Context) error, gauge prometheus.Gauge, log *slog.Logger) *warehouseMonitor {
	m := &warehouseMonitor{check: check, gauge: gauge, log: log, wake: make(chan struct{}, 1)}
	m.up.Store(true)
	gauge.Set(1)
	return m
}

// knockCheck returns a check that asks the warehouse for a session as the
// service account of dsn and leaves at the first answer: a request for
// credentials (or a protocol version to negotiate) says the warehouse
// takes sessions, an error says what answers makes of it. Postgres refuses
// sessions while it starts, recovers or shuts down before it asks for
// credentials, so this learns what a whole login would, without the login:
// no SCRAM key derived from the password (its 4,096 rounds of PBKDF2 every
// few seconds) and no session started on the warehouse, whose backend ends
// quietly on a client that leaves during authentication.
func knockCheck(w *warehouse, dsn string) (func(ctx context.Context) error, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	params := map[string]string{"user": cfg.User, "database": cfg.Database}
	for name, value := range cfg.RuntimeParams {
		params[name] = value
	}
	startup := startupMessage(params)
	return func(ctx context.Context) error {
		conn, err := w.connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if deadline, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(deadline)
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		if _, err := conn.Write(startup); err != nil {
			return err
		}
		return knockAnswer(conn)
	}, nil
}

// maxKnockError bounds the ErrorResponse knockAnswer reads.
const maxKnockError = 64 << 10

// knockAnswer reads the warehouse's first answer to a StartupMessage: nil
// when it asks for credentials or negotiates the protocol version, its
// error when it refuses, and an error for anything else.
func knockAnswer(r io.Reader) error {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return fmt.Errorf("the answer to a startup: %w", err)
	}
	length := int(binary.BigEndian.Uint32(head[1:]))
	switch head[0] {
	case 'R', 'v':
		return nil
	case 'E':
		if length < 4 || length-4 > maxKnockError {
			return fmt.Errorf("an error of %d bytes in answer to a startup", length)
		}
		body := make([]byte, length-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("the error answering a startup: %w", err)
		}
		return &pgconn.PgError{Severity: errorField(body, 'S'), Code: errorField(body, 'C'), Message: errorField(body, 'M')}
	}
	return fmt.Errorf("unexpected message %q in answer to a startup", head[0])
}

// isUp reports whether the warehouse was up at the last check.
func (m *warehouseMonitor) isUp() bool { return m.up.Load() }

// suspect asks for a check soon: a session found the warehouse unreachable.
func (m *warehouseMonitor) suspect() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// confirm checks now, or waits for the check under way, and reports
// whether the warehouse is up.
func (m *warehouseMonitor) confirm(ctx context.Context) bool {
	m.mu.Lock()
	c := m.running
	if c == nil {
		c = &monitorCheck{done: make(chan struct{})}
		m.running = c
		m.mu.Unlock()
		c.up = m.checkNow(ctx)
		m.mu.Lock()
		m.running = nil
		m.mu.Unlock()
		close(c.done)
		return c.up
	}
	m.mu.Unlock()
	select {
	case <-c.done:
		return c.up
	case <-ctx.Done():
		return m.isUp()
	}
}

// checkNow connects once and records the outcome.
func (m *warehouseMonitor) checkNow(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := m.check(ctx)
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Our own shutdown, not the warehouse's: nothing learned.
		return m.isUp()
	}
	up := answers(err)
	m.set(up, err)
	return up
}

// answers reports whether a connection attempt that ended with err reached
// a warehouse that accepts sessions.
func answers(err error) bool {
	if err == nil {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case sqlstate.CannotConnectNow, sqlstate.AdminShutdown, sqlstate.CrashShutdown, sqlstate.ConnectionFailure,
			sqlstate.SQLClientUnableToEstablishSQLConnection, sqlstate.SQLServerRejectedEstablishmentOfSQLConnection:
			return false
		}
		return true
	}
	return false
}

// set records the warehouse as up or down, logging the change: a warning
// when an outage starts, and when it ends how long it lasted.
func (m *warehouseMonitor) set(up bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up.Load() == up {
		return
	}
	m.up.Store(up)
	if up {
		m.gauge.Set(1)
		m.log.Info("the warehouse is reachable again; sessions relay to it as they need it",
			"outage", time.Since(m.downSince).Round(time.Millisecond))
		return
	}
	m.gauge.Set(0)
	m.downSince = time.Now()
	// The loop may be waiting out the interval of an up warehouse.
	m.suspect()
	m.log.Warn("the warehouse is unreachable; statements a rollup answers are still answered, others get an error until it is back", "err", err)
}

// run checks periodically, and at once when a session suspects an outage,
// until ctx ends.
func (m *warehouseMonitor) run(ctx context.Context) {
	for {
		every := checkEveryUp
		if !m.isUp() {
			every = checkEveryDown
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-m.wake:
			t.Stop()
		}
		m.confirm(ctx)
	}
}
