package rollup

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// loadConfig parses a config whose warehouse is dsn and storage is dir.
func loadConfig(t testing.TB, dsn, dir, body string) *config.Config {
	t.Helper()
	y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nstorage: {url: %q}\n%s", dsn, dir, "file://"+filepath.Join(dir, "rollups"), body)
	cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

func mustDefinition(t testing.TB, cfg *config.Config, name string) *Definition {
	t.Helper()
	d, err := NewDefinition(cfg, cfg.Rollup(name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newBuilder(t testing.TB, dsn string, cfg *config.Config) *Builder {
	t.Helper()
	dir, _ := cfg.Storage.LocalDir()
	st, err := NewFileStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Builder{DSN: dsn, Storage: st, TempDir: t.TempDir(), MemoryLimit: 256 << 20}
}

const shopTables = `
tables:
  - name: public.orders
    joins:
      - {table: public.customers, on: orders.customer_id = customers.id, type: left}
`

// TestBuildMatchesPostgres builds rollups of every shape and checks that the Parquet
// files hold exactly what a hand-written GROUP BY returns on Postgres: the same rows,
// the same values, the types Postgres describes, sorted by the dimensions, each row in
// its partition.
func TestBuildMatchesPostgres(t *testing.T) {
	dsn := newDatabase(t, "shop_build", shopSchema...)
	cases := []struct {
		name    string
		zone    string
		yaml    string
		want    string            // the hand-written query, columns in layout order
		types   map[string]string // Parquet column -> DuckDB type
		parts   int               // expected number of files
		allTime bool
		firstLo string // expected first partition start (RFC 3339), "" to skip
		lastHi  string
		tables  string // default shopTables
	}{{
		name: "left join, filter, every measure, unpartitioned",
		zone: "UTC",
		yaml: `
  - name: daily
    table: public.orders
    dimensions: [status, customers.country]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), avg(amount), min(amount), max(amount), count(distinct customer_id), sum(qty), sum(weight), sum(price), max(price), sum(big), avg(qty)]
    filters: ["status <> 'cancelled'"]`,
		want: `SELECT o.status, c.country, date_trunc('day', o.created_at), sum(o.amount), count(*), sum(o.amount), count(o.amount),
			min(o.amount), max(o.amount), count(DISTINCT o.customer_id), sum(o.qty), sum(o.weight), sum(o.price), max(o.price), sum(o.big),
			sum(o.qty), count(o.qty)
			FROM public.orders o LEFT JOIN public.customers c ON o.customer_id = c.id
			WHERE o.status <> 'cancelled' GROUP BY 1, 2, 3`,
		types: map[string]string{
			"d0": "VARCHAR", "d1": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "DECIMAL(38,2)",
			"m1_count": "BIGINT", "m2_sum": "DECIMAL(38,2)", "m2_count": "BIGINT", "m3_min": "DECIMAL(12,2)",
			"m4_max": "DECIMAL(12,2)", "m5_count_distinct": "BIGINT", "m6_sum": "BIGINT", "m7_sum": "FLOAT",
			"m8_sum": "DOUBLE", "m9_max": "DOUBLE", "m10_sum": "DECIMAL(38,0)", "m11_sum": "BIGINT", "m11_count": "BIGINT",
		},
		parts: 1, allTime: true,
	}, {
		name: "inner join, hour grain in a DST zone, monthly partitions within build_range",
		zone: "America/New_York",
		yaml: `
  - name: hourly_ny
    table: public.orders
    dimensions: [customers.segment]
    time_dimension: orders.created_at
    granularity: hour
    measures: [sum(amount) FILTER (WHERE status = 'paid'), count(*)]
    partition_granularity: month
    build_range: {start: "SELECT timestamptz '2023-11-15 12:00:00+00'", end: "SELECT timestamptz '2024-03-20 00:00:00+00'"}`,
		want: `SELECT c.segment, date_trunc('hour', o.created_at), sum(o.amount) FILTER (WHERE o.status = 'paid'), count(*)
			FROM public.orders o JOIN public.customers c ON o.customer_id = c.id
			WHERE o.created_at >= timestamptz '2023-11-01 00:00:00-04' AND o.created_at < timestamptz '2024-04-01 00:00:00-04'
			GROUP BY 1, 2`,
		types: map[string]string{"d0": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "DECIMAL(38,2)", "m1_count": "BIGINT"},
		tables: `
tables:
  - name: public.orders
    joins:
      - {table: public.customers, on: orders.customer_id = customers.id, type: inner}
`,
		parts:   5,
		firstLo: "2023-11-01T04:00:00Z", lastHi: "2024-04-01T04:00:00Z",
	}, {
		name: "date column, month grain, quarterly partitions over all data",
		zone: "Asia/Tokyo",
		yaml: `
  - name: weekly_ship
    table: public.orders
    dimensions: [qty]
    time_dimension: ship_date
    granularity: month
    measures: [count(*), min(created_at), max(local_ts)]
    partition_granularity: quarter`,
		want: `SELECT o.qty, CAST(date_trunc('month', CAST(o.ship_date AS timestamp)) AS date), count(*), min(o.created_at), max(o.local_ts)
			FROM public.orders o WHERE o.ship_date IS NOT NULL GROUP BY 1, 2`,
		types:   map[string]string{"d0": "INTEGER", "t": "DATE", "m0_count": "BIGINT", "m1_min": "TIMESTAMP WITH TIME ZONE", "m2_max": "TIMESTAMP"},
		parts:   3,
		allTime: true, firstLo: "2023-10-01T00:00:00Z", lastHi: "2024-07-01T00:00:00Z",
	}, {
		name: "timestamp column, week grain, no dimensions",
		zone: "Europe/Berlin",
		yaml: `
  - name: weekly_local
    table: public.orders
    time_dimension: local_ts
    granularity: week
    measures: [sum(price), avg(amount)]`,
		want:  `SELECT date_trunc('week', o.local_ts), sum(o.price), sum(o.amount), count(o.amount) FROM public.orders o GROUP BY 1`,
		types: map[string]string{"t": "TIMESTAMP", "m0_sum": "DOUBLE", "m1_sum": "DECIMAL(38,2)", "m1_count": "BIGINT"},
		parts: 1, allTime: true,
	}, {
		name: "no time dimension, numeric dimension",
		zone: "UTC",
		yaml: `
  - name: by_amount
    table: public.orders
    dimensions: [amount, customers.country]
    measures: [count(*)]
    filters: ["customers.country IS NOT NULL", "qty > 2"]`,
		want: `SELECT o.amount, c.country, count(*) FROM public.orders o LEFT JOIN public.customers c ON o.customer_id = c.id
			WHERE c.country IS NOT NULL AND o.qty > 2 GROUP BY 1, 2`,
		types: map[string]string{"d0": "DECIMAL(12,2)", "d1": "VARCHAR", "m0_count": "BIGINT"},
		parts: 1, allTime: true,
	}, {
		name: "joined table with the fact table's column names: bare names are the fact table's",
		zone: "UTC",
		yaml: `
  - name: by_account
    table: public.orders
    dimensions: [status, accounts.status]
    time_dimension: created_at
    granularity: month
    measures: [sum(amount), count(distinct status), max(accounts.amount)]
    filters: ["status <> 'cancelled'", "amount > 0"]`,
		want: `SELECT o.status, a.status, date_trunc('month', o.created_at), sum(o.amount), count(DISTINCT o.status), max(a.amount)
			FROM public.orders o LEFT JOIN public.accounts a ON o.customer_id = a.id
			WHERE o.status <> 'cancelled' AND o.amount > 0 GROUP BY 1, 2, 3`,
		types: map[string]string{"d0": "VARCHAR", "d1": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "DECIMAL(38,2)",
			"m1_count_distinct": "BIGINT", "m2_max": "DECIMAL(12,2)"},
		tables: `
tables:
  - name: public.orders
    joins:
      - {table: public.accounts, on: orders.customer_id = accounts.id, type: left}
`,
		parts: 1, allTime: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			tables := tc.tables
			if tables == "" {
				tables = shopTables
			}
			cfg := loadConfig(t, dsn, dir, "build_timezone: "+tc.zone+"\n"+tables+"rollups:"+tc.yaml)
			def := mustDefinition(t, cfg, cfg.Rollups[0].Name)
			b := newBuilder(t, dsn, cfg)
			v, err := b.Build(ctx, Request{Def: def, VersionID: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Partitions) != tc.parts {
				t.Fatalf("%d partitions, want %d: %+v", len(v.Partitions), tc.parts, v.Partitions)
			}
			if v.AllTime != tc.allTime {
				t.Errorf("AllTime = %v, want %v", v.AllTime, tc.allTime)
			}
			if tc.firstLo != "" {
				if got := v.Partitions[0].Start.Format(time.RFC3339); got != tc.firstLo {
					t.Errorf("first partition starts %s, want %s", got, tc.firstLo)
				}
				if got := v.Partitions[len(v.Partitions)-1].End.Format(time.RFC3339); got != tc.lastHi {
					t.Errorf("last partition ends %s, want %s", got, tc.lastHi)
				}
			}
			compareWithPostgres(t, dsn, tc.zone, tc.want, b.Storage.(*FileStorage).Dir(), v, tc.types)
		})
	}
}

// compareWithPostgres runs want on Postgres in a session with TimeZone zone and checks
// that the version's files hold the same multiset of rows, with the types expected.
func compareWithPostgres(t *testing.T, dsn, zone, want, dir string, v *Version, types map[string]string) {
	t.Helper()
	ctx := context.Background()
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.RuntimeParams["timezone"] = zone
	conn, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	fields := rows.FieldDescriptions()
	if len(fields) != len(v.Columns) {
		t.Fatalf("reference query has %d columns, rollup %d", len(fields), len(v.Columns))
	}
	for i, f := range fields {
		c := v.Columns[i]
		// The stored type is what Postgres gives the reference query's column.
		if c.Type.OID != f.DataTypeOID {
			t.Errorf("column %s: recorded type OID %d (%s), Postgres says %d", c.Name, c.Type.OID, c.Type.Name, f.DataTypeOID)
		}
	}
	wantRows := map[string]int{}
	nWant := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		wantRows[rowKey(t, vals)]++
		nWant++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET threads = 1"); err != nil {
		t.Fatal(err)
	}
	var files []string
	var order []string
	for _, c := range v.Columns {
		if c.Role != RoleMeasure {
			order = append(order, sqlquote.Ident(c.Name))
		}
	}
	var total int64
	for _, p := range v.Partitions {
		f := filepath.Join(dir, filepath.FromSlash(p.File))
		files = append(files, sqlquote.Literal(f))
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != p.Bytes {
			t.Errorf("%s: %d bytes, catalog says %d", p.File, st.Size(), p.Bytes)
		}
		var n, unsorted, outside int64
		check := "SELECT count(*) FROM read_parquet(" + sqlquote.Literal(f) + ")"
		if err := db.QueryRow(check).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != p.Rows {
			t.Errorf("%s: %d rows, catalog says %d", p.File, n, p.Rows)
		}
		total += n
		if len(order) > 0 {
			q := "SELECT count(*) FROM (SELECT row_number() OVER () AS rn, row_number() OVER (ORDER BY " + strings.Join(order, ", ") +
				") AS rs FROM read_parquet(" + sqlquote.Literal(f) + ")) WHERE rn <> rs"
			if err := db.QueryRow(q).Scan(&unsorted); err != nil {
				t.Fatal(err)
			}
			if unsorted != 0 {
				t.Errorf("%s is not sorted by %s", p.File, strings.Join(order, ", "))
			}
		}
		if p.Bounded() {
			q := "SELECT count(*) FROM read_parquet(" + sqlquote.Literal(f) + ") WHERE CAST(t AS TIMESTAMPTZ) < $1 OR CAST(t AS TIMESTAMPTZ) >= $2"
			if v.TimeType.OID != pgtype.TimestamptzOID {
				q = "SELECT count(*) FROM read_parquet(" + sqlquote.Literal(f) + ") WHERE CAST(t AS TIMESTAMP) < CAST($1 AS TIMESTAMP) OR CAST(t AS TIMESTAMP) >= CAST($2 AS TIMESTAMP)"
			}
			if err := db.QueryRow(q, p.Start, p.End).Scan(&outside); err != nil {
				t.Fatal(err)
			}
			if outside != 0 {
				t.Errorf("%s: %d rows outside [%s, %s)", p.File, outside, p.Start, p.End)
			}
		}
	}
	if total != v.Rows {
		t.Errorf("files hold %d rows, version says %d", total, v.Rows)
	}
	if len(files) == 0 {
		if nWant != 0 {
			t.Fatalf("no files, Postgres has %d rows", nWant)
		}
		return
	}
	src := "read_parquet([" + strings.Join(files, ", ") + "])"
	trows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + src + ")")
	if err != nil {
		t.Fatal(err)
	}
	var gotCols []string
	for trows.Next() {
		var name, typ string
		if err := trows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		gotCols = append(gotCols, name)
		if want, ok := types[name]; !ok || want != typ {
			t.Errorf("Parquet column %s is %s, want %q", name, typ, want)
		}
	}
	if len(gotCols) != len(types) {
		t.Errorf("Parquet columns %v, want %d columns %v", gotCols, len(types), types)
	}
	drows, err := db.Query("SELECT * FROM " + src)
	if err != nil {
		t.Fatal(err)
	}
	defer drows.Close()
	gotRows := map[string]int{}
	nGot := 0
	for drows.Next() {
		vals := make([]any, len(v.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := drows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		gotRows[rowKey(t, vals)]++
		nGot++
	}
	if nGot != nWant || nGot == 0 {
		t.Errorf("Parquet has %d rows, Postgres %d", nGot, nWant)
	}
	var missing, extra []string
	for k, n := range wantRows {
		if gotRows[k] != n {
			missing = append(missing, k)
		}
	}
	for k, n := range gotRows {
		if wantRows[k] != n {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("rows differ: %d only in Postgres, e.g. %v; %d only in Parquet, e.g. %v", len(missing), head(missing), len(extra), head(extra))
	}
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// rowKey writes a row's values canonically: numbers as exact rationals, times as UTC
// instants (or wall clocks), so that Postgres's and DuckDB's Go values compare.
func rowKey(t *testing.T, vals []any) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(" | ")
		}
		switch x := v.(type) {
		case nil:
			b.WriteString("NULL")
		case pgtype.Numeric:
			if !x.Valid {
				b.WriteString("NULL")
				break
			}
			r := new(big.Rat).SetInt(x.Int)
			e := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(x.Exp))), nil)
			if x.Exp >= 0 {
				r.Mul(r, new(big.Rat).SetInt(e))
			} else {
				r.Quo(r, new(big.Rat).SetInt(e))
			}
			b.WriteString("n:" + r.RatString())
		case duckdb.Decimal:
			r := new(big.Rat).SetInt(x.Value)
			r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Scale)), nil)))
			b.WriteString("n:" + r.RatString())
		case *big.Int:
			b.WriteString("n:" + x.String())
		case int16:
			fmt.Fprintf(&b, "n:%d", x)
		case int32:
			fmt.Fprintf(&b, "n:%d", x)
		case int64:
			fmt.Fprintf(&b, "n:%d", x)
		case float32:
			fmt.Fprintf(&b, "f:%v", x)
		case float64:
			fmt.Fprintf(&b, "d:%v", x)
		case string:
			fmt.Fprintf(&b, "s:%q", x)
		case time.Time:
			b.WriteString("t:" + x.UTC().Format(time.RFC3339Nano))
		default:
			t.Fatalf("unexpected value %T %v", v, v)
		}
	}
	return b.String()
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}

// TestBuildIncremental rebuilds only the partitions inside update_window and carries
// the others over unchanged, even when an old partition's source rows changed.
func TestBuildIncremental(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "inc_build",
		`CREATE TABLE events (ts timestamptz NOT NULL, kind text, n int)`,
		`INSERT INTO events SELECT now() - (i * interval '1 hour'), (ARRAY['a','b'])[1 + i % 2], i FROM generate_series(0, 24 * 20) i`)
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
    refresh: {incremental: true, update_window: 2 days}
`)
	def := mustDefinition(t, cfg, "ev")
	b := newBuilder(t, dsn, cfg)
	v1, err := b.Build(ctx, Request{Def: def, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Partitions) < 20 || v1.Incremental {
		t.Fatalf("full build: %d partitions, incremental %v", len(v1.Partitions), v1.Incremental)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// A change far outside the window is not picked up; one inside it is.
	if _, err := conn.Exec(ctx, `INSERT INTO events VALUES (now() - interval '10 days', 'old', 1), (now() - interval '1 hour', 'new', 1)`); err != nil {
		t.Fatal(err)
	}
	v2, err := b.Build(ctx, Request{Def: def, VersionID: "v2", Incremental: true, UpdateWindow: 48 * time.Hour, Previous: v1})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Incremental {
		t.Fatal("second build was not incremental")
	}
	// events has no index on ts: each incremental build scans it, and says so.
	if want := "no index on public.events leads with ts"; !strings.Contains(v2.Warning, want) {
		t.Errorf("warning %q, want it to say %q", v2.Warning, want)
	}
	// The window [now-2d, now] touches three calendar days.
	if len(v2.Rebuilt) != 3 {
		t.Fatalf("rebuilt %d partitions, want 3: %v", len(v2.Rebuilt), v2.Rebuilt)
	}
	windowStart := time.Now().Add(-49 * time.Hour)
	carried := 0
	for _, p := range v2.Partitions {
		switch p.Version {
		case "v1":
			carried++
			if !p.End.Before(windowStart.Add(24 * time.Hour)) {
				t.Errorf("partition %s inside the window was carried over", p.Start)
			}
		case "v2":
			if p.End.Before(windowStart) {
				t.Errorf("partition %s outside the window was rebuilt", p.Start)
			}
		}
	}
	if carried != len(v2.Partitions)-3 || len(v2.Partitions) != len(v1.Partitions) {
		t.Errorf("carried %d of %d partitions (v1 had %d)", carried, len(v2.Partitions), len(v1.Partitions))
	}
	fs := b.Storage.(*FileStorage)
	// Carried or rebuilt, every partition records its file's checksum.
	for _, p := range v2.Partitions {
		size, sum, err := HashFile(filepath.Join(fs.Dir(), p.File))
		if err != nil || p.SHA256 == "" || p.Check(size, sum) != nil {
			t.Errorf("%s (version %s): %d bytes, SHA-256 %s; recorded %d, %q (%v)", p.File, p.Version, size, sum, p.Bytes, p.SHA256, err)
		}
	}
	// The new version equals Postgres except for the old change outside the window.
	compareWithPostgres(t, dsn, "UTC", `SELECT kind, date_trunc('hour', ts), sum(n), count(*) FROM events WHERE kind <> 'old' GROUP BY 1, 2`,
		fs.Dir(), v2, map[string]string{"d0": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "BIGINT", "m1_count": "BIGINT"})
}

// TestBuildMaxRows truncates at max_rows and says so.
func TestBuildMaxRows(t *testing.T) {
	dsn := newDatabase(t, "maxrows_build", shopSchema...)
	cfg := loadConfig(t, dsn, t.TempDir(), shopTables+`
rollups:
  - name: capped
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: day
    measures: [count(*)]
    partition_granularity: month
    max_rows: 500
`)
	b := newBuilder(t, dsn, cfg)
	v, err := b.Build(context.Background(), Request{Def: mustDefinition(t, cfg, "capped"), VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Truncated || v.Warning == "" || v.Rows != 500 {
		t.Fatalf("truncated=%v rows=%d warning=%q", v.Truncated, v.Rows, v.Warning)
	}
	if last := v.Partitions[len(v.Partitions)-1]; !last.Truncated {
		t.Errorf("last partition not marked truncated")
	}
}

// TestBuildErrors: a definition that does not fit the warehouse fails permanently; an
// unreachable warehouse fails with an error worth retrying.
func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "err_build", shopSchema...)
	cfg := loadConfig(t, dsn, t.TempDir(), shopTables+`
rollups:
  - name: bad
    table: public.orders
    dimensions: [no_such_column]
    measures: [count(*)]
`)
	b := newBuilder(t, dsn, cfg)
	_, err := b.Build(ctx, Request{Def: mustDefinition(t, cfg, "bad"), VersionID: "v1"})
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("unknown column: err = %v, permanent %v", err, IsPermanent(err))
	}
	if files, _ := b.Storage.List(ctx, ""); len(files) != 0 {
		t.Errorf("a failed build left files: %v", files)
	}
	down := &Builder{DSN: "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", Storage: b.Storage, TempDir: t.TempDir()}
	_, err = down.Build(ctx, Request{Def: mustDefinition(t, cfg, "bad"), VersionID: "v2"})
	if err == nil || IsPermanent(err) {
		t.Fatalf("unreachable warehouse: err = %v, permanent %v", err, IsPermanent(err))
	}
}

// TestIdentity: spelling does not change a rollup's identity; content does.
func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	base := shopTables + `
rollups:
  - name: r
    table: public.orders
    dimensions: [status]
    measures: [%s]
    refresh: {every: %s}
`
	id := func(measure, every string) string {
		cfg := loadConfig(t, "postgres://u@127.0.0.1/db", dir, fmt.Sprintf(base, measure, every))
		return mustDefinition(t, cfg, "r").Identity()
	}
	a, b, c, d := id("count(*)", "1h"), id("COUNT( * )", "1h"), id("count(*)", "2h"), id("sum(amount)", "1h")
	if a != b || a != c {
		t.Errorf("same content, different identity: %s %s %s", a, b, c)
	}
	if a == d {
		t.Errorf("different measures, same identity %s", a)
	}
}

// TestIncrementalRangeReadsNoRows runs at every incremental build: with an
// index on the time dimension it must read a handful of index entries, not
// the table (a count beside min and max once scanned every row, 1.4 s of a
// 10-million-row table at each refresh), and still tell a table with NULL
// times from one without.
func TestIncrementalRangeReadsNoRows(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "inc_range",
		`CREATE TABLE strict (ts timestamptz NOT NULL, kind text, n int)`,
		`CREATE TABLE loose (ts timestamptz, kind text, n int)`,
		`INSERT INTO strict SELECT now() - (i * interval '1 minute'), (ARRAY['a','b'])[1 + i % 2], i FROM generate_series(0, 60000) i`,
		`INSERT INTO loose SELECT * FROM strict`,
		`CREATE INDEX ON strict (ts)`,
		`CREATE INDEX ON loose (ts)`,
		`ANALYZE`)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	dir := t.TempDir()
	cfg := loadConfig(t, dsn, dir, `
rollups:
  - name: strict_r
    table: public.strict
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(n)]
    partition_granularity: day
    refresh: {incremental: true, update_window: 1 day}
  - name: loose_r
    table: public.loose
    dimensions: [kind]
    time_dimension: ts
    granularity: hour
    measures: [sum(n)]
    partition_granularity: day
    filters: ["n >= 0"]
    refresh: {incremental: true, update_window: 1 day}
`)
	b := newBuilder(t, dsn, cfg)
	for _, tc := range []struct {
		rollup, table string
		nulls         bool
	}{
		{"strict_r", "strict", false},
		{"loose_r", "loose", false},
		{"loose_r", "loose", true},
	} {
		name := fmt.Sprintf("%s nulls=%v", tc.table, tc.nulls)
		if tc.nulls {
			if _, err := conn.Exec(ctx, `INSERT INTO loose VALUES (NULL, 'a', 1)`); err != nil {
				t.Fatal(err)
			}
		}
		def := mustDefinition(t, cfg, tc.rollup)
		plan, err := NewPlan(ctx, conn.PgConn(), def)
		if err != nil {
			t.Fatal(err)
		}
		col, err := describeTimeColumn(ctx, conn, def)
		if err != nil || !col.known || !col.indexed || col.notNull != (tc.table == "strict") {
			t.Fatalf("%s: describeTimeColumn = %+v, %v", name, col, err)
		}
		q := incrementalRangeSQL(plan, "'day'", "'1 day'", "timestamptz", col.notNull)
		var explained []byte
		if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q).Scan(&explained); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, q)
		}
		if read := rowsScanned(t, explained); read > 10 {
			t.Errorf("%s: the range query read %.0f rows, want a few index entries:\n%s\n%s", name, read, q, explained)
		}
		var lo, hi time.Time
		var allTime bool
		if err := conn.QueryRow(ctx, q).Scan(&lo, &hi, &allTime); err != nil {
			t.Fatal(err)
		}
		var wantLo, wantHi time.Time
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT date_trunc('day', min(ts)), date_trunc('day', max(ts)) + interval '1 day' FROM %s`, tc.table)).Scan(&wantLo, &wantHi); err != nil {
			t.Fatal(err)
		}
		if !lo.Equal(wantLo) || !hi.Equal(wantHi) || allTime == tc.nulls {
			t.Errorf("%s: range [%s, %s), all time %v; want [%s, %s), %v", name, lo, hi, allTime, wantLo, wantHi, !tc.nulls)
		}
		// And a build through it: the version covers all time only without NULL times.
		v1, err := b.Build(ctx, Request{Def: def, VersionID: tc.table + "1"})
		if err != nil {
			t.Fatal(err)
		}
		v2, err := b.Build(ctx, Request{Def: def, VersionID: tc.table + "2", Incremental: true, UpdateWindow: 24 * time.Hour, Previous: v1})
		if err != nil {
			t.Fatal(err)
		}
		if !v2.Incremental || v2.AllTime == tc.nulls || v2.Warning != "" {
			t.Errorf("%s: incremental %v, all time %v, warning %q", name, v2.Incremental, v2.AllTime, v2.Warning)
		}
	}
}

// rowsScanned sums the rows the scan nodes of an EXPLAIN (ANALYZE, FORMAT
// JSON) output returned, over all their loops.
func rowsScanned(t *testing.T, explained []byte) float64 {
	t.Helper()
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal(explained, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output: %v: %s", err, explained)
	}
	var walk func(n map[string]any) float64
	walk = func(n map[string]any) float64 {
		sum := 0.0
		if typ, _ := n["Node Type"].(string); strings.HasSuffix(typ, "Scan") {
			rows, _ := n["Actual Rows"].(float64)
			loops, _ := n["Actual Loops"].(float64)
			sum += rows * loops
		}
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				sum += walk(m)
			}
		}
		return sum
	}
	return walk(plans[0].Plan)
}
