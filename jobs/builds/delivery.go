package builds

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// delivery is one delivery of a build job to this worker, and the version
// it builds.
type delivery struct {
	w       *Worker
	msg     jetstream.Msg
	job     Job
	attempt uint64 // deliveries of the job so far, this one included
	version string
	log     *slog.Logger
}

// handle runs one job. The order is what makes builds safe to retry: claim the rollup
// in the catalog, build into a new version directory, record the version in the
// catalog, and only then ack.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	d, ok := w.receive(msg)
	if !ok {
		return
	}
	prev, ok := d.claim(ctx)
	if !ok {
		return
	}
	d.log.Info("build started", "reason", d.job.Reason, "version", d.version, "incremental", d.job.Incremental)
	started := time.Now()
	v, err := d.build(ctx, prev)
	elapsed := time.Since(started)
	// Record the outcome even while shutting down: the catalog must not claim a build
	// that no longer runs.
	recCtx, recCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer recCancel()
	rec := rollup.BuildRecord{Job: d.job.ID, Reason: d.job.Reason, Started: started.UTC(), Finished: time.Now().UTC(), Worker: w.o.Name}
	switch {
	case err != nil && ctx.Err() != nil:
		d.handBack(recCtx)
	case err != nil:
		d.failed(recCtx, rec, err, elapsed)
	default:
		d.succeeded(recCtx, rec, v, elapsed)
	}
}

// receive decodes a delivered job. A job that no worker could build as it
// was sent is terminated.
func (w *Worker) receive(msg jetstream.Msg) (*delivery, bool) {
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil || job.Def == nil {
		w.o.Log.Error("dropping a malformed build job", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return nil, false
	}
	meta, _ := msg.Metadata()
	attempt := uint64(1)
	if meta != nil {
		attempt = meta.NumDelivered
	}
	log := w.o.Log.With("rollup", job.Def.Name, "job", job.ID, "attempt", attempt)
	if job.Def.Identity() != job.Identity {
		log.Error("dropping a build job whose definition does not match its identity")
		_ = msg.Term()
		return nil, false
	}
	version := "v" + time.Now().UTC().Format("20060102T150405Z") + "-" + randomID(3)
	return &delivery{w: w, msg: msg, job: job, attempt: attempt, version: version, log: log}, true
}

// update changes the catalog record of the job's rollup definition.
func (d *delivery) update(ctx context.Context, fn func(*rollup.State) error) (*rollup.State, error) {
	return d.w.o.Catalog.Update(ctx, d.job.Def.Name, d.job.Identity, fn)
}

// claim records in the catalog that this delivery builds the rollup, and
// returns the active version, which an incremental build starts from. When a
// version built since the job was due satisfies it, another worker is
// building the rollup, or the catalog cannot be changed, it settles the job
// (ack, or a delayed redelivery) and returns false.
func (d *delivery) claim(ctx context.Context) (prev *rollup.Version, ok bool) {
	job, w := &d.job, d.w
	satisfied, busy := false, false
	_, err := d.update(ctx, func(st *rollup.State) error {
		satisfied, busy, prev = false, false, st.Active
		if st.Def == nil {
			st.Def = job.Def
		}
		if st.Active != nil && !st.Active.Started.Before(job.Due) {
			satisfied = true
			return catalog.ErrNoChange
		}
		if b := st.Building; b != nil && b.Job != job.ID && time.Since(b.Heartbeat) < 3*w.o.AckWait {
			busy = true
			return catalog.ErrNoChange
		}
		now := time.Now().UTC()
		st.Building = &rollup.Build{Job: job.ID, Worker: w.o.Name, Version: d.version, Started: now, Heartbeat: now}
		st.Status = rollup.StatusBuilding
		return nil
	})
	switch {
	case err != nil:
		d.log.Warn("cannot claim the build in the catalog; retrying later", "err", err)
		_ = d.msg.NakWithDelay(backoff(d.attempt))
		return nil, false
	case satisfied:
		d.log.Info("build job already satisfied by a newer version", "reason", job.Reason)
		_ = d.msg.Ack()
		return nil, false
	case busy:
		// Another worker is building this rollup; come back when it is likely done, and
		// then the job is either satisfied or still needed.
		d.log.Debug("rollup is being built elsewhere; job deferred")
		_ = d.msg.NakWithDelay(w.o.AckWait)
		return nil, false
	}
	return prev, true
}

// build runs the builder while the heartbeat keeps the job and the claim
// alive.
func (d *delivery) build(ctx context.Context, prev *rollup.Version) (*rollup.Version, error) {
	buildCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var p progress
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		d.heartbeat(buildCtx, &p)
	}()
	job := &d.job
	v, err := d.w.o.Builder.Build(buildCtx, rollup.Request{
		Def: job.Def, VersionID: d.version, RefreshSQL: job.RefreshSQL,
		Incremental: job.Incremental, UpdateWindow: job.UpdateWindow, Previous: prev,
		Progress: p.set,
	})
	cancel()
	<-hbDone
	return v, err
}

// progress is what the builder last said it was doing.
type progress struct {
	mu sync.Mutex
	s  string
}

func (p *progress) set(s string) {
	p.mu.Lock()
	p.s = s
	p.mu.Unlock()
}

func (p *progress) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s
}

// heartbeat, every third of AckWait until ctx ends, tells JetStream the job
// is still in progress, and the catalog that the build is alive and how far
// it got.
func (d *delivery) heartbeat(ctx context.Context, p *progress) {
	t := time.NewTicker(d.w.o.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Keep the job ours: without this JetStream would hand it to another worker.
		if err := d.msg.InProgress(); err != nil {
			d.log.Warn("in-progress ack failed", "err", err)
		}
		now := p.get()
		_, _ = d.update(ctx, func(st *rollup.State) error {
			if st.Building == nil || st.Building.Job != d.job.ID {
				return catalog.ErrNoChange
			}
			st.Building.Heartbeat, st.Building.Progress = time.Now().UTC(), now
			return nil
		})
	}
}

// handBack releases the claim of a build that shutdown interrupted and hands
// the job back to the queue at once.
func (d *delivery) handBack(ctx context.Context) {
	d.log.Info("build interrupted by shutdown; job handed back")
	_, _ = d.update(ctx, func(st *rollup.State) error {
		if st.Building == nil || st.Building.Job != d.job.ID {
			return catalog.ErrNoChange
		}
		st.Building = nil
		st.Status = idleStatus(st)
		return nil
	})
	_ = d.msg.Nak()
}

// failed records a failed build and retries it with backoff, unless the
// failure is permanent or this was the last attempt.
func (d *delivery) failed(ctx context.Context, rec rollup.BuildRecord, err error, elapsed time.Duration) {
	final := rollup.IsPermanent(err) || int(d.attempt) >= d.w.o.MaxDeliver
	rec.Result, rec.Error, rec.Final = "error", err.Error(), final
	_, uerr := d.update(ctx, func(st *rollup.State) error {
		if st.Building != nil && st.Building.Job == d.job.ID {
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
		d.log.Warn("cannot record the failed build", "err", uerr)
	}
	d.w.o.Metrics.build(d.job.Def.Name, "error", elapsed)
	if final {
		d.log.Error("build failed; not retrying", "err", err, "permanent", rollup.IsPermanent(err))
		_ = d.msg.Term()
		return
	}
	delay := backoff(d.attempt)
	d.log.Warn("build failed; retrying", "err", err, "in", delay)
	_ = d.msg.NakWithDelay(delay)
}

// succeeded activates the new version in the catalog and only then acks the
// job.
func (d *delivery) succeeded(ctx context.Context, rec rollup.BuildRecord, v *rollup.Version, elapsed time.Duration) {
	rec.Result, rec.Version, rec.Incremental = "success", v.ID, v.Incremental
	rec.Partitions = v.Rebuilt
	carried, err := d.activate(ctx, rec, v)
	if err != nil {
		// The files are stored but not recorded: retry; the garbage collector removes them.
		d.log.Warn("cannot record the new version; retrying the build", "err", err)
		_ = d.msg.NakWithDelay(backoff(d.attempt))
		return
	}
	if carried != "" {
		d.log.Warn("build not activated: it carries forward a broken file", "version", v.ID, "file", carried)
		d.w.o.Metrics.build(d.job.Def.Name, "error", elapsed)
		_ = d.msg.Term()
		return
	}
	if err := d.msg.DoubleAck(ctx); err != nil {
		d.log.Warn("ack failed; the job will be redelivered and found satisfied", "err", err)
	}
	d.w.o.Metrics.build(d.job.Def.Name, "success", elapsed)
	d.log.Info("build finished", "version", v.ID, "rows", v.Rows, "bytes", v.Bytes, "partitions", len(v.Rebuilt),
		"elapsed", elapsed.Round(time.Millisecond), "rows_per_sec", rowsPerSecond(v.Rows, elapsed))
}

// activate records the built version as the active one and returns "", or,
// when the version carries forward a file found broken meanwhile, records
// the build as failed for good and returns that file.
func (d *delivery) activate(ctx context.Context, rec rollup.BuildRecord, v *rollup.Version) (carried string, err error) {
	_, err = d.update(ctx, func(st *rollup.State) error {
		if st.Building != nil && st.Building.Job == d.job.ID {
			st.Building = nil
		}
		if st.Def == nil {
			st.Def = d.job.Def
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
	return carried, err
}

// rowsPerSecond is a build's throughput for its log line, rounded to a whole
// number of rows.
func rowsPerSecond(rows int64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(float64(rows) / elapsed.Seconds())
}
