package rollup

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// Builder builds rollup versions: warehouse → DuckDB → Parquet → Storage.
type Builder struct {
	// DSN is the warehouse service account's connection string.
	DSN string
	// Storage receives the Parquet files.
	Storage Storage
	// TempDir holds each build's DuckDB spill files and the Parquet files before upload;
	// empty uses the system's temporary directory.
	TempDir string
	// MemoryLimit caps each build's DuckDB memory in bytes (worker.duckdb_memory_limit);
	// 0 leaves DuckDB's default.
	MemoryLimit int64
	// Threads caps each build's DuckDB threads; 0 leaves DuckDB's default.
	Threads int
	Log     *slog.Logger

	// scanWarned holds the rollups (name and identity) whose incremental
	// builds were found to scan their table, logged once.
	scanWarned sync.Map
}

// Request says what to build.
type Request struct {
	Def *Definition
	// VersionID names the new version; it must be unique per build attempt, because the
	// version's files are written under it.
	VersionID string
	// RefreshSQL is the refresh key query; its value is recorded as the watermark.
	RefreshSQL string
	// Incremental rebuilds only the partitions that intersect [now - UpdateWindow, now]
	// and carries the others over from Previous. It needs a partitioned definition and
	// a Previous version of the same identity; otherwise the build is full.
	Incremental  bool
	UpdateWindow time.Duration
	Previous     *Version
	// Progress, when set, is called before each partition and when a partition is stored.
	Progress func(msg string)
}

// Build runs the build and returns the new version. On error no file the build wrote is
// referenced by anything; the caller's catalog is untouched.
func (b *Builder) Build(ctx context.Context, req Request) (*Version, error) {
	if b.Storage == nil {
		return nil, errors.New("builder: no storage")
	}
	def := req.Def
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("rollup", def.Name, "version", req.VersionID)
	progress := req.Progress
	if progress == nil {
		progress = func(string) {}
	}

	conn, err := b.connect(ctx, def)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pc := conn.PgConn()
	// The modification counters before the snapshot: a change they miss is in
	// the snapshot, so unmoved counters later mean the version still holds.
	counters, countersOK, err := Counters(ctx, conn, def.SourceTables())
	if err != nil {
		return nil, err
	}
	// A lambda rollup on an id column takes its cutoff before its snapshot,
	// once the transactions that may still commit ids below it have ended.
	ids, err := lambdaIDCutoff(ctx, conn, def, log)
	if err != nil {
		return nil, err
	}
	// One snapshot for the refresh key and every partition: the version is exactly the
	// warehouse's state at its watermark.
	if err := execAll(ctx, pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("start snapshot: %w", err)
	}
	v := &Version{ID: req.VersionID, Identity: def.Identity()}
	if countersOK {
		v.Counters = counters
	}
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&v.Started); err != nil {
		return nil, fmt.Errorf("read snapshot time: %w", err)
	}
	v.Started = v.Started.UTC()
	if req.RefreshSQL != "" {
		if v.Watermark, err = RefreshKey(ctx, pc, req.RefreshSQL); err != nil {
			return nil, fmt.Errorf("refresh key: %w", err)
		}
	}
	plan, err := NewPlan(ctx, pc, def)
	if err != nil {
		return nil, err
	}
	if err := plan.foldLambda(ctx, conn, ids); err != nil {
		return nil, err
	}
	v.Columns, v.TimeType, v.Windows, v.LambdaCutoff = plan.Columns, plan.TimeType, plan.Windows, plan.LambdaCutoff
	v.LambdaCutoffID = plan.LambdaCutoffID

	// A rolling window moves between builds: partitions of an earlier build hold
	// another window's rows, so such a rollup is always built whole.
	incremental := req.Incremental && def.Partitioned() && req.Previous != nil &&
		req.Previous.Identity == v.Identity && !req.Previous.Truncated && len(plan.Windows) == 0 &&
		(def.Lambda == nil || req.Previous.LambdaCutoff != nil || req.Previous.LambdaCutoffID != nil)
	if incremental && def.Lambda != nil {
		plan.previousCutoff, plan.previousCutoffID = req.Previous.LambdaCutoff, req.Previous.LambdaCutoffID
	}
	duck, err := b.openDuckDB(ctx)
	if err != nil {
		return nil, err
	}
	defer duck.close()
	dconn, err := duck.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	defer dconn.Close()
	limit := int64(0)
	if def.MaxRows > 0 {
		limit = def.MaxRows + 1
	}
	hasRange := def.BuildRangeStart != "" && def.BuildRangeEnd != ""
	// One query reads every partition's rows (a single scan of the warehouse); DuckDB
	// then cuts the partitions out of its copy by time bucket, which lines up with the
	// partition bounds because partitions hold whole buckets. A full partitioned build
	// without build_range learns its partitions from the rows it read, so the warehouse
	// is not scanned a second time for the time range.
	// An incremental build learns the time range from the warehouse: how
	// cheaply depends on the time column (incrementalRangeSQL).
	var timeCol timeColumn
	if incremental {
		if timeCol, err = describeTimeColumn(ctx, conn, def); err != nil {
			return nil, err
		}
	}
	var ranges []*Range
	var allTime, loaded bool
	var rows int64
	if plan.TimeType != nil && def.Partitioned() && !hasRange && !incremental {
		progress("reading rows from the warehouse")
		if rows, err = loadRows(ctx, pc, dconn, plan, nil, limit); err != nil {
			return nil, err
		}
		loaded = true
		var lo, hi *time.Time
		var nulls int64
		if err := dconn.QueryRowContext(ctx, "SELECT min(t), max(t), count(*) - count(t) FROM part").Scan(&lo, &hi, &nulls); err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
		ranges, allTime, err = b.ranges(ctx, conn, plan, false, 0, false, &dataRange{lo: lo, hi: hi, nulls: nulls})
	} else {
		ranges, allTime, err = b.ranges(ctx, conn, plan, incremental, req.UpdateWindow, timeCol.notNull, nil)
	}
	if err != nil {
		return nil, err
	}
	v.AllTime, v.Incremental = allTime, incremental
	if timeCol.known && !timeCol.indexed {
		v.Warning = fmt.Sprintf("no index on %s leads with %s: every incremental build reads the table whole", def.Table, def.TimeDimension)
		if _, seen := b.scanWarned.LoadOrStore(def.Name+"\x00"+v.Identity, true); !seen {
			log.Warn("incremental builds scan the table: index its time dimension", "table", def.Table, "column", def.TimeDimension)
		}
	}

	var built []Partition
	if len(ranges) > 0 {
		if !loaded {
			var whole *Range
			if ranges[0] != nil {
				whole = &Range{Start: ranges[0].Start, End: ranges[len(ranges)-1].End}
			}
			var base []Partition
			merge := false
			if incremental {
				var from time.Time
				if from, base, merge = plan.mergeBase(req.Previous, req.UpdateWindow, ranges[0]); merge {
					whole.Start = from
					v.Merged = true
				}
			}
			progress(fmt.Sprintf("reading %d partition(s) from the warehouse", len(ranges)))
			if rows, err = loadRows(ctx, pc, dconn, plan, whole, limit); err != nil {
				return nil, err
			}
			if merge {
				if err := b.mergeInto(ctx, dconn, duck.dir, plan, base); err != nil {
					if ctx.Err() != nil {
						return nil, err
					}
					// A previous file missing or damaged in storage costs a
					// reread of the partitions, not the build.
					log.Warn("cannot merge with the previous version; reading the partitions whole", "err", err)
					v.Merged, whole.Start = false, ranges[0].Start
					if rows, err = loadRows(ctx, pc, dconn, plan, whole, limit); err != nil {
						return nil, err
					}
				} else {
					log.Debug("merged with the previous version below its cutoff", "from", whole.Start, "rows_read", rows, "partitions", len(base))
				}
			}
		}
		conn := dconn
		if limit > 0 && rows >= limit {
			// The query returned one row more than max_rows allows: which rows are missing
			// is arbitrary, so the whole version is marked and will not answer queries.
			v.Truncated = true
			v.Warning = fmt.Sprintf("max_rows %d reached: the rollup is missing rows and will not answer queries", def.MaxRows)
			log.Warn("rollup truncated by max_rows", "max_rows", def.MaxRows)
			if _, err := conn.ExecContext(ctx, "DELETE FROM part WHERE rowid = (SELECT max(rowid) FROM part)"); err != nil {
				return nil, fmt.Errorf("duckdb: %w", err)
			}
		}
		for i, r := range ranges {
			label := "all"
			if r != nil {
				label = r.Start.UTC().Format("20060102T150405Z")
			}
			key := objectKey(def.Name, v.Identity, v.ID, "part-"+label+".parquet")
			p, err := b.writePartition(ctx, conn, duck.dir, plan, r, key)
			if err != nil {
				return nil, fmt.Errorf("partition %s: %w", label, err)
			}
			p.Watermark, p.Version, p.Truncated = v.Watermark, v.ID, v.Truncated
			if r != nil {
				p.Start, p.End = r.Start, r.End
			}
			built = append(built, p)
			log.Debug("partition stored", "file", key, "rows", p.Rows, "bytes", p.Bytes)
			progress(fmt.Sprintf("partition %d/%d stored (%d rows)", i+1, len(ranges), p.Rows))
		}
	}
	_ = execAll(ctx, pc, "COMMIT")

	for _, p := range built {
		v.Rebuilt = append(v.Rebuilt, p.Start)
	}
	v.Partitions = built
	if incremental {
		v.Partitions = mergePartitions(req.Previous.Partitions, built)
	}
	for _, p := range v.Partitions {
		v.Rows += p.Rows
		v.Bytes += p.Bytes
	}
	v.BuiltAt = time.Now().UTC()
	return v, nil
}

// mergePartitions replaces the partitions of prev that the new ones overlap.
func mergePartitions(prev, built []Partition) []Partition {
	var out []Partition
	for _, p := range prev {
		overlapped := false
		for _, n := range built {
			if p.Start.Before(n.End) && n.Start.Before(p.End) {
				overlapped = true
				break
			}
		}
		if !overlapped {
			out = append(out, p)
		}
	}
	out = append(out, built...)
	// Insertion sort: a handful of partitions, kept in time order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Start.Before(out[j-1].Start); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (b *Builder) connect(ctx context.Context, def *Definition) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(b.DSN)
	if err != nil {
		// The parser's message may quote the DSN; say only where it is.
		return nil, permanent(errors.New("warehouse.dsn does not parse"))
	}
	cfg.RuntimeParams["timezone"] = def.BuildTimezone
	cfg.RuntimeParams["application_name"] = "pgrollup build " + def.Name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the warehouse: %w", err)
	}
	return conn, nil
}

// ranges returns the partitions to build: nil entries mean "all rows".
// dataRange is the range of time buckets a build read, with the count of NULL buckets.
type dataRange struct {
	lo, hi *time.Time
	nulls  int64
}

func (b *Builder) ranges(ctx context.Context, conn *pgx.Conn, p *Plan, incremental bool, window time.Duration, timeNotNull bool, data *dataRange) ([]*Range, bool, error) {
	def := p.Def
	hasRange := def.BuildRangeStart != "" && def.BuildRangeEnd != ""
	if p.TimeType == nil || (!def.Partitioned() && !hasRange) {
		return []*Range{nil}, true, nil
	}
	unit := def.PartitionGranularity
	if unit == "" {
		unit = def.Granularity
	}
	tt := "timestamptz"
	if p.TimeType.OID != pgtype.TimestamptzOID {
		tt = "timestamp" // dates are cut as midnight timestamps
	}
	u := sqlquote.Literal(string(unit))
	step := sqlquote.Literal(stepOf(unit))
	var lo, hi *time.Time
	var q string
	if hasRange {
		// The requested range grows to whole buckets: a partial bucket would answer wrong.
		q = fmt.Sprintf(`SELECT date_trunc(%[1]s, s), CASE WHEN date_trunc(%[1]s, e) = e THEN e ELSE date_trunc(%[1]s, date_trunc(%[1]s, e) + %[2]s::interval) END
FROM (SELECT CAST((%[3]s) AS %[5]s) AS s, CAST((%[4]s) AS %[5]s) AS e) r`, u, step, def.BuildRangeStart, def.BuildRangeEnd, tt)
	} else if data != nil {
		if data.lo == nil || data.hi == nil {
			return nil, data.nulls == 0, nil
		}
		q = fmt.Sprintf(`SELECT date_trunc(%[1]s, s), date_trunc(%[1]s, date_trunc(%[1]s, e) + %[2]s::interval), %[4]t
FROM (SELECT CAST(%[3]s AS %[5]s) AS s, CAST(%[6]s AS %[5]s) AS e) r`,
			u, step, sqlquote.Literal(timeText(*data.lo, tt)), data.nulls == 0, tt, sqlquote.Literal(timeText(*data.hi, tt)))
	} else {
		q = incrementalRangeSQL(p, u, step, tt, timeNotNull)
	}
	allTime := false
	dst := []any{&lo, &hi}
	if !hasRange {
		dst = append(dst, &allTime)
	}
	if err := conn.QueryRow(ctx, q).Scan(dst...); err != nil {
		return nil, false, fmt.Errorf("time range: %w", err)
	}
	if lo == nil || hi == nil || !lo.Before(*hi) {
		return nil, allTime, nil // nothing to build: an empty table, or an empty range
	}
	if incremental {
		var wlo, whi time.Time
		wq := fmt.Sprintf(`SELECT date_trunc(%[1]s, CAST(now() AS %[3]s) - make_interval(secs => %[4]d)), date_trunc(%[1]s, date_trunc(%[1]s, CAST(now() AS %[3]s)) + %[2]s::interval)`,
			u, step, tt, int64(window/time.Second))
		if err := conn.QueryRow(ctx, wq).Scan(&wlo, &whi); err != nil {
			return nil, false, fmt.Errorf("update window: %w", err)
		}
		wlo, err := p.lambdaFloor(ctx, conn, unit, tt, wlo)
		if err != nil {
			return nil, false, err
		}
		if wlo.After(*lo) {
			lo = &wlo
		}
		if hasRange && whi.After(*hi) {
			whi = *hi
		}
		hi = &whi
		if !lo.Before(*hi) {
			return nil, allTime, nil
		}
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT DISTINCT date_trunc(%[1]s, g) AS b FROM generate_series(CAST($1 AS %[3]s), CAST($2 AS %[3]s), %[2]s::interval) g
UNION SELECT CAST($2 AS %[3]s) ORDER BY 1`, u, step, tt), timeText(*lo, tt), timeText(*hi, tt))
	if err != nil {
		return nil, false, fmt.Errorf("partition bounds: %w", err)
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, false, fmt.Errorf("partition bounds: %w", err)
	}
	var out []*Range
	for i := 0; i+1 < len(bounds); i++ {
		if bounds[i+1].After(*hi) {
			break
		}
		out = append(out, &Range{Start: bounds[i].UTC(), End: bounds[i+1].UTC()})
	}
	return out, allTime, nil
}

// incrementalRangeSQL is the query of the time dimension's range, cut to
// partition bounds, and of whether no row's time is NULL (rows whose time is
// NULL fall in no partition, so a version with such rows covers only its
// partitions' ranges, not all time). It runs at every incremental build, so
// it must not read the table: min and max alone are answered from an index
// on the time dimension (a count beside them would scan every row), and
// NULLs are looked for by an IS NULL search, which such an index serves too,
// unless the column is NOT NULL.
func incrementalRangeSQL(p *Plan, unit, step, tt string, notNull bool) string {
	where := p.whereClause()
	nulls := "true"
	if !notNull {
		and := " WHERE "
		if where != "" {
			and = where + " AND "
		}
		nulls = fmt.Sprintf("NOT EXISTS (SELECT FROM %s%s%s IS NULL)", p.from, and, p.timeCol)
	}
	return fmt.Sprintf(`SELECT date_trunc(%[1]s, s), date_trunc(%[1]s, date_trunc(%[1]s, e) + %[2]s::interval), %[7]s
FROM (SELECT CAST(min(%[3]s) AS %[5]s) AS s, CAST(max(%[3]s) AS %[5]s) AS e FROM %[4]s%[6]s) r`,
		unit, step, p.timeCol, p.from, tt, where, nulls)
}

// timeColumn is what the warehouse's catalog says of a time dimension that
// is a column of the fact table: declared NOT NULL, and leading an index (so
// that an incremental build reads its range of rows without scanning the
// table). known is false for an expression or a joined table's column.
type timeColumn struct {
	known, notNull, indexed bool
}

func describeTimeColumn(ctx context.Context, conn *pgx.Conn, def *Definition) (timeColumn, error) {
	if len(def.Joins) > 0 || !plainIdent.MatchString(def.TimeDimension) {
		return timeColumn{}, nil
	}
	c := timeColumn{known: true}
	err := conn.QueryRow(ctx, `SELECT a.attnotnull, EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisvalid AND i.indkey[0] = a.attnum)
FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`, def.Table, def.TimeDimension).Scan(&c.notNull, &c.indexed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return timeColumn{}, nil
	case err != nil:
		return timeColumn{}, fmt.Errorf("time dimension: %w", err)
	}
	return c, nil
}

// plainIdent is an identifier Postgres reads as itself unquoted.
var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// timeText formats a time for a parameter cast to tt (timestamp values are wall clocks in UTC).
func timeText(t time.Time, tt string) string {
	if tt == "timestamptz" {
		return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999")
}

func stepOf(g config.Granularity) string {
	if g == config.Quarter {
		return "3 months"
	}
	return "1 " + string(g)
}

// objectKey joins storage key elements.
func objectKey(parts ...string) string { return strings.Join(parts, "/") }

// duckDB is one build's private DuckDB database.
type duckDB struct {
	db        *sql.DB
	connector *duckdb.Connector
	dir       string
}

func (b *Builder) openDuckDB(ctx context.Context) (*duckDB, error) {
	dir, err := os.MkdirTemp(b.TempDir, "pgrollup-build-*")
	if err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	init := func(execer driver.ExecerContext) error {
		stmts := []string{"SET temp_directory = " + sqlquote.Literal(filepath.Join(dir, "spill"))}
		if b.MemoryLimit > 0 {
			stmts = append(stmts, "SET memory_limit = "+sqlquote.Literal(strconv.FormatInt(b.MemoryLimit, 10)+"B"))
		}
		if b.Threads > 0 {
			stmts = append(stmts, "SET threads = "+strconv.Itoa(b.Threads))
		}
		// Parquet timestamps with time zone are instants; the session zone only matters
		// for casts, which a build does not make, but UTC keeps it independent of the host.
		stmts = append(stmts, "SET TimeZone = 'UTC'")
		for _, s := range stmts {
			if _, err := execer.ExecContext(ctx, s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}
	connector, err := duckdb.NewConnector("", init)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	return &duckDB{db: db, connector: connector, dir: dir}, nil
}

func (d *duckDB) close() {
	d.db.Close()
	d.connector.Close()
	os.RemoveAll(d.dir)
}

// loadRows streams the build query's rows for r from the warehouse into the DuckDB
// table "part" and returns how many it appended.
func loadRows(ctx context.Context, pc *pgconn.PgConn, conn *sql.Conn, p *Plan, r *Range, limit int64) (int64, error) {
	decs := make([]decoder, len(p.Columns))
	formats := make([]int16, len(p.Columns))
	var cols []string
	for i, c := range p.Columns {
		d, err := newDecoder(c)
		if err != nil {
			return 0, permanent(err)
		}
		decs[i], formats[i] = d, d.format
		cols = append(cols, sqlquote.Ident(c.Name)+" "+c.DuckDBType)
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TABLE part ("+strings.Join(cols, ", ")+")"); err != nil {
		return 0, fmt.Errorf("duckdb: %w", err)
	}
	var rows int64
	err := conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "part")
		if err != nil {
			return fmt.Errorf("duckdb appender: %w", err)
		}
		rr := pc.ExecParams(ctx, p.SQL(r, limit), nil, nil, nil, formats)
		vals := make([]driver.Value, len(decs))
		var appendErr error
		for rr.NextRow() {
			for i, raw := range rr.Values() {
				if raw == nil {
					vals[i] = nil
					continue
				}
				if vals[i], appendErr = decs[i].decode(raw); appendErr != nil {
					break
				}
			}
			if appendErr == nil {
				appendErr = app.AppendRow(vals...)
			}
			if appendErr != nil {
				break
			}
			rows++
		}
		// Close drains the rest of the result when appending failed half-way.
		_, qerr := rr.Close()
		cerr := app.Close()
		switch {
		case qerr != nil:
			return fmt.Errorf("build query: %w", qerr)
		case appendErr != nil:
			return fmt.Errorf("append: %w", appendErr)
		case cerr != nil:
			return fmt.Errorf("duckdb appender: %w", cerr)
		}
		return nil
	})
	return rows, err
}

// writePartition writes the rows of "part" whose time bucket lies in r (nil: all) as a
// Parquet file sorted by the dimensions, and stores it under key.
func (b *Builder) writePartition(ctx context.Context, conn *sql.Conn, dir string, p *Plan, r *Range, key string) (Partition, error) {
	var part Partition
	where := ""
	if r != nil && p.TimeType != nil {
		t := sqlquote.Ident(layout.Time)
		where = " WHERE " + t + " >= " + p.duckTimeLiteral(r.Start) + " AND " + t + " < " + p.duckTimeLiteral(r.End)
	}
	var rows int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM part"+where).Scan(&rows); err != nil {
		return part, fmt.Errorf("duckdb: %w", err)
	}
	file := filepath.Join(dir, "part.parquet")
	order := ""
	if len(p.order) > 0 {
		order = " ORDER BY " + strings.Join(p.order, ", ")
	}
	if _, err := conn.ExecContext(ctx, "COPY (SELECT * FROM part"+where+order+") TO "+sqlquote.Literal(file)+" (FORMAT parquet, COMPRESSION zstd)"); err != nil {
		return part, fmt.Errorf("write parquet: %w", err)
	}
	defer os.Remove(file)
	// The checksum is taken from the local file, before upload: readers compare what
	// storage gives them with what this build wrote.
	size, sum, err := HashFile(file)
	if err != nil {
		return part, err
	}
	f, err := os.Open(file)
	if err != nil {
		return part, err
	}
	defer f.Close()
	if err := b.Storage.Put(ctx, key, f, size); err != nil {
		return part, fmt.Errorf("store %s: %w", key, err)
	}
	// Read back what storage holds now: the version names only objects seen in
	// storage whole, and their ETag lets a scrub notice a replaced object.
	obj, err := Stat(ctx, b.Storage, key)
	if err != nil {
		return part, fmt.Errorf("store %s: not found after upload: %w", key, err)
	}
	if obj.Size != size {
		return part, fmt.Errorf("store %s: %d bytes in storage after upload of %d", key, obj.Size, size)
	}
	part.File, part.Rows, part.Bytes, part.BuiltAt = key, rows, size, time.Now().UTC()
	part.SHA256, part.ETag = sum, obj.ETag
	return part, nil
}

// RefreshKey runs a refresh key query and returns its result as text: the rows' text
// output, tab-separated, one row per line.
func RefreshKey(ctx context.Context, pc *pgconn.PgConn, query string) (string, error) {
	q, err := canonicalQuery(query)
	if err != nil {
		return "", permanent(err)
	}
	res := pc.ExecParams(ctx, q, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", res.Err
	}
	var b strings.Builder
	for i, row := range res.Rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j, v := range row {
			if j > 0 {
				b.WriteByte('\t')
			}
			if v == nil {
				b.WriteString(`\N`)
			} else {
				b.Write(v)
			}
		}
	}
	return b.String(), nil
}

func execAll(ctx context.Context, pc *pgconn.PgConn, sql string) error {
	_, err := pc.Exec(ctx, sql).ReadAll()
	return err
}
