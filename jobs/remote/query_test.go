package remote

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// allTypes creates a table with a column of every type DuckDB hands the
// proxy, extreme and NULL values included, and selects it.
const allTypesRows = `SELECT * FROM (VALUES
	(1, true, CAST('-128' AS TINYINT), CAST('-32768' AS SMALLINT), CAST('-2147483648' AS INTEGER), CAST('-9223372036854775808' AS BIGINT),
	 CAST('-170141183460469231731687303715884105727' AS HUGEINT), 0::UTINYINT, 0::USMALLINT, 0::UINTEGER, 0::UBIGINT,
	 'nan'::FLOAT, 'nan'::DOUBLE, CAST('-999.9' AS DECIMAL(4,1)), CAST('-9999999.99' AS DECIMAL(9,2)), CAST('-99999999999999.9999' AS DECIMAL(18,4)),
	 CAST('-9999999999999999999999999999.9999999999' AS DECIMAL(38,10)), '', ''::BLOB,
	 DATE '0001-01-01', TIMESTAMP '0001-01-01 00:00:00', TIMESTAMPTZ '1900-01-01 00:00:00+00', TIME '00:00:00',
	 INTERVAL '1 month 2 days 3 microseconds', '00000000-0000-0000-0000-000000000000'::UUID),
	(2, false, 127::TINYINT, 32767::SMALLINT, 2147483647::INTEGER, 9223372036854775807::BIGINT,
	 170141183460469231731687303715884105727::HUGEINT, 255::UTINYINT, 65535::USMALLINT, 4294967295::UINTEGER, 18446744073709551615::UBIGINT,
	 'inf'::FLOAT, '-inf'::DOUBLE, 999.9::DECIMAL(4,1), 9999999.99::DECIMAL(9,2), 99999999999999.9999::DECIMAL(18,4),
	 9999999999999999999999999999.9999999999::DECIMAL(38,10), 'ünïcødé ✓ ''quoted'' \ back', '\x00\xFF'::BLOB,
	 DATE '9999-12-31', TIMESTAMP '9999-12-31 23:59:59.999999', TIMESTAMPTZ '2024-03-31 01:59:59.123456+00', TIME '23:59:59.999999',
	 INTERVAL '178000000 years 11 months', 'ffffffff-ffff-ffff-ffff-ffffffffffff'::UUID),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL),
	(4, true, 0::TINYINT, 0::SMALLINT, 0::INTEGER, 0::BIGINT, 0::HUGEINT, 1::UTINYINT, 1::USMALLINT, 1::UINTEGER, 1::UBIGINT,
	 '-0'::FLOAT, '-0'::DOUBLE, 0.0::DECIMAL(4,1), 0.01::DECIMAL(9,2), CAST('-0.0001' AS DECIMAL(18,4)), 0.0000000001::DECIMAL(38,10),
	 'x', 'y'::BLOB, DATE '2024-02-29', TIMESTAMP '2024-10-27 02:30:00', TIMESTAMPTZ '2024-10-27 02:30:00+02', TIME '12:00:00',
	 INTERVAL '0 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID)
) v(id, b, i8, i16, i32, i64, h, u8, u16, u32, u64, f32, f64, d41, d92, d184, d3810, s, bl, dt, ts, tstz, tm, iv, uu)`

// TestQueryExactOverNATS: the same decisions answered in-process and over
// NATS yield identical values, type for type.
func TestQueryExactOverNATS(t *testing.T) {
	e := newQueryEnv(t, envOptions{})
	key, path := e.file(t, "r/id/v1/part-all.parquet", allTypesRows+` UNION ALL
		SELECT 100 + i, i % 2 = 0, CAST(i % 100 AS TINYINT), CAST(i AS SMALLINT), CAST(i * 1000 AS INTEGER), i * 1000000000000,
			CAST(i AS HUGEINT) * 100000000000000000000, CAST(i % 200 AS UTINYINT), CAST(i AS USMALLINT), CAST(i AS UINTEGER),
			CAST(i AS UBIGINT), CAST(i / 3 AS FLOAT), i / 7, CAST((i % 999) / 10 AS DECIMAL(4,1)), CAST(i / 100 AS DECIMAL(9,2)),
			CAST(i / 10000 AS DECIMAL(18,4)), CAST(i / 3 AS DECIMAL(38,10)), 'row ' || i, CAST('b' || i AS BLOB),
			CAST(DATE '2020-01-01' + i::INTEGER AS DATE), TIMESTAMP '2020-01-01' + i * INTERVAL 37 MINUTE,
			TIMESTAMPTZ '2020-03-08 00:00:00+00' + i * INTERVAL 1 HOUR, CAST(TIME '00:00:00' + i * INTERVAL 1 SECOND AS TIME),
			i * INTERVAL 1 DAY, uuid()
		FROM range(1, 3000) r(i)`)
	cases := []struct {
		name string
		sql  string
		cols int
	}{
		{"every type", `SELECT *, -iv AS niv, CAST(u64 AS UHUGEINT) * 1000 AS uh, CAST(i64 AS HUGEINT) * 10000000000000000 AS hh
			FROM %s ORDER BY id`, 28},
		{"aggregates", `SELECT i8 % 3 AS g, sum(d92), avg(d184), count(*), sum(h), sum(i64), min(tstz), max(dt), sum(f64), avg(d3810),
			CAST(sum(i32) AS HUGEINT), date_trunc('month', max(ts)), min(s) FROM %s GROUP BY ALL ORDER BY g NULLS FIRST`, 13},
		{"no rows", `SELECT sum(d92), count(*) FROM %s WHERE id < 0`, 2},
		{"empty", `SELECT id FROM %s WHERE id < 0`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cols := make([]string, c.cols)
			for i := range cols {
				cols[i] = fmt.Sprintf("c%d", i)
			}
			ctx := context.Background()
			local, err := e.duck.Query(ctx, jobstest.Query(c.sql, []string{path}, cols...))
			if err != nil {
				t.Fatal(err)
			}
			want, err := jobstest.Collect(local)
			if err != nil {
				t.Fatal(err)
			}
			remote, err := e.client.Query(ctx, jobstest.Query(c.sql, []string{key}, cols...))
			if err != nil {
				t.Fatal(err)
			}
			got, err := jobstest.Collect(remote)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows over NATS, %d in-process", len(got), len(want))
			}
			for i := range want {
				for j := range want[i] {
					if !sameValue(got[i][j], want[i][j]) {
						t.Fatalf("row %d column %d: over NATS %#v (%T), in-process %#v (%T)", i, j, got[i][j], got[i][j], want[i][j], want[i][j])
					}
				}
			}
			if c.name == "every type" {
				assertTypes(t, want[:4])
			}
		})
	}
}

// assertTypes checks that the comparison covered what it claims: the
// driver's Go types for decimals, big integers, times and NULLs.
func assertTypes(t *testing.T, rows [][]any) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		for _, v := range r {
			seen[fmt.Sprintf("%T", v)] = true
		}
	}
	for _, want := range []string{"<nil>", "bool", "int8", "int16", "int32", "int64", "*big.Int", "uint8", "uint16", "uint32", "uint64",
		"float32", "float64", "duckdb.Decimal", "string", "[]uint8", "time.Time", "duckdb.Interval"} {
		if !seen[want] {
			t.Errorf("no value of type %s in the answer; types seen: %v", want, seen)
		}
	}
	if d, ok := rows[1][16].(duckdb.Decimal); !ok || d.Scale != 10 || d.Width != 38 {
		t.Errorf("DECIMAL(38,10) came as %#v", rows[1][16])
	}
	// Parquet keeps no 128-bit integers; the query makes them.
	if h, ok := rows[1][27].(*big.Int); !ok || h.String() != "92233720368547758070000000000000000" {
		t.Errorf("HUGEINT came as %#v", rows[1][27])
	}
	if h, ok := rows[0][27].(*big.Int); !ok || h.String() != "-92233720368547758080000000000000000" {
		t.Errorf("negative HUGEINT came as %#v", rows[0][27])
	}
}

// TestQueryMillionRows: a million-row answer arrives whole, in chunks that
// never run more than the window ahead of the consumer, while the heap of
// this process (worker and proxy side both) stays far below the answer's size.
func TestQueryMillionRows(t *testing.T) {
	const n = 1_000_000
	e := newQueryEnv(t, envOptions{client: ClientOptions{Window: 4, ChunkBytes: 256 << 10}})
	key, _ := e.file(t, "big/part.parquet", fmt.Sprintf(`SELECT i AS id, 'row ' || i || ' ' || repeat('x', 100) AS s,
		CAST(i AS DECIMAL(18,2)) / 8 AS d, TIMESTAMP '2024-01-01' + i * INTERVAL 1 SECOND AS ts FROM range(%d) r(i)`, n))
	d := jobstest.Query(`SELECT id, s, d, ts FROM %s`, []string{key}, "id", "s", "d", "ts")

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	inBefore := e.cnc.Stats().InBytes
	started := time.Now()
	rows, err := e.client.Query(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	var count, sum int64
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for rows.Next() {
		v := rows.Values()
		id := v[0].(int64)
		if id != count { // one file, read in order
			t.Fatalf("row %d has id %d", count, id)
		}
		if id%99991 == 0 {
			if s := v[1].(string); !strings.HasPrefix(s, fmt.Sprintf("row %d ", id)) || len(s) != len(fmt.Sprintf("row %d ", id))+100 {
				t.Fatalf("row %d: s = %q", id, s)
			}
			if ts := v[3].(time.Time); !ts.Equal(start.Add(time.Duration(id) * time.Second)) {
				t.Fatalf("row %d: ts = %v", id, ts)
			}
		}
		count++
		sum += id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rr := rows.(*remoteRows)
	rows.Close()
	elapsed := time.Since(started)
	close(stop)
	<-sampled
	if count != n || sum != n*(n-1)/2 {
		t.Fatalf("%d rows summing to %d, want %d summing to %d", count, sum, n, n*(n-1)/2)
	}
	received := e.cnc.Stats().InBytes - inBefore
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	st := e.server.Stats()
	t.Logf("%d rows, %d MB over NATS in %d chunks, %s; peak heap %+d MB over the start; worker ran at most %d chunks ahead; at most %d messages queued here",
		count, received>>20, rr.seq, elapsed.Round(time.Millisecond), growth>>20, st.MaxAhead, rr.mb.most)
	if received < 100<<20 {
		t.Fatalf("only %d bytes crossed NATS: the test does not measure what it claims", received)
	}
	if growth > 48<<20 {
		t.Errorf("heap grew by %d MB while streaming %d MB: memory is not bounded", growth>>20, received>>20)
	}
	if st.MaxAhead > 4 || st.MaxAhead < 1 {
		t.Errorf("worker ran %d chunks ahead, window 4", st.MaxAhead)
	}
	if rr.mb.most > 4+2 {
		t.Errorf("%d messages queued at the proxy, window 4", rr.mb.most)
	}
	// Chunks close at 256 KiB, or earlier when rows come slowly (flushAfter).
	if avg := received / rr.seq; avg < 128<<10 || avg > 256<<10+4<<10 {
		t.Errorf("%d chunks for %d bytes: %d bytes on average, chunk size 256 KiB", rr.seq, received, avg)
	}
}

// TestQuerySlowConsumer: a proxy that stops fetching (a suspended portal)
// stops the worker after the window, keeps it alive with keepalives, and
// gets the rest when it fetches again.
func TestQuerySlowConsumer(t *testing.T) {
	e := newQueryEnv(t, envOptions{client: ClientOptions{Window: 2, ChunkBytes: 4 << 10, Heartbeat: 50 * time.Millisecond}})
	key, _ := e.file(t, "slow/part.parquet", `SELECT i AS id, repeat('y', 200) AS s FROM range(20000) r(i)`)
	rows, err := e.client.Query(context.Background(), jobstest.Query(`SELECT id, s FROM %s`, []string{key}, "id", "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	// Four times the worker's silence limit without fetching.
	time.Sleep(4 * missedHeartbeats * 50 * time.Millisecond)
	st := e.server.Stats()
	if st.Chunks != 2 || st.Active != 1 {
		t.Fatalf("while the proxy paused: %d chunks sent (window 2), %d queries active", st.Chunks, st.Active)
	}
	n := 1
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 20000 {
		t.Fatalf("%d rows, err %v", n, err)
	}
	if st := e.server.Stats(); st.MaxAhead > 2 || st.Completed != 1 {
		t.Errorf("worker ran %d chunks ahead with window 2; completed %d", st.MaxAhead, st.Completed)
	}
}

// slowSQL takes minutes before its only row: long enough to be cancelled.
const slowSQL = `SELECT sum(x.range * "r".id) FROM %s, range(20000000000) x`

// TestQueryCancelReachesDuckDB: a statement cancelled by its client or by
// statement_timeout stops the worker's DuckDB query promptly.
func TestQueryCancelReachesDuckDB(t *testing.T) {
	e := newQueryEnv(t, envOptions{server: ServerOptions{Concurrency: 1}, client: ClientOptions{Timeout: time.Minute}})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	d := jobstest.Query(slowSQL, []string{key}, "sum")

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		started := time.Now()
		_, err := e.client.Query(ctx, d)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if el := time.Since(started); el > 1500*time.Millisecond {
			t.Errorf("cancelled query returned after %s", el)
		}
		waitIdle(t, e.server, 2*time.Second)
	})
	t.Run("statement_timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		started := time.Now()
		_, err := e.client.Query(ctx, d)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if el := time.Since(started); el > 1500*time.Millisecond {
			t.Errorf("timed-out query returned after %s", el)
		}
		waitIdle(t, e.server, 2*time.Second)
	})
	if st := e.server.Stats(); st.Cancelled != 2 {
		t.Errorf("worker counted %d cancelled queries, want 2", st.Cancelled)
	}
	// Concurrency 1: the slot is free again, so DuckDB really stopped.
	rows, err := e.client.Query(context.Background(), jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jobstest.Collect(rows); err != nil || len(got) != 1 || got[0][0] != int64(10) {
		t.Fatalf("after the cancels: %v, %v", got, err)
	}
}

// TestQueryWorkerTimeout: no first rows within routing.worker_timeout is a
// fallback, and the worker's query is cancelled.
func TestQueryWorkerTimeout(t *testing.T) {
	e := newQueryEnv(t, envOptions{client: ClientOptions{Timeout: 400 * time.Millisecond}})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	started := time.Now()
	_, err := e.client.Query(context.Background(), jobstest.Query(slowSQL, []string{key}, "sum"))
	if jobstest.ReasonOf(err) != executor.FallbackWorkerTimeout {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackWorkerTimeout)
	}
	if el := time.Since(started); el < 400*time.Millisecond || el > 1200*time.Millisecond {
		t.Errorf("gave up after %s, worker_timeout 400ms", el)
	}
	waitIdle(t, e.server, 2*time.Second)
}

// TestQueryNoWorker: without any worker the statement falls back at once.
func TestQueryNoWorker(t *testing.T) {
	nc := jobstest.Conn(t, jobstest.EmbeddedServer(t, t.TempDir()))
	c := NewClient(nc, ClientOptions{Timeout: 5 * time.Second})
	started := time.Now()
	_, err := c.Query(context.Background(), jobstest.Query(`SELECT 1 FROM %s`, []string{"k"}, "x"))
	if jobstest.ReasonOf(err) != executor.FallbackNoWorker {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackNoWorker)
	}
	if el := time.Since(started); el > time.Second {
		t.Errorf("took %s to notice there is no worker", el)
	}
}

// TestQueryBusyWorkers: a request finding every worker at its concurrency
// limit is retried on the queue group and falls back when none frees up in
// time; with two workers, concurrent queries spread over both.
func TestQueryBusyWorkers(t *testing.T) {
	e := newQueryEnv(t, envOptions{server: ServerOptions{Concurrency: 1, Name: "one"}, client: ClientOptions{Timeout: 300 * time.Millisecond}})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	cancel, slow := e.occupy(t, key)
	_, err := e.client.Query(context.Background(), jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count"))
	if jobstest.ReasonOf(err) != executor.FallbackWorkersBusy {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackWorkersBusy)
	}
	if e.server.Stats().Busy < 2 {
		t.Errorf("busy answers %d: the request was not retried", e.server.Stats().Busy)
	}
	// A second worker takes what the first cannot.
	two := e.startServer(t, ServerOptions{Concurrency: 1, Name: "two"})
	rows, err := e.client.Query(context.Background(), jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jobstest.Collect(rows); err != nil || got[0][0] != int64(10) {
		t.Fatalf("%v %v", got, err)
	}
	// The worker counts an answer just after sending its end, which the
	// client may have read already.
	jobstest.WaitFor(t, 5*time.Second, "the second worker to count its answer", func() bool { return two.Stats().Completed == 1 })
	cancel()
	if err := <-slow; !errors.Is(err, context.Canceled) {
		t.Errorf("slow query: %v", err)
	}
}

// TestQueryErrorsComeBeforeRows: a DuckDB error is a fallback with its reason.
func TestQueryErrorsComeBeforeRows(t *testing.T) {
	e := newQueryEnv(t, envOptions{})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	_, err := e.client.Query(context.Background(), jobstest.Query(`SELECT no_such_column FROM %s`, []string{key}, "x"))
	if jobstest.ReasonOf(err) != executor.FallbackQuery || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("err = %v, want a %s fallback naming the column", err, executor.FallbackQuery)
	}
	_, err = e.client.Query(context.Background(), jobstest.Query(`SELECT id FROM %s`, []string{"tiny/none.parquet"}, "id"))
	if jobstest.ReasonOf(err) != executor.FallbackMissingFile {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackMissingFile)
	}
	// An error after rows were delivered is the rows' error, never a short answer.
	// DuckDB computes the whole result before the first row, so the late
	// failure here is a value the protocol cannot carry (a MAP) at the end.
	rows, err := e.client.Query(context.Background(), jobstest.Query(`SELECT x.range, CASE WHEN x.range < 90000 THEN NULL ELSE MAP {'a': 1} END
		FROM %s, range(100000) x ORDER BY x.range`, []string{key}, "n", "m"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jobstest.Collect(rows)
	if jobstest.ReasonOf(err) != executor.FallbackQuery || !strings.Contains(err.Error(), "cannot send") || len(got) < 100000 {
		t.Fatalf("%d rows, err %v: want the error after the rows", len(got), err)
	}
}

// TestQueryConcurrentClients: many statements at once over one connection
// each get their own answer.
func TestQueryConcurrentClients(t *testing.T) {
	e := newQueryEnv(t, envOptions{server: ServerOptions{Concurrency: 4}, client: ClientOptions{Timeout: 10 * time.Second}})
	key, _ := e.file(t, "c/part.parquet", `SELECT i AS id, i % 7 AS g FROM range(50000) r(i)`)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows, err := e.client.Query(context.Background(), jobstest.Query(fmt.Sprintf(`SELECT g, count(*) FROM %%s WHERE id %% 16 = %d GROUP BY g ORDER BY g`, i), []string{key}, "g", "count"))
			if err != nil {
				errs <- err
				return
			}
			got, err := jobstest.Collect(rows)
			if err != nil || len(got) != 7 {
				errs <- fmt.Errorf("query %d: %d rows, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestQueryServerShutdown: a worker shutting down takes no new queries, lets
// running ones finish within the drain timeout, and stops the rest with an
// error their proxies see.
func TestQueryServerShutdown(t *testing.T) {
	e := newQueryEnv(t, envOptions{client: ClientOptions{Window: 2, ChunkBytes: 4 << 10, Heartbeat: 50 * time.Millisecond}})
	key, _ := e.file(t, "sd/part.parquet", `SELECT i AS id, repeat('y', 200) AS s FROM range(20000) r(i)`)
	d := jobstest.Query(`SELECT id, s FROM %s`, []string{key}, "id", "s")
	for _, c := range []struct {
		name  string
		drain time.Duration
		whole bool
	}{{"drained", 10 * time.Second, true}, {"cut", 200 * time.Millisecond, false}} {
		t.Run(c.name, func(t *testing.T) {
			e.server.sub.Unsubscribe() // only the worker started below answers
			nc, err := e.srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			qs, err := Serve(ctx, nc, ServerOptions{Cache: e.cache, DuckDB: e.duck, DrainTimeout: c.drain})
			if err != nil {
				t.Fatal(err)
			}
			// The server must have registered the new worker's subscription
			// before the query is published, or nobody hears it.
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			rows, err := e.client.Query(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			rows.Next()
			cancel()
			jobstest.WaitFor(t, 5*time.Second, "the subscription to drain", func() bool { return !qs.sub.IsValid() })
			if _, err := e.client.Query(context.Background(), d); jobstest.ReasonOf(err) != executor.FallbackNoWorker {
				t.Errorf("query to a worker shutting down: %v", err)
			}
			if !c.whole {
				time.Sleep(2 * c.drain)
			}
			n := 1
			for rows.Next() {
				n++
			}
			switch err := rows.Err(); {
			case c.whole && (err != nil || n != 20000):
				t.Errorf("drained: %d rows, %v", n, err)
			case !c.whole && (jobstest.ReasonOf(err) != executor.FallbackWorkerLost || n == 20000):
				t.Errorf("cut: %d rows, %v", n, err)
			}
			waited := make(chan struct{})
			go func() { qs.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				t.Fatal("the worker did not finish shutting down")
			}
		})
	}
}

// occupy runs a query that never ends on the worker, until cancel; slow
// gets its error then.
func (e *queryEnv) occupy(t *testing.T, key string) (cancel func(), slow <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		long := NewClient(e.cnc, ClientOptions{Timeout: time.Minute})
		_, err := long.Query(ctx, jobstest.Query(slowSQL, []string{key}, "sum"))
		done <- err
	}()
	jobstest.WaitFor(t, 5*time.Second, "the slow query to start", func() bool { return e.server.Stats().Active == 1 })
	return cancel, done
}

// TestQueryWorkerOfAnotherRelease: a worker refuses a proxy of another
// release with an error naming both; with a worker of the proxy's release
// in the queue group too, every query is answered by that one.
func TestQueryWorkerOfAnotherRelease(t *testing.T) {
	e := newQueryEnv(t, envOptions{
		server: ServerOptions{Name: "old", Release: "v1.0.0"},
		client: ClientOptions{Timeout: 2 * time.Second, AcceptTimeout: 300 * time.Millisecond, Release: "v1.1.0"},
	})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	q := jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count")
	started := time.Now()
	_, err := e.client.Query(context.Background(), q)
	if jobstest.ReasonOf(err) != executor.FallbackWorkerRelease || !strings.Contains(err.Error(), `"v1.0.0"`) || !strings.Contains(err.Error(), `"v1.1.0"`) {
		t.Fatalf("err = %v, want a %s fallback naming both releases", err, executor.FallbackWorkerRelease)
	}
	if el := time.Since(started); el > time.Second {
		t.Errorf("gave up after %s, accept timeout 300ms", el)
	}
	if e.server.Stats().Refused == 0 || e.server.Stats().Accepted != 0 {
		t.Errorf("the old worker's stats %+v: want refusals and nothing accepted", e.server.Stats())
	}
	same := e.startServer(t, ServerOptions{Name: "same", Release: "v1.1.0"})
	// The queue group picks a worker at random, and each refusal costs a
	// retry: a longer accept timeout keeps a loaded machine from running
	// out of it before the worker of the same release is picked.
	patient := NewClient(e.cnc, ClientOptions{Timeout: 10 * time.Second, AcceptTimeout: 5 * time.Second, Release: "v1.1.0"})
	for i := range 20 {
		rows, err := patient.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if got, err := jobstest.Collect(rows); err != nil || got[0][0] != int64(10) {
			t.Fatalf("query %d: %v %v", i, got, err)
		}
	}
	jobstest.WaitFor(t, 5*time.Second, "the worker of the same release to count its answers", func() bool { return same.Stats().Completed == 20 })
	if e.server.Stats().Accepted != 0 {
		t.Errorf("the old worker accepted %d queries", e.server.Stats().Accepted)
	}
}

// TestQueryAcceptTimeout: a query no worker takes gives up after the accept
// timeout, well before worker_timeout.
func TestQueryAcceptTimeout(t *testing.T) {
	e := newQueryEnv(t, envOptions{server: ServerOptions{Concurrency: 1}, client: ClientOptions{Timeout: 5 * time.Second, AcceptTimeout: 200 * time.Millisecond}})
	key, _ := e.file(t, "tiny/part.parquet", `SELECT i AS id FROM range(10) r(i)`)
	cancel, slow := e.occupy(t, key)
	started := time.Now()
	_, err := e.client.Query(context.Background(), jobstest.Query(`SELECT count(*) FROM %s`, []string{key}, "count"))
	if jobstest.ReasonOf(err) != executor.FallbackWorkersBusy {
		t.Fatalf("err = %v, want a %s fallback", err, executor.FallbackWorkersBusy)
	}
	if el := time.Since(started); el < 200*time.Millisecond || el > time.Second {
		t.Errorf("gave up after %s, accept timeout 200ms", el)
	}
	cancel()
	if err := <-slow; !errors.Is(err, context.Canceled) {
		t.Errorf("slow query: %v", err)
	}
}
