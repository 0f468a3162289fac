package remote

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// workerProcess runs pgrollup-worker with a config file until the test ends
// or it is killed.
func workerProcess(t *testing.T, bin, cfgPath, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--config", cfgPath, "--name", name, "--log-level", "debug")
	cmd.Stderr = jobstest.Writer{T: t, Name: name}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// waitAnswering polls until a worker answers d.
func waitAnswering(t *testing.T, c *Client, d *executor.Query) {
	t.Helper()
	var last error
	jobstest.WaitFor(t, 60*time.Second, "a worker answering", func() bool {
		rows, err := c.Query(context.Background(), d)
		if err == nil {
			_, last = jobstest.Collect(rows)
			return last == nil
		}
		last = err
		return false
	})
}

// TestQueryFaultWorkerKilled: a pgrollup-worker SIGKILLed while it computes
// an answer makes the statement fail before its first row (so it falls
// back); killed while rows stream, the rows end in an error, never short.
func TestQueryFaultWorkerKilled(t *testing.T) {
	bin := jobstest.BuildWorker(t)
	natsURL, _ := jobstest.NATSServer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nnats: {url: %q}\nworker: {concurrency: 2}\n",
		jobstest.Warehouse(t).DSN("postgres"), dir, natsURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "rollups") // the default storage, file://data_dir/rollups
	for key, q := range map[string]string{
		"tiny/part.parquet": `SELECT i AS id FROM range(10) r(i)`,
		"big/part.parquet":  `SELECT i AS id, repeat('x', 100) AS s FROM range(1000000) r(i)`,
	} {
		p := filepath.Join(store, key)
		if err := jobstest.MkdirFor(p); err != nil {
			t.Fatal(err)
		}
		jobstest.WriteParquet(t, p, q)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := NewClient(nc, ClientOptions{Timeout: 30 * time.Second, Heartbeat: 250 * time.Millisecond, Release: jobstest.WorkerRelease})
	ping := jobstest.Query(`SELECT count(*) FROM %s`, []string{"tiny/part.parquet"}, "count")

	t.Run("before the first row", func(t *testing.T) {
		w := workerProcess(t, bin, cfgPath, "A")
		waitAnswering(t, c, ping)
		res := make(chan error, 1)
		go func() {
			_, err := c.Query(context.Background(), jobstest.Query(slowSQL, []string{"tiny/part.parquet"}, "sum"))
			res <- err
		}()
		time.Sleep(time.Second) // the worker has taken the query and computes
		kill(t, w)
		killed := time.Now()
		err := <-res
		if jobstest.ReasonOf(err) != executor.FallbackWorkerLost {
			t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackWorkerLost)
		}
		if el := time.Since(killed); el > 3*time.Second {
			t.Errorf("noticed the dead worker after %s (heartbeat 250ms)", el)
		}
	})
	t.Run("while rows stream", func(t *testing.T) {
		w := workerProcess(t, bin, cfgPath, "B")
		waitAnswering(t, c, ping)
		rows, err := c.Query(context.Background(), jobstest.Query(`SELECT id, s FROM %s`, []string{"big/part.parquet"}, "id", "s"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < 1000 && rows.Next() {
			n++
		}
		kill(t, w)
		for rows.Next() {
			n++
		}
		err = rows.Err()
		rows.Close()
		if err == nil || n >= 1000000 {
			t.Fatalf("%d rows and err %v after the worker died", n, err)
		}
		if jobstest.ReasonOf(err) != executor.FallbackWorkerLost {
			t.Errorf("err = %v, want %s", err, executor.FallbackWorkerLost)
		}
		t.Logf("%d rows before %v", n, err)
	})
	t.Run("no worker left", func(t *testing.T) {
		started := time.Now()
		_, err := c.Query(context.Background(), ping)
		if jobstest.ReasonOf(err) != executor.FallbackNoWorker || time.Since(started) > time.Second {
			t.Fatalf("err = %v after %s, want a prompt %s fallback", err, time.Since(started), executor.FallbackNoWorker)
		}
	})
}

// externalWorker starts an external NATS server and a query server on it
// over a file:// storage holding name, a Parquet file of query's rows; it
// returns the server's URL and process, and the query server.
func externalWorker(t *testing.T, name, query string) (string, *exec.Cmd, *Server) {
	t.Helper()
	natsURL, ns := jobstest.NATSServer(t)
	storage, err := rollup.NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	jobstest.WriteParquet(t, filepath.Join(storage.Dir(), name), query)
	duck, err := duck.Open(1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { duck.Close() })
	cache, err := cache.New(cache.Options{Storage: storage})
	if err != nil {
		t.Fatal(err)
	}
	wnc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	qs, err := Serve(ctx, wnc, ServerOptions{Cache: cache, DuckDB: duck})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); qs.Wait(); wnc.Close() })
	return natsURL, ns, qs
}

// TestQueryFaultNATSStopped: with the NATS server gone, statements fail at
// once (and fall back), and an answer in flight ends in an error.
func TestQueryFaultNATSStopped(t *testing.T) {
	natsURL, ns, _ := externalWorker(t, "big.parquet", `SELECT i AS id, repeat('x', 100) AS s FROM range(1000000) r(i)`)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := NewClient(nc, ClientOptions{Timeout: 5 * time.Second, Heartbeat: 250 * time.Millisecond})
	big := jobstest.Query(`SELECT id, s FROM %s`, []string{"big.parquet"}, "id", "s")
	rows, err := c.Query(context.Background(), big)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < 1000 && rows.Next() {
		n++
	}
	kill(t, ns)
	stopped := time.Now()
	for rows.Next() {
		n++
	}
	err = rows.Err()
	rows.Close()
	if err == nil || n >= 1000000 {
		t.Fatalf("%d rows and err %v with NATS gone", n, err)
	}
	if r := jobstest.ReasonOf(err); r != executor.FallbackNATSDown {
		t.Errorf("err = %v (%s), want %s", err, r, executor.FallbackNATSDown)
	}
	if el := time.Since(stopped); el > 3*time.Second {
		t.Errorf("noticed after %s", el)
	}
	started := time.Now()
	_, err = c.Query(context.Background(), big)
	if jobstest.ReasonOf(err) != executor.FallbackNATSDown || time.Since(started) > 100*time.Millisecond {
		t.Fatalf("err = %v after %s, want an immediate %s fallback", err, time.Since(started), executor.FallbackNATSDown)
	}
}

// TestQueryFaultMissingFile: a Parquet file deleted from S3 before any worker
// cached it is a missing_file fallback.
func TestQueryFaultMissingFile(t *testing.T) {
	_, s3 := jobstest.StartMinIO(t)
	e := newQueryEnv(t, envOptions{storage: s3})
	cache, qs := e.cache, e.server
	jobstest.PutParquet(t, s3, `SELECT i AS id FROM range(10) r(i)`, "v1/a.parquet", "v1/b.parquet")
	if err := s3.Delete(context.Background(), "v1/b.parquet"); err != nil {
		t.Fatal(err)
	}
	d := jobstest.Query(`SELECT count(*) FROM %s`, []string{"v1/a.parquet", "v1/b.parquet"}, "count")
	_, err := e.client.Query(context.Background(), d)
	if jobstest.ReasonOf(err) != executor.FallbackMissingFile {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackMissingFile)
	}
	if s := qs.Stats(); s.Failed != 1 {
		t.Errorf("worker stats %+v", s)
	}
	// The file that was there is cached and released: a version whose
	// files are all cached still answers after storage lost them.
	if !cache.Cached("v1/a.parquet") {
		t.Error("the existing file was not kept")
	}
}

// TestFaultsFallBackToWarehouse runs statements through the proxy with the
// router's executor on NATS workers: a Parquet file deleted from storage, the
// worker killed, NATS stopped. Each statement gets the warehouse's answer,
// and in rollup-only mode an error.
func TestFaultsFallBackToWarehouse(t *testing.T) {
	bin := jobstest.BuildWorker(t)
	dsn := jobstest.NewDatabase(t, "faults",
		`CREATE TABLE orders AS SELECT i AS id, (ARRAY['paid','new','cancelled'])[i % 3 + 1] AS status, i % 11 AS quantity FROM generate_series(1, 500) i`)
	minioSrv, s3 := jobstest.StartMinIO(t)
	natsURL, ns := jobstest.NATSServer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	yaml := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nnats: {url: %q}\n"+
		"storage: {url: \"s3://%s/rollups\", s3: {endpoint: %q, access_key: %q, secret_key: %q, force_path_style: true}}\n",
		dsn, dir, natsURL, minioSrv.Bucket, minioSrv.Endpoint, minioSrv.AccessKey, minioSrv.SecretKey)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfgPath); err != nil {
		t.Fatal(err)
	}

	// The rollup, as the builder lays it out, from the warehouse's rows.
	const key = "by_status/v1/part.parquet"
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	var tableOID uint32
	if err := pg.QueryRow(ctx, "SELECT 'public.orders'::regclass::oid").Scan(&tableOID); err != nil {
		t.Fatal(err)
	}
	var values []string
	rs, err := pg.Query(ctx, "SELECT status, count(*), sum(quantity) FROM orders GROUP BY status")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var status string
		var count, sum int64
		if err := rs.Scan(&status, &count, &sum); err != nil {
			t.Fatal(err)
		}
		values = append(values, fmt.Sprintf("(%s, %d, %d)", sqlquote.Literal(status), count, sum))
	}
	if rs.Err() != nil {
		t.Fatal(rs.Err())
	}
	rollupRows := `SELECT * FROM (VALUES ` + strings.Join(values, ", ") + `) v(d0, m0_count, m1_sum)`
	cat := &rewrite.Catalog{
		BuildTimezone: "UTC", TextSortsBytewise: true,
		Tables: map[string]*rewrite.Table{"public.orders": {
			Name: "public.orders", OID: tableOID,
			Columns: []rewrite.Column{
				{Name: "id", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 1},
				{Name: "status", Type: rewrite.Type{OID: pgtype.TextOID, Typmod: -1}, AttNum: 2},
				{Name: "quantity", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 3},
			},
		}},
		Rollups: []*rewrite.RollupState{{
			Def:        config.Rollup{Name: "by_status", Table: "public.orders", Dimensions: []string{"status"}, Measures: []string{"count(*)", "sum(quantity)"}},
			Status:     rewrite.StatusActive,
			Version:    "v1",
			Partitions: []rewrite.Partition{{Files: []string{key}, Rows: int64(len(values))}},
			AllTime:    true,
			Rows:       int64(len(values)),
			BuiltAt:    time.Now(),
		}},
	}

	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client := NewClient(nc, ClientOptions{Timeout: 5 * time.Second, Heartbeat: 250 * time.Millisecond, Release: jobstest.WorkerRelease})
	type proxied struct {
		conn *pgx.Conn
		reg  *prometheus.Registry
	}
	startProxy := func(rollupOnly bool) proxied {
		reg := prometheus.NewRegistry()
		router := routing.NewRouter(cat, routing.Options{Executor: client, RollupOnly: rollupOnly, Registerer: reg})
		srv, err := proxy.NewServer(proxy.Options{WarehouseDSN: dsn, Router: router, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
		pu, _ := url.Parse(dsn)
		pu.Host = l.Addr().String()
		conn, err := pgx.Connect(ctx, pu.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return proxied{conn, reg}
	}
	normal, strict := startProxy(false), startProxy(true)

	const stmt = "SELECT status, count(*), sum(quantity) FROM orders GROUP BY status ORDER BY status"
	answer := func(conn *pgx.Conn) (string, error) {
		rows, err := conn.Query(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return "", err
			}
			lines = append(lines, fmt.Sprint(v...))
		}
		return strings.Join(lines, "\n"), rows.Err()
	}
	want, err := answer(pg)
	if err != nil {
		t.Fatal(err)
	}
	counter := func(reg *prometheus.Registry, name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	// check runs the statement through both proxies: the normal one must
	// answer as the warehouse does, by a rollup hit when hit is set and by
	// a fallback otherwise; the strict one must answer the same way on a
	// hit and fail otherwise.
	check := func(what string, hit bool) {
		t.Helper()
		hits, falls := counter(normal.reg, "pgrollup_rollup_hits_total"), counter(normal.reg, "pgrollup_rollup_fallbacks_total")
		got, err := answer(normal.conn)
		if err != nil || got != want {
			t.Fatalf("%s: through pgrollup %q, %v; warehouse %q", what, got, err, want)
		}
		dh, df := counter(normal.reg, "pgrollup_rollup_hits_total")-hits, counter(normal.reg, "pgrollup_rollup_fallbacks_total")-falls
		if hit && (dh != 1 || df != 0) || !hit && df != 1 {
			t.Errorf("%s: %v hits, %v fallbacks", what, dh, df)
		}
		got, err = answer(strict.conn)
		switch {
		case hit && (err != nil || got != want):
			t.Errorf("%s, rollup-only: %q, %v", what, got, err)
		case !hit && err == nil:
			t.Errorf("%s, rollup-only: answered %q instead of failing", what, got)
		case !hit:
			t.Logf("%s, rollup-only: %v", what, err)
		}
	}

	// The file is not in storage yet: the worker cannot download it.
	w := workerProcess(t, bin, cfgPath, "A")
	jobstest.WaitFor(t, 60*time.Second, "the worker", func() bool {
		_, err := client.Query(ctx, jobstest.Query(`SELECT 1 FROM %s`, []string{key}, "x"))
		return jobstest.ReasonOf(err) == executor.FallbackMissingFile
	})
	check("a file missing from storage", false)

	jobstest.PutParquet(t, s3, rollupRows, key)
	check("healthy", true)

	kill(t, w)
	check("the worker killed", false)

	workerProcess(t, bin, cfgPath, "B")
	waitAnswering(t, client, jobstest.Query(`SELECT 1 FROM %s`, []string{key}, "x"))
	check("a new worker", true)

	kill(t, ns)
	check("NATS stopped", false)
}

// TestQueryFaultNATSStoppedBeforeRows: a statement whose worker took it but
// sent no rows yet fails as soon as the connection to NATS is lost, not
// after four silent heartbeats, so that it falls back at once.
func TestQueryFaultNATSStoppedBeforeRows(t *testing.T) {
	natsURL, ns, qs := externalWorker(t, "tiny.parquet", `SELECT i AS id FROM range(10) r(i)`)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := NewClient(nc, ClientOptions{Timeout: 20 * time.Second, Heartbeat: 2 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := c.Query(context.Background(), jobstest.Query(slowSQL, []string{"tiny.parquet"}, "sum"))
		done <- err
	}()
	jobstest.WaitFor(t, 5*time.Second, "the worker to take the query", func() bool { return qs.Stats().Active == 1 })
	kill(t, ns)
	stopped := time.Now()
	select {
	case err := <-done:
		if r := jobstest.ReasonOf(err); r != executor.FallbackNATSDown {
			t.Errorf("err = %v (%s), want %s", err, r, executor.FallbackNATSDown)
		}
		if el := time.Since(stopped); el > time.Second {
			t.Errorf("noticed after %s; four heartbeats are 8s", el)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the query still waits 15s after NATS was stopped")
	}
	waitIdle(t, qs, 15*time.Second)
}
