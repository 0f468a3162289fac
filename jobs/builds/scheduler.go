package builds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"

	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/integrity"
	"github.com/pgrollup/pgrollup/rollup"
)

// Defaults of SchedulerOptions.
const (
	defaultTick               = 5 * time.Second
	minTick                   = 200 * time.Millisecond
	defaultRefreshKeyInterval = time.Minute
	defaultGCInterval         = 10 * time.Minute
	defaultGCGrace            = time.Hour
	defaultScrubInterval      = time.Minute
)

// SchedulerOptions configures a Scheduler.
type SchedulerOptions struct {
	// JetStream is where due builds are published.
	JetStream jetstream.JetStream
	// Catalog records the targets and what is queued for them.
	Catalog *catalog.Catalog
	// Targets are the configured rollups.
	Targets []Target
	// WarehouseDSN is used for refresh keys (refresh.sql).
	WarehouseDSN string
	// Storage is where the rollup files live; nil disables garbage collection.
	Storage rollup.Storage
	// Tick is how often schedules are checked.
	Tick time.Duration
	// RefreshKeyInterval is how often each refresh key is queried.
	RefreshKeyInterval time.Duration
	// GCInterval is how often unreferenced files are looked for; GCGrace is how long a
	// file must have been unreferenced (and unwritten) before it is deleted, so that
	// queries still reading a replaced version finish first.
	GCInterval, GCGrace time.Duration
	// ScrubInterval is how often the files of the active versions are compared
	// with storage's listing (Scrub); 0 means defaultScrubInterval.
	ScrubInterval time.Duration
	// Files acts on the broken files Scrub finds; nil: Scrub only logs them.
	Files *integrity.Checker
	Log   *slog.Logger
}

// Scheduler publishes the builds that are due. Every proxy runs one; identical
// decisions by several proxies produce identical job ids, which JetStream de-duplicates,
// and workers skip jobs that a newer version already satisfies.
type Scheduler struct {
	o       SchedulerOptions
	crons   map[string]cron.Schedule
	zones   map[string]*time.Location
	targets map[string]Target

	mu         sync.Mutex
	lastKey    map[string]time.Time // name -> last refresh key check
	unrefSince map[string]time.Time // storage key -> first seen unreferenced
}

// NewScheduler checks the targets' schedules and returns a scheduler; Run starts it.
func NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	if o.Tick <= 0 {
		o.Tick = tickFor(o.Targets)
	}
	if o.RefreshKeyInterval <= 0 {
		o.RefreshKeyInterval = defaultRefreshKeyInterval
	}
	if o.GCInterval <= 0 {
		o.GCInterval = defaultGCInterval
	}
	if o.GCGrace <= 0 {
		o.GCGrace = defaultGCGrace
	}
	if o.ScrubInterval <= 0 {
		o.ScrubInterval = defaultScrubInterval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{o: o, crons: map[string]cron.Schedule{}, zones: map[string]*time.Location{}, targets: map[string]Target{},
		lastKey: map[string]time.Time{}, unrefSince: map[string]time.Time{}}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	for _, t := range o.Targets {
		s.targets[t.Def.Name] = t
		if t.Refresh.Cron == "" {
			continue
		}
		sched, err := parser.Parse(t.Refresh.Cron)
		if err != nil {
			return nil, fmt.Errorf("rollup %s: refresh.cron: %w", t.Def.Name, err)
		}
		zone := t.Refresh.Timezone
		if zone == "" {
			zone = t.Def.BuildTimezone
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("rollup %s: refresh.timezone: %w", t.Def.Name, err)
		}
		s.crons[t.Def.Name], s.zones[t.Def.Name] = sched, loc
	}
	return s, nil
}

// SetFiles sets SchedulerOptions.Files, for a scheduler made before them; call
// it before Run.
func (s *Scheduler) SetFiles(files *integrity.Checker) { s.o.Files = files }

// Run queues the start-up builds, then checks the schedules every Tick, scrubs the
// active versions' files every ScrubInterval and collects garbage every GCInterval
// until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.Startup(ctx); err != nil {
		s.o.Log.Warn("start-up builds", "err", err)
	}
	tick := time.NewTicker(s.o.Tick)
	defer tick.Stop()
	gc := time.NewTicker(s.o.GCInterval)
	defer gc.Stop()
	scrub := time.NewTicker(s.o.ScrubInterval)
	defer scrub.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.Tick(ctx)
		case <-scrub.C:
			if s.o.Storage != nil {
				if err := s.Scrub(ctx); err != nil && ctx.Err() == nil {
					s.o.Log.Warn("scrubbing the rollup files", "err", err)
				}
			}
		case <-gc.C:
			if s.o.Storage != nil {
				if _, err := s.CollectGarbage(ctx); err != nil && ctx.Err() == nil {
					s.o.Log.Warn("garbage collection", "err", err)
				}
			}
		}
	}
}

// Startup records every target in the catalog, retires definitions that are no longer
// configured, and queues a build for every target without a version.
func (s *Scheduler) Startup(ctx context.Context) error {
	current := map[string]bool{}
	for _, t := range s.o.Targets {
		current[catalog.Key(t.Def.Name, t.Def.Identity())] = true
	}
	states, err := s.o.Catalog.List(ctx)
	if err != nil {
		return err
	}
	for _, st := range states {
		if current[catalog.Key(st.Name, st.Identity)] || !st.Retired.IsZero() {
			continue
		}
		if _, err := s.o.Catalog.Update(ctx, st.Name, st.Identity, func(st *rollup.State) error {
			if !st.Retired.IsZero() {
				return catalog.ErrNoChange
			}
			st.Retired = time.Now().UTC()
			return nil
		}); err != nil {
			return err
		}
		s.o.Log.Info("rollup definition retired; its files are collected after the grace period", "rollup", st.Name, "identity", st.Identity)
	}
	var firstErr error
	for _, t := range s.o.Targets {
		st, err := s.o.Catalog.Update(ctx, t.Def.Name, t.Def.Identity(), func(st *rollup.State) error {
			if st.Def != nil && st.Retired.IsZero() {
				return catalog.ErrNoChange
			}
			st.Def, st.Retired = t.Def, time.Time{}
			return nil
		})
		if err == nil && st.Active == nil && st.Building == nil {
			_, err = s.enqueue(ctx, t, ReasonStartup, time.Time{}, "startup", false)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// tickFor is how often the schedules of targets are checked: every
// defaultTick, or a fifth of the shortest refresh.every, so that a rollup
// refreshed every 5s is not built every 5 to 10 seconds (a lambda rollup's
// live answers read the warehouse's rows since its last build); not more
// often than minTick, since each check reads the catalog.
func tickFor(targets []Target) time.Duration {
	tick := defaultTick
	for _, t := range targets {
		if every := t.Refresh.Every.Std(); every > 0 && every/5 < tick {
			tick = max(every/5, minTick)
		}
	}
	return tick
}

// Tick queues every scheduled build that is due now.
func (s *Scheduler) Tick(ctx context.Context) {
	for _, t := range s.o.Targets {
		if err := s.check(ctx, t); err != nil && ctx.Err() == nil {
			s.o.Log.Warn("refresh check", "rollup", t.Def.Name, "err", err)
		}
	}
}

func (s *Scheduler) check(ctx context.Context, t Target) error {
	st, err := s.o.Catalog.Get(ctx, t.Def.Name, t.Def.Identity())
	if err != nil || st == nil {
		return err
	}
	now := time.Now()
	if st.Active == nil {
		// Without a version the start-up build is what is due, unless a broken file
		// took the version out of service: then a full rebuild.
		b := st.LastBroken()
		if b == nil || st.Building != nil || !st.QueuedAt.Before(b.At) || !st.Retired.IsZero() {
			return nil
		}
		if due := b.At.Add(brokenBackoff(st.Broken, b.At)); now.Before(due) {
			return nil
		}
		reason := ReasonBrokenFile
		if b.Kind == rollup.KindMismatch {
			reason = ReasonMismatch
		}
		_, err := s.enqueue(ctx, t, reason, b.At, "broken."+b.Version, false)
		return err
	}
	base := st.Active.Started
	inc := t.Refresh.Incremental
	if every := t.Refresh.Every.Std(); every > 0 {
		if due := base.Add(every); !now.Before(due) {
			_, err := s.enqueue(ctx, t, ReasonEvery, due, "every."+strconv.FormatInt(due.Unix(), 10), inc)
			return err
		}
	}
	if sched, ok := s.crons[t.Def.Name]; ok {
		if due := sched.Next(base.In(s.zones[t.Def.Name])); !now.Before(due) {
			_, err := s.enqueue(ctx, t, ReasonCron, due, "cron."+strconv.FormatInt(due.Unix(), 10), inc)
			return err
		}
	}
	if t.Refresh.SQL != "" {
		s.mu.Lock()
		last := s.lastKey[t.Def.Name]
		checkNow := now.Sub(last) >= s.o.RefreshKeyInterval
		if checkNow {
			s.lastKey[t.Def.Name] = now
		}
		s.mu.Unlock()
		if !checkNow {
			return nil
		}
		key, moved, err := s.refreshKey(ctx, t, st.Active.Windows)
		if err != nil {
			return fmt.Errorf("refresh key: %w", err)
		}
		if key != st.Active.Watermark {
			sum := sha256.Sum256([]byte(key))
			_, err := s.enqueue(ctx, t, ReasonRefreshKey, now, "key."+hex.EncodeToString(sum[:8]), inc)
			return err
		}
		if moved {
			// A rolling window must roll even when no row changed: the rows
			// leaving it are no longer the filter's.
			_, err := s.enqueue(ctx, t, ReasonWindow, now, "window."+strconv.FormatInt(now.Unix(), 10), false)
			return err
		}
	}
	return nil
}

// refreshKey reads t's refresh key on the warehouse, in build_timezone, and
// whether the windows would fold to other bounds now.
func (s *Scheduler) refreshKey(ctx context.Context, t Target, windows []rollup.Window) (string, bool, error) {
	cfg, err := pgconn.ParseConfig(s.o.WarehouseDSN)
	if err != nil {
		return "", false, fmt.Errorf("warehouse.dsn does not parse")
	}
	cfg.RuntimeParams["timezone"] = t.Def.BuildTimezone
	cfg.RuntimeParams["application_name"] = "pgrollup refresh key"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	key, err := rollup.RefreshKey(ctx, conn, t.Refresh.SQL)
	if err != nil || len(windows) == 0 {
		return key, false, err
	}
	moved, err := rollup.WindowMoved(ctx, conn, windows)
	return key, moved, err
}

// Refresh queues a full build of the named rollup now (manual refresh).
func (s *Scheduler) Refresh(ctx context.Context, name string) (*Job, error) {
	t, ok := s.targets[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownRollup, name)
	}
	now := time.Now().UTC()
	return s.enqueue(ctx, t, ReasonManual, now, "manual."+strconv.FormatInt(now.UnixNano(), 10), false)
}

// Target returns the configured target of the named rollup.
func (s *Scheduler) Target(name string) (Target, bool) {
	t, ok := s.targets[name]
	return t, ok
}

// Targets returns the configured targets, in configuration order.
func (s *Scheduler) Targets() []Target { return s.o.Targets }

// enqueue publishes a job and, unless JetStream already had it, marks the rollup queued.
func (s *Scheduler) enqueue(ctx context.Context, t Target, reason string, due time.Time, slot string, incremental bool) (*Job, error) {
	id := t.Def.Identity()
	job := &Job{
		ID: t.Def.Name + "." + id + "." + slot, Def: t.Def, Identity: id, RefreshSQL: t.Refresh.SQL,
		Incremental: incremental, UpdateWindow: t.Refresh.UpdateWindow.Std(), Reason: reason, Due: due.UTC(),
	}
	dup, err := publish(ctx, s.o.JetStream, job)
	if err != nil || dup {
		return job, err
	}
	s.o.Log.Info("build queued", "rollup", t.Def.Name, "reason", reason, "job", job.ID)
	_, err = s.o.Catalog.Update(ctx, t.Def.Name, id, func(st *rollup.State) error {
		if st.Def == nil {
			st.Def = t.Def
		}
		st.QueuedAt, st.QueuedReason = job.Queued, reason
		st.Status = idleStatus(st)
		return nil
	})
	return job, err
}

// ErrUnknownRollup is returned for a rollup name the configuration does not declare.
var ErrUnknownRollup = errors.New("unknown rollup")
