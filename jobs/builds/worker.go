package builds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	DefaultMaxDeliver = 20
)

// WorkerOptions configures a Worker.
type WorkerOptions struct {
	JetStream jetstream.JetStream
	Catalog   *catalog.Catalog
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
	Name    string
	Log     *slog.Logger
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
		o.MaxDeliver = DefaultMaxDeliver
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
	cons, err := Consumer(ctx, w.o.JetStream, w.o.AckWait, w.o.MaxDeliver)
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

// handle runs one job. The order is what makes builds safe to retry: claim the rollup
// in the catalog, build into a new version directory, record the version in the
// catalog, and only then ack.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil || job.Def == nil {
		w.o.Log.Error("dropping a malformed build job", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	meta, _ := msg.Metadata()
	attempt := uint64(1)
	if meta != nil {
		attempt = meta.NumDelivered
	}
	def := job.Def
	log := w.o.Log.With("rollup", def.Name, "job", job.ID, "attempt", attempt)
	if def.Identity() != job.Identity {
		log.Error("dropping a build job whose definition does not match its identity")
		_ = msg.Term()
		return
	}

	versionID := "v" + time.Now().UTC().Format("20060102T150405Z") + "-" + randomID(3)
	var prev *rollup.Version
	satisfied, busy := false, false
	_, err := w.o.Catalog.Update(ctx, def.Name, job.Identity, func(st *rollup.State) error {
		satisfied, busy, prev = false, false, st.Active
		if st.Def == nil {
			st.Def = def
		}
		if st.Active != nil && !st.Active.Started.Before(job.Due) {
			satisfied = true
			return catalog.NoChange
		}
		if b := st.Building; b != nil && b.Job != job.ID && time.Since(b.Heartbeat) < 3*w.o.AckWait {
			busy = true
			return catalog.NoChange
		}
		now := time.Now().UTC()
		st.Building = &rollup.Build{Job: job.ID, Worker: w.o.Name, Version: versionID, Started: now, Heartbeat: now}
		st.Status = rollup.StatusBuilding
		return nil
	})
	switch {
	case err != nil:
		log.Warn("cannot claim the build in the catalog; retrying later", "err", err)
		_ = msg.NakWithDelay(backoff(attempt))
		return
	case satisfied:
		log.Info("build job already satisfied by a newer version", "reason", job.Reason)
		_ = msg.Ack()
		return
	case busy:
		// Another worker is building this rollup; come back when it is likely done, and
		// then the job is either satisfied or still needed.
		log.Debug("rollup is being built elsewhere; job deferred")
		_ = msg.NakWithDelay(w.o.AckWait)
		return
	}

	log.Info("build started", "reason", job.Reason, "version", versionID, "incremental", job.Incremental)
	started := time.Now()
	buildCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var progressMu sync.Mutex
	progress := ""
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(w.o.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-buildCtx.Done():
				return
			case <-t.C:
			}
			// Keep the job ours: without this JetStream would hand it to another worker.
			if err := msg.InProgress(); err != nil {
				log.Warn("in-progress ack failed", "err", err)
			}
			progressMu.Lock()
			p := progress
			progressMu.Unlock()
			_, _ = w.o.Catalog.Update(buildCtx, def.Name, job.Identity, func(st *rollup.State) error {
				if st.Building == nil || st.Building.Job != job.ID {
					return catalog.NoChange
				}
				st.Building.Heartbeat, st.Building.Progress = time.Now().UTC(), p
				return nil
			})
		}
	}()
	v, err := w.o.Builder.Build(buildCtx, rollup.Request{
		Def: def, VersionID: versionID, RefreshSQL: job.RefreshSQL,
		Incremental: job.Incremental, UpdateWindow: job.UpdateWindow, Previous: prev,
		Progress: func(s string) {
			progressMu.Lock()
			progress = s
			progressMu.Unlock()
		},
	})
	cancel()
	<-hbDone
	elapsed := time.Since(started)
	// Record the outcome even while shutting down: the catalog must not claim a build
	// that no longer runs.
	recCtx, recCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer recCancel()
	rec := rollup.BuildRecord{Job: job.ID, Reason: job.Reason, Started: started.UTC(), Finished: time.Now().UTC(), Worker: w.o.Name}

	if err != nil {
		if ctx.Err() != nil {
			log.Info("build interrupted by shutdown; job handed back")
			_, _ = w.o.Catalog.Update(recCtx, def.Name, job.Identity, func(st *rollup.State) error {
				if st.Building == nil || st.Building.Job != job.ID {
					return catalog.NoChange
				}
				st.Building = nil
				st.Status = idleStatus(st)
				return nil
			})
			_ = msg.Nak()
			return
		}
		final := rollup.IsPermanent(err) || int(attempt) >= w.o.MaxDeliver
		rec.Result, rec.Error, rec.Final = "error", err.Error(), final
		_, uerr := w.o.Catalog.Update(recCtx, def.Name, job.Identity, func(st *rollup.State) error {
			if st.Building != nil && st.Building.Job == job.ID {
				st.Building = nil
			}
			st.LastError, st.LastErrorAt = err.Error(), time.Now().UTC()
			if st.Building == nil {
				st.Status = rollup.StatusFailed
			}
			st.AddBuild(rec)
			return nil
		})
		if uerr != nil {
			log.Warn("cannot record the failed build", "err", uerr)
		}
		w.o.Metrics.build(def.Name, "error", elapsed)
		if final {
			log.Error("build failed; not retrying", "err", err, "permanent", rollup.IsPermanent(err))
			_ = msg.Term()
			return
		}
		delay := backoff(attempt)
		log.Warn("build failed; retrying", "err", err, "in", delay)
		_ = msg.NakWithDelay(delay)
		return
	}

	rec.Result, rec.Version, rec.Incremental = "success", v.ID, v.Incremental
	rec.Partitions = v.Rebuilt
	carried := ""
	_, err = w.o.Catalog.Update(recCtx, def.Name, job.Identity, func(st *rollup.State) error {
		if st.Building != nil && st.Building.Job == job.ID {
			st.Building = nil
		}
		if st.Def == nil {
			st.Def = def
		}
		// An incremental build that started before a file of its previous version
		// was found broken carries that file forward: it must not answer. The
		// rebuild the broken file queued is a full one.
		if carried = st.BrokenFileOf(v); carried != "" {
			msg := fmt.Sprintf("version %s not activated: it carries forward %s, found broken meanwhile", v.ID, carried)
			r := rec
			r.Result, r.Error, r.Final = "error", msg, true
			st.LastError, st.LastErrorAt = msg, time.Now().UTC()
			st.Status = idleStatus(st)
			st.AddBuild(r)
			return nil
		}
		// Two builds may overlap after a takeover; the one with the later snapshot wins.
		if st.Active == nil || !v.Started.Before(st.Active.Started) {
			st.Active = v
		}
		st.LastError, st.LastErrorAt = "", time.Time{}
		if !st.QueuedAt.After(v.Started) {
			st.QueuedAt, st.QueuedReason = time.Time{}, ""
		}
		st.Status = idleStatus(st)
		st.AddBuild(rec)
		return nil
	})
	if err != nil {
		// The files are stored but not recorded: retry; the garbage collector removes them.
		log.Warn("cannot record the new version; retrying the build", "err", err)
		_ = msg.NakWithDelay(backoff(attempt))
		return
	}
	if carried != "" {
		log.Warn("build not activated: it carries forward a broken file", "version", v.ID, "file", carried)
		w.o.Metrics.build(def.Name, "error", elapsed)
		_ = msg.Term()
		return
	}
	if err := msg.DoubleAck(recCtx); err != nil {
		log.Warn("ack failed; the job will be redelivered and found satisfied", "err", err)
	}
	w.o.Metrics.build(def.Name, "success", elapsed)
	log.Info("build finished", "version", v.ID, "rows", v.Rows, "bytes", v.Bytes, "partitions", len(v.Rebuilt),
		"elapsed", elapsed.Round(time.Millisecond), "rows_per_sec", rowsPerSecond(v.Rows, elapsed))
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

// rowsPerSecond is a build's throughput for its log line, rounded to a whole
// number of rows.
func rowsPerSecond(rows int64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(float64(rows) / elapsed.Seconds())
}
