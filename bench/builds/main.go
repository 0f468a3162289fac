// Command builds measures rollup build throughput: it fills a throw-away Postgres (or
// PGROLLUP_TEST_DSN) with a fact table, times the rollup's GROUP BY alone on Postgres,
// then times a full build (warehouse → DuckDB → Parquet → file storage), and prints
// source rows per second and the ratio of the two times (goal ≤ 1.3).
//
//	go run ./bench/builds -rows 2000000 -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/rollup"
)

func main() {
	rows := flag.Int("rows", 2_000_000, "source rows")
	runs := flag.Int("runs", 3, "timed runs of each (the best is reported)")
	flag.Parse()
	if err := run(*rows, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/builds:", err)
		os.Exit(1)
	}
}

func run(rows, runs int) error {
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Config: map[string]string{"shared_buffers": "512MB", "work_mem": "256MB"}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	dsn := pg.DSN("postgres")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range []string{
		`DROP TABLE IF EXISTS bench_orders`,
		`CREATE TABLE bench_orders (id bigint, customer_id int, status text, amount numeric(12,2), created_at timestamptz)`,
		fmt.Sprintf(`INSERT INTO bench_orders SELECT i, i %% 50, (ARRAY['new','paid','shipped','cancelled'])[1 + i %% 4],
			(i %% 100000) / 100.0, timestamptz '2024-01-01' + i * interval '15 seconds' FROM generate_series(1, %d) i`, rows),
		`VACUUM ANALYZE bench_orders`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "bench-builds-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	y := fmt.Sprintf(`warehouse: {dsn: %q}
data_dir: %q
rollups:
  - name: bench
    table: public.bench_orders
    dimensions: [status, customer_id]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), avg(amount), max(amount)]
    partition_granularity: month
`, dsn, dir)
	cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		return err
	}
	def, err := rollup.NewDefinition(cfg, &cfg.Rollups[0])
	if err != nil {
		return err
	}
	st, err := rollup.NewFileStorage(filepath.Join(dir, "rollups"))
	if err != nil {
		return err
	}
	b := &rollup.Builder{DSN: dsn, Storage: st, TempDir: dir, MemoryLimit: 1 << 30}
	groupBy := `SELECT status, customer_id, date_trunc('day', created_at), sum(amount), count(*), sum(amount), count(amount), max(amount)
		FROM bench_orders GROUP BY 1, 2, 3`
	best := func(f func() error) (time.Duration, error) {
		var min time.Duration
		for i := 0; i < runs; i++ {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			if d := time.Since(start); i == 0 || d < min {
				min = d
			}
		}
		return min, nil
	}
	var outRows int64
	pgTime, err := best(func() error {
		// Read every row to the client, as the build must.
		r, err := conn.Query(ctx, groupBy)
		if err != nil {
			return err
		}
		outRows = 0
		for r.Next() {
			outRows++
		}
		return r.Err()
	})
	if err != nil {
		return err
	}
	var v *rollup.Version
	n := 0
	buildTime, err := best(func() error {
		n++
		var err error
		v, err = b.Build(ctx, rollup.Request{Def: def, VersionID: fmt.Sprintf("v%d", n)})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("source rows        %d\n", rows)
	fmt.Printf("rollup rows        %d (Postgres GROUP BY: %d), %d partitions, %d bytes\n", v.Rows, outRows, len(v.Partitions), v.Bytes)
	fmt.Printf("GROUP BY alone     %v\n", pgTime.Round(time.Millisecond))
	fmt.Printf("build              %v\n", buildTime.Round(time.Millisecond))
	fmt.Printf("throughput         %.0f source rows/s\n", float64(rows)/buildTime.Seconds())
	fmt.Printf("build / GROUP BY   %.2f\n", buildTime.Seconds()/pgTime.Seconds())
	return nil
}
