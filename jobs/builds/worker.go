package builds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// Defaults of WorkerOptions.
const (
	DefaultAckWait    = 30 * time.Second
	defaultMaxDeliver = 20
)

// WorkerOptions configures a Worker.
type WorkerOptions struct {
	// JetStream is where the jobs are taken from.
	JetStream jetstream.JetStream
	// Catalog is where builds are claimed and their outcomes recorded.
	Catalog *catalog.Catalog
	// Builder builds the versions; its Storage must be the storage the catalog's files
	// live in.
	Builder *rollup.Builder
	// Concurrency is how many builds run at once (worker.concurrency).
	Concurrency int
	// AckWait is how long JetStream waits for an ack or an in-progress signal before it
	// redelivers a job, which is how long a killed worker's job waits for another. All
	// workers on one NATS must use the same value.
	AckWait time.Duration
	// MaxDeliver bounds the attempts of one job.
	MaxDeliver int
	// Name identifies the worker in the catalog and in logs.
	Name string
	Log  *slog.Logger
	// Metrics counts the builds; nil counts nothing.
	Metrics *Metrics
}

// Worker takes build jobs off the queue and runs them.
type Worker struct {
	o WorkerOptions
}

// NewWorker returns a worker; Run starts it.
func NewWorker(o WorkerOptions) *Worker {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = defaultMaxDeliver
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomID(3))
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("worker", o.Name)
	return &Worker{o: o}
}

// Run takes jobs until ctx ends, then waits for the builds in progress to stop: a build
// cut short by shutdown is handed back to the queue at once.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := consumer(ctx, w.o.JetStream, w.o.AckWait, w.o.MaxDeliver)
	if err != nil {
		return err
	}
	w.o.Log.Info("worker started", "concurrency", w.o.Concurrency)
	slots := make(chan struct{}, w.o.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		free := 1
		for free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		batch, err := cons.Fetch(free, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			for range free {
				<-slots
			}
			if ctx.Err() != nil {
				return nil
			}
			w.o.Log.Warn("fetch build jobs", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.handle(ctx, msg)
			}()
		}
		for ; got < free; got++ {
			<-slots
		}
	}
	return nil
}

// backoff is the delay before attempt n+1: 1s, 2s, 4s, ... capped at 5 minutes.
func backoff(attempt uint64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 9 {
		return 5 * time.Minute
	}
	d := time.Second << (attempt - 1)
	return min(d, 5*time.Minute)
}

// randomID is n random bytes in hex: what tells apart the names of versions
// built in the same second, and of workers on the same host.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleep waits for d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
