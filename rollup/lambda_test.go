package rollup

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
)

// TestBuildLambda: a lambda rollup's build holds exactly the rows below its
// cutoff (the build's start minus late_window, cut down to the second),
// records the cutoff, and an incremental build rebuilds from the partition
// of the previous version's cutoff.
func TestBuildLambda(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "lambda_build",
		`CREATE TABLE events (ts timestamptz, kind text, n int)`,
		`INSERT INTO events SELECT now() - (i * interval '17 minutes'), (ARRAY['a','b'])[1 + i % 2], i FROM generate_series(0, 24 * 12) i`,
		`INSERT INTO events VALUES (NULL, 'a', 1000)`)
	dir := t.TempDir()
	cfg := loadConfig(t, dsn, dir, `
rollups:
  - name: ev
    table: public.events
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(n), count(*)]
    partition_granularity: day
    refresh: {incremental: true}
    lambda: {column: ts, late_window: 90m}
`)
	def := mustDefinition(t, cfg, "ev")
	b := newBuilder(t, dsn, cfg)
	v1, err := b.Build(ctx, Request{Def: def, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if v1.LambdaCutoff == nil {
		t.Fatal("no cutoff recorded")
	}
	cut := *v1.LambdaCutoff
	if cut.Truncate(time.Second) != cut || cut.After(v1.Started.Add(-90*time.Minute)) || !cut.After(v1.Started.Add(-90*time.Minute-time.Second)) {
		t.Fatalf("cutoff %s for a build started at %s with late_window 90m", cut, v1.Started)
	}
	fs := b.Storage.(*FileStorage)
	types := map[string]string{"d0": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "BIGINT", "m1_count": "BIGINT"}
	below := func(c time.Time) string {
		return fmt.Sprintf(`SELECT kind, date_trunc('hour', ts), sum(n), count(*) FROM events WHERE ts < '%s' GROUP BY 1, 2`, c.Format(time.RFC3339Nano))
	}
	compareWithPostgres(t, dsn, "UTC", below(cut), fs.Dir(), v1, types)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO events VALUES (now() - interval '3 hours', 'c', 7), (now(), 'c', 8)`); err != nil {
		t.Fatal(err)
	}
	// As if the previous version's cutoff lay three days back: the
	// partitions from that day on are rebuilt, whatever update_window says.
	// (Its files hold rows above that cutoff, so they must not be merged
	// with: an update_window beyond late_window reads the partitions whole.)
	prev := *v1
	early := cut.Add(-72 * time.Hour)
	prev.LambdaCutoff = &early
	v2, err := b.Build(ctx, Request{Def: def, VersionID: "v2", Incremental: true, UpdateWindow: 2 * time.Hour, Previous: &prev})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Incremental || v2.LambdaCutoff == nil || v2.Merged {
		t.Fatalf("incremental %v, cutoff %v, merged %v", v2.Incremental, v2.LambdaCutoff, v2.Merged)
	}
	if len(v2.Rebuilt) < 4 {
		t.Errorf("rebuilt %d partitions, want those from the previous cutoff's day on: %v", len(v2.Rebuilt), v2.Rebuilt)
	}
	compareWithPostgres(t, dsn, "UTC", below(*v2.LambdaCutoff), fs.Dir(), v2, types)
}

// TestBuildLambdaMerge: an incremental build of a lambda rollup whose
// measures merge exactly reads only the rows from the previous cutoff on and
// merges them with the previous version's partition below it, the bucket
// holding the cutoff included; a row that arrives below the previous cutoff
// (later than late_window allows) is then not read, which tells a merge from
// a build that reads the partition whole. Measures that do not merge (a
// float sum, a min of text) read it whole.
func TestBuildLambdaMerge(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "lambda_merge",
		`CREATE TABLE events (ts timestamptz NOT NULL, kind text, n int, amount numeric(10,2), w float8)`,
		`INSERT INTO events SELECT now() - (i * interval '7 minutes'), (ARRAY['a','b'])[1 + i % 2], i, i / 8.0, i / 3.0 FROM generate_series(0, 24 * 20) i`,
		`CREATE INDEX ON events (ts)`)
	dir := t.TempDir()
	cfg := loadConfig(t, dsn, dir, `
rollups:
  - name: exact
    table: public.events
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(n), count(*), sum(amount), min(amount), max(ts), avg(n)]
    partition_granularity: day
    refresh: {incremental: true}
    lambda: {column: ts}
  - name: floats
    table: public.events
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(w), count(*)]
    partition_granularity: day
    refresh: {incremental: true}
    lambda: {column: ts}
  - name: texts
    table: public.events
    dimensions: [n]
    time_dimension: ts
    granularity: hour
    measures: [min(kind), count(*)]
    partition_granularity: day
    refresh: {incremental: true}
    lambda: {column: ts}
`)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	b := newBuilder(t, dsn, cfg)
	fs := b.Storage.(*FileStorage)
	const exactQuery = `SELECT kind, date_trunc('hour', ts), sum(n), count(*), sum(amount), min(amount), max(ts), sum(n), count(n) FROM events WHERE ts < '%s'%s GROUP BY 1, 2`
	exactTypes := map[string]string{"d0": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "BIGINT", "m1_count": "BIGINT", "m2_sum": "DECIMAL(38,2)", "m3_min": "DECIMAL(10,2)", "m4_max": "TIMESTAMP WITH TIME ZONE", "m5_sum": "BIGINT", "m5_count": "BIGINT"}
	for _, tc := range []struct {
		rollup, query string
		merged        bool
		types         map[string]string
	}{
		{"exact", exactQuery, true, exactTypes},
		// Float sums depend on the order of addition, which the warehouse's
		// plan decides: the version is not compared, only not merged.
		{"floats", "", false, nil},
		{"texts", `SELECT n, date_trunc('hour', ts), min(kind), count(*) FROM events WHERE ts < '%s'%s GROUP BY 1, 2`, false,
			map[string]string{"d0": "INTEGER", "t": "TIMESTAMP WITH TIME ZONE", "m0_min": "VARCHAR", "m1_count": "BIGINT"}},
	} {
		def := mustDefinition(t, cfg, tc.rollup)
		// A cutoff at the start of a day has no row below it in its
		// partition: build again a second later.
		var v1 *Version
		for v1 == nil || v1.LambdaCutoff.Truncate(24*time.Hour).Equal(*v1.LambdaCutoff) {
			if v1 != nil {
				time.Sleep(time.Second)
			}
			if v1, err = b.Build(ctx, Request{Def: def, VersionID: tc.rollup + "1"}); err != nil {
				t.Fatal(err)
			}
		}
		cut := *v1.LambdaCutoff
		// Rows at the cutoff and after it, in the cutoff's bucket and later
		// ones, and one that arrives too late: below the cutoff.
		if _, err := conn.Exec(ctx, `INSERT INTO events VALUES ($1, 'a', 5000, 1.25, 0.1), ($1, 'c', 5001, 2.5, 0.2), (now(), 'c', 5002, 99.99, 0.3), ($2, 'late', 7000, 7.75, 0.4)`,
			cut, cut.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // the next cutoff lies above now()
		v2, err := b.Build(ctx, Request{Def: def, VersionID: tc.rollup + "2", Incremental: true, Previous: v1})
		if err != nil {
			t.Fatal(err)
		}
		if !v2.Incremental || v2.Merged != tc.merged || !v2.LambdaCutoff.After(cut) {
			t.Errorf("%s: incremental %v, merged %v (want %v), cutoffs %s then %s", tc.rollup, v2.Incremental, v2.Merged, tc.merged, cut, v2.LambdaCutoff)
		}
		except := ""
		if tc.merged {
			except = " AND n <> 7000"
		}
		if tc.query != "" {
			compareWithPostgres(t, dsn, "UTC", fmt.Sprintf(tc.query, v2.LambdaCutoff.Format(time.RFC3339Nano), except), fs.Dir(), v2, tc.types)
		}
		if _, err := conn.Exec(ctx, `DELETE FROM events WHERE n >= 5000`); err != nil {
			t.Fatal(err)
		}
	}

	// The previous version's file damaged in storage: the build reads the
	// partition whole (the late row included) rather than failing.
	def := mustDefinition(t, cfg, "exact")
	v1, err := b.Build(ctx, Request{Def: def, VersionID: "damaged1"})
	if err != nil {
		t.Fatal(err)
	}
	cut := *v1.LambdaCutoff
	for _, part := range v1.Partitions {
		if !part.Start.After(cut) && part.End.After(cut) {
			if err := os.WriteFile(filepath.Join(fs.Dir(), part.File), []byte("not parquet"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO events VALUES ($1, 'a', 5000, 1.25, 0.1), ($2, 'late', 7000, 7.75, 0.4)`, cut, cut.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	v2, err := b.Build(ctx, Request{Def: def, VersionID: "damaged2", Incremental: true, Previous: v1})
	if err != nil {
		t.Fatalf("build over a damaged previous file: %v", err)
	}
	if v2.Merged {
		t.Error("merged with a damaged file")
	}
	compareWithPostgres(t, dsn, "UTC", fmt.Sprintf(exactQuery, v2.LambdaCutoff.Format(time.RFC3339Nano), ""),
		fs.Dir(), v2, exactTypes)
}

// TestLambdaCutoffSQL: the cutoff is the build's start minus late_window
// cut down to the second, whatever build_timezone and its daylight saving
// time; a timestamp column's is a wall clock in build_timezone, and a date
// column's the day there.
func TestLambdaCutoffSQL(t *testing.T) {
	ctx := context.Background()
	conn := emptyDatabase(t, ctx, "lambda_cutoff")
	ts := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, zone, start string
		oid               uint32
		late              time.Duration
		want              time.Time // an instant, a wall clock or a day in UTC
	}{
		{"timestamptz in UTC", "UTC", "2026-12-07 02:31:17.123456+00", pgtype.TimestamptzOID, time.Hour, ts("2026-12-07 01:31:17")},
		{"timestamptz, fractions of late_window", "UTC", "2026-12-07 02:31:17.123456+00", pgtype.TimestamptzOID, 1500 * time.Millisecond, ts("2026-12-07 02:31:15")},
		{"timestamptz in a half-hour zone", "Asia/Kolkata", "2026-12-07 02:31:17.9+00", pgtype.TimestamptzOID, 45 * time.Minute, ts("2026-12-07 01:46:17")},
		{"timestamptz in the repeated hour", "America/New_York", "2026-11-01 06:30:00.5+00", pgtype.TimestamptzOID, 0, ts("2026-11-01 06:30:00")},
		{"timestamp after spring forward", "Europe/Berlin", "2026-03-29 01:30:10.7+00", pgtype.TimestampOID, 45 * time.Minute, ts("2026-03-29 01:45:10")},
		{"timestamp in the repeated hour", "America/New_York", "2026-11-01 06:10:00.2+00", pgtype.TimestampOID, 0, ts("2026-11-01 01:10:00")},
		{"timestamp in a half-hour zone", "Asia/Kolkata", "2026-12-07 02:31:17.9+00", pgtype.TimestampOID, time.Hour, ts("2026-12-07 07:01:17")},
		{"date in UTC", "UTC", "2026-12-07 00:30:00+00", pgtype.DateOID, time.Hour, ts("2026-12-06 00:00:00")},
		{"date ahead of UTC", "Pacific/Auckland", "2026-12-07 00:30:00+00", pgtype.DateOID, time.Hour, ts("2026-12-07 00:00:00")},
		{"date behind UTC", "America/Los_Angeles", "2026-12-07 05:00:00+00", pgtype.DateOID, 0, ts("2026-12-06 00:00:00")},
		{"date on the day of spring forward", "Europe/Berlin", "2026-03-28 23:30:00+00", pgtype.DateOID, 0, ts("2026-03-29 00:00:00")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := conn.Exec(ctx, "SET TimeZone = '"+c.zone+"'"); err != nil {
				t.Fatal(err)
			}
			q, ok := lambdaCutoffSQL(c.oid, "CAST('"+c.start+"' AS timestamptz)", c.late)
			if !ok {
				t.Fatalf("no cutoff for type %d", c.oid)
			}
			var got time.Time
			if err := conn.QueryRow(ctx, q).Scan(&got); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if !got.Equal(c.want) || got.UTC().Truncate(time.Second) != got.UTC() {
				t.Errorf("%s: cutoff %s, want %s", q, got.UTC(), c.want)
			}
		})
	}
	if _, ok := lambdaCutoffSQL(pgtype.TextOID, "now()", 0); ok {
		t.Error("a text column has a cutoff")
	}
}

// TestLambdaFloor: an incremental build rebuilds from the partition
// holding the earlier of the previous and the new cutoff (a timestamp
// cutoff, a wall clock, goes back when daylight saving time ends), or from
// the start of update_window when that is earlier.
func TestLambdaFloor(t *testing.T) {
	ctx := context.Background()
	conn := emptyDatabase(t, ctx, "lambda_floor")
	at := func(h, m int) *time.Time {
		v := time.Date(2026, 11, 1, h, m, 17, 0, time.UTC)
		return &v
	}
	hour := func(h int) time.Time { return time.Date(2026, 11, 1, h, 0, 0, 0, time.UTC) }
	lo := hour(1) // the start of update_window
	for _, c := range []struct {
		name          string
		previous, cut *time.Time
		want          time.Time
	}{
		{"no previous version", nil, at(1, 10), lo},
		{"previous cutoff before update_window", at(0, 50), at(1, 10), hour(0)},
		{"new cutoff earlier than the previous one", at(1, 50), at(0, 40), hour(0)},
		{"both within update_window", at(1, 50), at(1, 10), lo},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Plan{previousCutoff: c.previous, LambdaCutoff: c.cut}
			got, err := p.lambdaFloor(ctx, conn, config.Hour, "timestamp", lo)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(c.want) {
				t.Errorf("floor %s, want %s", got, c.want)
			}
		})
	}
}

// emptyDatabase connects to a new empty database, closed when t ends.
func emptyDatabase(t *testing.T, ctx context.Context, name string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, newDatabase(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// TestBuildLambdaIDs: a lambda rollup on an id column holds exactly the
// rows below its cutoff (the largest id plus one, minus late_ids), waits
// for a transaction writing to the table that took an id below the
// largest, and an incremental build rebuilds from the partition of the
// earliest row with an id from the previous cutoff on.
func TestBuildLambdaIDs(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "lambda_ids",
		`CREATE TABLE events (id bigserial PRIMARY KEY, ts timestamptz, kind text, n int)`,
		`INSERT INTO events (ts, kind, n) SELECT timestamptz '2025-03-01' + i * interval '7 hours', (ARRAY['a','b'])[1 + i % 2], i FROM generate_series(0, 200) i`)
	dir := t.TempDir()
	cfg := loadConfig(t, dsn, dir, `
rollups:
  - name: ev
    table: public.events
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(n), count(*)]
    partition_granularity: day
    refresh: {incremental: true}
    lambda: {column: id, late_ids: 3}
`)
	def := mustDefinition(t, cfg, "ev")
	if !def.Lambda.IDs || def.Lambda.LateIDs != 3 {
		t.Fatalf("definition's lambda: %+v", def.Lambda)
	}
	b := newBuilder(t, dsn, cfg)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A transaction takes id 202 and stays open while another commits 203.
	open, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx)
	tx, err := open.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (ts, kind, n) VALUES ('2025-03-02 05:00+00', 'late', 1000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO events (ts, kind, n) VALUES ('2025-03-20 05:00+00', 'c', 2000)`); err != nil {
		t.Fatal(err)
	}
	built := make(chan error, 1)
	var v1 *Version
	go func() {
		var err error
		v1, err = b.Build(ctx, Request{Def: def, VersionID: "v1"})
		built <- err
	}()
	select {
	case err := <-built:
		t.Fatalf("the build did not wait for the open transaction (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	if v1.LambdaCutoffID == nil || *v1.LambdaCutoffID != 203+1-3 || v1.LambdaCutoff != nil {
		t.Fatalf("cutoff %v, want %d", v1.LambdaCutoffID, 203+1-3)
	}
	fs := b.Storage.(*FileStorage)
	types := map[string]string{"d0": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "BIGINT", "m1_count": "BIGINT"}
	below := func(c int64) string {
		return fmt.Sprintf(`SELECT kind, date_trunc('hour', ts), sum(n), count(*) FROM events WHERE id < %d GROUP BY 1, 2`, c)
	}
	compareWithPostgres(t, dsn, "UTC", below(*v1.LambdaCutoffID), fs.Dir(), v1, types)

	// New ids with old times: the incremental build reaches back to them.
	if _, err := conn.Exec(ctx, `INSERT INTO events (ts, kind, n) VALUES ('2025-03-03 01:00+00', 'd', 1), ('2025-03-21 01:00+00', 'd', 2)`); err != nil {
		t.Fatal(err)
	}
	v2, err := b.Build(ctx, Request{Def: def, VersionID: "v2", Incremental: true, Previous: v1})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Incremental || v2.LambdaCutoffID == nil || *v2.LambdaCutoffID != 205+1-3 {
		t.Fatalf("incremental %v, cutoff %v", v2.Incremental, v2.LambdaCutoffID)
	}
	compareWithPostgres(t, dsn, "UTC", below(*v2.LambdaCutoffID), fs.Dir(), v2, types)

	if got := cutoffAbove(nil, 5); got != math.MinInt64 {
		t.Errorf("cutoff of an empty table %d", got)
	}
	most := int64(math.MaxInt64)
	if got := cutoffAbove(&most, 0); got != math.MaxInt64 {
		t.Errorf("cutoff after the largest bigint %d", got)
	}
	least := int64(math.MinInt64 + 1)
	if got := cutoffAbove(&least, 10); got != math.MinInt64 {
		t.Errorf("cutoff below the least bigint %d", got)
	}
}
