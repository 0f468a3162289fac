package serve

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/jobs/executor"
)

// autoAcceptTimeout is how long routing.answer_on: auto waits for a worker
// to take a rollup query before the proxy answers it itself: long enough for
// a worker on the same network to say yes, short against the statement.
const autoAcceptTimeout = 250 * time.Millisecond

// warnEvery bounds the warning about rollup queries no worker answered.
const warnEvery = time.Minute

// workerLack are the fallback reasons that say no worker answered, rather
// than that the query or its files failed (which the proxy's own DuckDB
// would fail too).
var workerLack = map[string]bool{
	executor.FallbackNoWorker:      true,
	executor.FallbackWorkersBusy:   true,
	executor.FallbackWorkerTimeout: true,
	executor.FallbackWorkerLost:    true,
	executor.FallbackNATSDown:      true,
	executor.FallbackWorkerRelease: true,
}

// preferWorkers sends rollup queries to the workers and, when none answers,
// runs them on local, the proxy's own DuckDB (routing.answer_on: auto); with
// local nil they fall back to the warehouse (answer_on: workers). Either way
// it counts and logs the queries no worker answered, and says so in the
// readiness details.
type preferWorkers struct {
	workers executor.Executor
	local   executor.Executor // nil: the statement falls back to the warehouse
	counted *prometheus.CounterVec
	log     *slog.Logger

	mu         sync.Mutex
	last       time.Time // the last query no worker answered
	lastReason string
	lastErr    error
	unlogged   int // such queries since the last warning
	warned     time.Time
}

func newPreferWorkers(workers, local executor.Executor, reg prometheus.Registerer, log *slog.Logger) (*preferWorkers, error) {
	p := &preferWorkers{workers: workers, local: local, log: log}
	p.counted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pgrollup_worker_fallbacks_total",
		Help: "Rollup queries no worker answered, by reason (no_worker, workers_busy, worker_timeout, worker_lost, nats_down, worker_release), and who answered them instead: the proxy (routing.answer_on: auto) or the warehouse (answer_on: workers).",
	}, []string{"reason", "answered_by"})
	if reg != nil {
		if err := reg.Register(p.counted); err != nil {
			return nil, fmt.Errorf("rollup executor metrics: %w", err)
		}
	}
	return p, nil
}

// Query implements executor.Executor.
func (p *preferWorkers) Query(ctx context.Context, q *executor.Query) (executor.Rows, error) {
	rows, err := p.workers.Query(ctx, q)
	if err == nil || ctx.Err() != nil {
		return rows, err
	}
	reason := executor.FallbackReason(err, "")
	if !workerLack[reason] {
		return nil, err
	}
	p.note(reason, err)
	if p.local == nil {
		return nil, err
	}
	return p.local.Query(ctx, q)
}

// answeredBy names who answers the queries no worker answered.
func (p *preferWorkers) answeredBy() string {
	if p.local == nil {
		return "warehouse"
	}
	return "proxy"
}

// note counts a query no worker answered and warns, at most every
// warnEvery, with how many there were since the last warning.
func (p *preferWorkers) note(reason string, err error) {
	by := p.answeredBy()
	p.counted.WithLabelValues(reason, by).Inc()
	now := time.Now()
	p.mu.Lock()
	p.last, p.lastReason, p.lastErr = now, reason, err
	p.unlogged++
	n := 0
	if now.Sub(p.warned) >= warnEvery {
		n, p.unlogged, p.warned = p.unlogged, 0, now
	}
	p.mu.Unlock()
	if n > 0 {
		p.log.Warn("rollup queries answered by the "+by+": no worker answered", "queries", n, "reason", reason, "err", err,
			"answer_on", map[bool]string{true: "workers", false: "auto"}[p.local == nil], "next_warning_in", warnEvery)
	}
}

// Details are the lines /readyz adds about workers: who answered rollup
// queries lately when no worker did.
func (p *preferWorkers) Details() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.IsZero() || time.Since(p.last) > warnEvery {
		return nil
	}
	return []string{fmt.Sprintf("rollup queries answered by the %s: no worker answered (last %s ago: %s: %v)",
		p.answeredBy(), time.Since(p.last).Round(time.Second), p.lastReason, p.lastErr)}
}
