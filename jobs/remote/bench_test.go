package remote

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/executor"
)

// BenchmarkSmallAnswer measures one small rollup answer (five rows of a
// GROUP BY over a small Parquet file), asked and read whole, in-process and
// over NATS; the difference is the query path's overhead.
//
//	go test ./jobs/remote -run '^$' -bench SmallAnswer -benchtime 3s
func BenchmarkSmallAnswer(b *testing.B) {
	e := newQueryEnv(b, envOptions{})
	key, path := e.file(b, "bench/part.parquet", `SELECT i % 5 AS d0, i AS m0_count, i * 0.01 AS m1_sum FROM range(10000) r(i)`)
	const sql = `SELECT "r".d0, sum("r".m0_count), sum("r".m1_sum) FROM %s GROUP BY "r".d0 ORDER BY 1`
	run := func(b *testing.B, ex executor.Executor, d *executor.Query) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rows, err := ex.Query(ctx, d)
			if err != nil {
				b.Fatal(err)
			}
			n, err := drain(rows)
			if err != nil || n != 5 {
				b.Fatalf("%d rows, %v", n, err)
			}
		}
	}
	b.Run("in-process", func(b *testing.B) {
		run(b, e.duck, jobstest.Query(sql, []string{path}, "d0", "count", "sum"))
	})
	b.Run("nats-embedded", func(b *testing.B) {
		run(b, e.client, jobstest.Query(sql, []string{key}, "d0", "count", "sum"))
	})
	b.Run("nats-tcp", func(b *testing.B) {
		url, _ := jobstest.NATSServer(b)
		wnc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer wnc.Close()
		ctx, cancel := context.WithCancel(context.Background())
		qs, err := Serve(ctx, wnc, ServerOptions{Cache: e.cache, DuckDB: e.duck})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { cancel(); qs.Wait() }()
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		run(b, NewClient(nc, ClientOptions{}), jobstest.Query(sql, []string{key}, "d0", "count", "sum"))
	})
}

func drain(rows executor.Rows) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
