package builds

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/internal/minio"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/rollup"
)

// TestTwoProxiesTwoWorkers: two schedulers and two workers on one external NATS server
// run each due build once.
func TestTwoProxiesTwoWorkers(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "multi", jobstest.Shop...)
	url, _ := jobstest.NATSServer(t)
	dir := t.TempDir()
	cfg := jobstest.LoadConfig(t, dsn, dir, `
rollups:
  - name: every2s
    table: public.orders
    dimensions: [status]
    measures: [count(*)]
    refresh: {every: 2s}
  - name: once
    table: public.orders
    measures: [sum(amount)]
`)
	targets, err := Targets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fsDir, _ := cfg.Storage.LocalDir()
	st, err := rollup.NewFileStorage(fsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var cat *catalog.Catalog
	done := make(chan struct{}, 4)
	for i := range 2 {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, c := jobstest.Setup(t, nc)
		cat = c
		sched, err := NewScheduler(SchedulerOptions{JetStream: js, Catalog: c, Targets: targets, WarehouseDSN: dsn, Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		w := NewWorker(WorkerOptions{JetStream: js, Catalog: c, Concurrency: 2, AckWait: 5 * time.Second, Name: "w" + string(rune('A'+i)),
			Builder: &rollup.Builder{DSN: dsn, Storage: st, TempDir: t.TempDir()}})
		go func() { _ = w.Run(ctx); done <- struct{}{} }()
		go func() { _ = sched.Run(ctx); done <- struct{}{} }()
	}
	time.Sleep(9 * time.Second)
	cancel()
	for range 4 {
		<-done
	}
	once := jobstest.State(t, cat, targets[1].Def)
	if n := len(jobstest.Records(once, "")); n != 1 {
		t.Errorf("rollup without a schedule built %d times, want once: %+v", n, once.Builds)
	}
	ev := jobstest.State(t, cat, targets[0].Def)
	jobs := map[string]int{}
	workers := map[string]bool{}
	for _, b := range ev.Builds {
		jobs[b.Job]++
		workers[b.Worker] = true
		if b.Result != "success" {
			t.Errorf("build failed: %+v", b)
		}
	}
	for j, n := range jobs {
		if n > 1 {
			t.Errorf("job %s ran %d times", j, n)
		}
	}
	// Start-up plus one build per 2s slot (each starts ≥2s after the previous snapshot).
	if n := len(ev.Builds); n < 3 || n > 6 {
		t.Errorf("%d builds of every2s in 9s: %+v", n, ev.Builds)
	}
	t.Logf("%d builds by workers %v", len(ev.Builds), workers)
}

// TestWarehouseDown: a build against a stopped warehouse fails with a recorded error
// and is retried; the previous version keeps serving.
func TestWarehouseDown(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "down", jobstest.Shop...)
	dir := t.TempDir()
	cfg := jobstest.LoadConfig(t, dsn, dir, `
rollups:
  - name: r
    table: public.orders
    dimensions: [status]
    measures: [count(*)]
`)
	targets, _ := Targets(cfg)
	def := targets[0].Def
	js, cat := jobstest.Embedded(t, t.TempDir())
	st, _ := rollup.NewFileStorage(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	good := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, AckWait: 3 * time.Second, Builder: &rollup.Builder{DSN: dsn, Storage: st, TempDir: t.TempDir()}})
	sched, _ := NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn})
	gctx, gcancel := context.WithCancel(ctx)
	gdone := make(chan struct{})
	go func() { _ = good.Run(gctx); close(gdone) }()
	if err := sched.Startup(ctx); err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "first version", func() bool { s := jobstest.State(t, cat, def); return s != nil && s.Active != nil })
	gcancel()
	<-gdone
	v1 := jobstest.State(t, cat, def).Active.ID

	down := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, AckWait: 3 * time.Second,
		Builder: &rollup.Builder{DSN: "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1", Storage: st, TempDir: t.TempDir()}})
	go func() { _ = down.Run(ctx) }()
	if _, err := sched.Refresh(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "two failed attempts", func() bool { return len(jobstest.Records(jobstest.State(t, cat, def), "error")) >= 2 })
	s := jobstest.State(t, cat, def)
	if s.Active == nil || s.Active.ID != v1 {
		t.Fatalf("active version changed or vanished: %+v", s.Active)
	}
	if s.Status != rollup.StatusFailed && s.Status != rollup.StatusBuilding || !strings.Contains(s.LastError, "connect") {
		t.Fatalf("status %s, last error %q", s.Status, s.LastError)
	}
	errs := jobstest.Records(s, "error")
	if errs[0].Job != errs[1].Job || errs[0].Final {
		t.Errorf("retries are not of the same job: %+v", errs)
	}
}

// TestStorageErrorNeverActivates: a build whose upload fails leaves the previous
// version active.
func TestStorageErrorNeverActivates(t *testing.T) {
	dsn := jobstest.NewDatabase(t, "storage_err", jobstest.Shop...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mctx, mcancel := context.WithTimeout(ctx, 15*time.Minute)
	srv, err := minio.Start(mctx, t.TempDir())
	mcancel()
	if err != nil {
		t.Fatalf("needs MinIO: %v", err)
	}
	defer srv.Stop()
	s3 := func(bucket string) rollup.Storage {
		s, err := rollup.NewS3Storage(ctx, rollup.S3Options{Bucket: bucket, Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, ForcePathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg := jobstest.LoadConfig(t, dsn, t.TempDir(), "rollups:\n  - {name: r, table: public.orders, dimensions: [status], measures: [count(*)]}\n")
	targets, _ := Targets(cfg)
	def := targets[0].Def
	js, cat := jobstest.Embedded(t, t.TempDir())
	sched, _ := NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn})
	gctx, gcancel := context.WithCancel(ctx)
	gdone := make(chan struct{})
	good := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, AckWait: 3 * time.Second, Builder: &rollup.Builder{DSN: dsn, Storage: s3(srv.Bucket), TempDir: t.TempDir()}})
	go func() { _ = good.Run(gctx); close(gdone) }()
	if err := sched.Startup(ctx); err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "first version", func() bool { s := jobstest.State(t, cat, def); return s != nil && s.Active != nil })
	gcancel()
	<-gdone
	v1 := jobstest.State(t, cat, def).Active

	bad := NewWorker(WorkerOptions{JetStream: js, Catalog: cat, AckWait: 3 * time.Second, Builder: &rollup.Builder{DSN: dsn, Storage: s3("missing-bucket"), TempDir: t.TempDir()}})
	go func() { _ = bad.Run(ctx) }()
	if _, err := sched.Refresh(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "failed build", func() bool { return len(jobstest.Records(jobstest.State(t, cat, def), "error")) >= 1 })
	s := jobstest.State(t, cat, def)
	if s.Active == nil || s.Active.ID != v1.ID || !strings.Contains(s.LastError, "does not exist") {
		t.Fatalf("after a storage error: active %+v, last error %q", s.Active, s.LastError)
	}
}

// TestWorkerKilled: SIGKILL a pgrollup-worker process in the middle of a build; the
// job is redelivered to another worker and completes, and the previous version stays
// active throughout.
func TestWorkerKilled(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pgrollup-worker")
	build := exec.Command("go", "build", "-o", bin, "github.com/pgrollup/pgrollup/cmd/worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the worker: %v\n%s", err, out)
	}
	// slow_ok makes every partition of the build take about a second.
	dsn := jobstest.NewDatabase(t, "killed", append(jobstest.Shop,
		`CREATE FUNCTION slow_ok(id int) RETURNS boolean LANGUAGE sql AS $$ SELECT id % 50 <> 0 OR pg_sleep(0.05) IS NOT NULL $$`)...)
	url, _ := jobstest.NATSServer(t)
	dir := t.TempDir()
	yaml := "nats: {url: " + url + "}\nworker: {concurrency: 1}\nrollups:\n" +
		"  - {name: slow, table: public.orders, dimensions: [status], time_dimension: created_at, granularity: hour, measures: [count(*)], " +
		"filters: [\"slow_ok(id)\"], partition_granularity: day}\n"
	cfg := jobstest.LoadConfig(t, dsn, dir, yaml)
	if err := os.WriteFile(filepath.Join(dir, "pgrollup.yaml"), []byte("warehouse: {dsn: \""+dsn+"\"}\ndata_dir: "+dir+"\n"+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	targets, _ := Targets(cfg)
	def := targets[0].Def
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, cat := jobstest.Setup(t, nc)
	if _, err := consumer(context.Background(), js, 2*time.Second, defaultMaxDeliver); err != nil {
		t.Fatal(err)
	}
	startWorker := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "--config", filepath.Join(dir, "pgrollup.yaml"), "--name", name, "--ack-wait", "2s")
		cmd.Stderr = jobstest.Writer{T: t, Name: name}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	a := startWorker("A")
	sched, _ := NewScheduler(SchedulerOptions{JetStream: js, Catalog: cat, Targets: targets, WarehouseDSN: dsn})
	ctx := context.Background()
	if err := sched.Startup(ctx); err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 90*time.Second, "first version", func() bool { s := jobstest.State(t, cat, def); return s != nil && s.Active != nil })
	v1 := jobstest.State(t, cat, def).Active.ID

	job, err := sched.Refresh(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	jobstest.WaitFor(t, 30*time.Second, "worker A building", func() bool {
		s := jobstest.State(t, cat, def)
		return s.Building != nil && s.Building.Worker == "A" && strings.Contains(s.Building.Progress, "reading")
	})
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	startWorker("B")
	deadline := time.Now().Add(90 * time.Second)
	for {
		s := jobstest.State(t, cat, def)
		if s.Active == nil {
			t.Fatal("no active version during the rebuild")
		}
		if s.Active.ID != v1 {
			if s.Active.Started.Before(job.Due) {
				t.Fatalf("new version %s predates the refresh", s.Active.ID)
			}
			last := s.Builds[len(s.Builds)-1]
			if last.Worker != "B" || last.Job != job.ID || last.Result != "success" {
				t.Fatalf("last build %+v, want job %s done by B", last, job.ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed worker's job was not completed: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
