package advise

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/routing"
)

// Estimator estimates a rollup's rows from the warehouse's statistics: the
// product of its dimensions' distinct values (pg_stats.n_distinct) and its
// time buckets (the span of the time column's histogram), at most the fact
// table's rows (pg_class.reltuples). A table never analysed is counted
// instead: count(DISTINCT column), min and max, count(*).
type Estimator struct {
	DB     routing.Querier
	Config *config.Config

	distinct map[string]float64
	spans    map[string][2]time.Time
	rows     map[string]float64
}

// Rows implements Options.Rows.
func (e *Estimator) Rows(ctx context.Context, r config.Rollup) (int64, error) {
	if e.distinct == nil {
		e.distinct, e.spans, e.rows = map[string]float64{}, map[string][2]time.Time{}, map[string]float64{}
	}
	total, err := e.tableRows(ctx, r.Table)
	if err != nil {
		return 0, err
	}
	est := 1.0
	for _, d := range r.Dimensions {
		table, col := e.column(r.Table, d)
		n, err := e.distinctValues(ctx, table, col)
		if err != nil {
			return 0, err
		}
		est *= max(n, 1)
	}
	if r.TimeDimension != "" {
		table, col := e.column(r.Table, r.TimeDimension)
		span, err := e.span(ctx, table, col)
		if err != nil {
			return 0, err
		}
		est *= buckets(span, r.Granularity)
	}
	return int64(math.Ceil(min(est, max(total, 1)))), nil
}

// column splits a config column reference (`col` of the fact table or
// `table.col` of a declared join) into the qualified table and the column.
func (e *Estimator) column(fact, ref string) (table, col string) {
	unq := func(s string) string { return strings.Trim(s, `"`) }
	i := strings.LastIndexByte(ref, '.')
	if i < 0 {
		return fact, unq(ref)
	}
	rel, col := unq(ref[:i]), unq(ref[i+1:])
	if t := e.Config.Table(fact); t != nil {
		for _, j := range t.Joins {
			if j.Table == rel || strings.HasSuffix(j.Table, "."+rel) {
				return j.Table, col
			}
		}
	}
	return rel, col
}

// tableRows is the table's row count as the planner estimates it, or counted.
func (e *Estimator) tableRows(ctx context.Context, table string) (float64, error) {
	if n, ok := e.rows[table]; ok {
		return n, nil
	}
	var n float64
	err := e.DB.QueryRow(ctx, `SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = to_regclass($1)`, table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rows of %s: %w", table, err)
	}
	if n <= 0 {
		var c int64
		if err := e.DB.QueryRow(ctx, "SELECT count(*) FROM "+quoteTable(table)).Scan(&c); err != nil {
			return 0, fmt.Errorf("counting %s: %w", table, err)
		}
		n = float64(c)
	}
	e.rows[table] = n
	return n, nil
}

// distinctValues is the column's number of distinct values, NULL counting
// as one.
func (e *Estimator) distinctValues(ctx context.Context, table, col string) (float64, error) {
	k := table + "." + col
	if n, ok := e.distinct[k]; ok {
		return n, nil
	}
	schema, rel := splitTable(table)
	var nd, nullFrac float64
	err := e.DB.QueryRow(ctx, `SELECT n_distinct::float8, null_frac::float8 FROM pg_catalog.pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 ORDER BY inherited LIMIT 1`, schema, rel, col).Scan(&nd, &nullFrac)
	var n float64
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var c int64
		q := fmt.Sprintf("SELECT count(DISTINCT %s) + max(CASE WHEN %[1]s IS NULL THEN 1 ELSE 0 END) FROM %s", sqlquote.Ident(col), quoteTable(table))
		if err := e.DB.QueryRow(ctx, q).Scan(&c); err != nil {
			return 0, fmt.Errorf("counting %s: %w", k, err)
		}
		n = float64(c)
	case err != nil:
		return 0, fmt.Errorf("statistics of %s: %w", k, err)
	case nd < 0:
		rows, err := e.tableRows(ctx, table)
		if err != nil {
			return 0, err
		}
		n = -nd * rows
	default:
		n = nd
	}
	if nullFrac > 0 {
		n++
	}
	e.distinct[k] = n
	return n, nil
}

// span is the range of a time column's values: its histogram's bounds, or
// its min and max.
func (e *Estimator) span(ctx context.Context, table, col string) ([2]time.Time, error) {
	k := table + "." + col
	if s, ok := e.spans[k]; ok {
		return s, nil
	}
	schema, rel := splitTable(table)
	var lo, hi *time.Time
	err := e.DB.QueryRow(ctx, `SELECT b[1], b[array_length(b, 1)] FROM (
		SELECT histogram_bounds::text::timestamptz[] AS b FROM pg_catalog.pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3 ORDER BY inherited LIMIT 1) s`, schema, rel, col).Scan(&lo, &hi)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return [2]time.Time{}, fmt.Errorf("statistics of %s: %w", k, err)
	}
	if lo == nil || hi == nil {
		q := fmt.Sprintf("SELECT min(%s)::timestamptz, max(%[1]s)::timestamptz FROM %s", sqlquote.Ident(col), quoteTable(table))
		if err := e.DB.QueryRow(ctx, q).Scan(&lo, &hi); err != nil {
			return [2]time.Time{}, fmt.Errorf("range of %s: %w", k, err)
		}
	}
	var s [2]time.Time
	if lo != nil && hi != nil {
		s = [2]time.Time{*lo, *hi}
	}
	e.spans[k] = s
	return s, nil
}

// grainLength is a bucket's length, months and years on average.
var grainLength = map[config.Granularity]time.Duration{
	config.Hour:    time.Hour,
	config.Day:     24 * time.Hour,
	config.Week:    7 * 24 * time.Hour,
	config.Month:   730 * time.Hour,
	config.Quarter: 2190 * time.Hour,
	config.Year:    8766 * time.Hour,
}

// buckets is how many buckets of g a span of time meets.
func buckets(span [2]time.Time, g config.Granularity) float64 {
	l := grainLength[g]
	if l == 0 || span[1].Before(span[0]) {
		return 1
	}
	return math.Floor(float64(span[1].Sub(span[0]))/float64(l)) + 1
}

func splitTable(name string) (schema, table string) {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "public", name
}

func quoteTable(name string) string {
	s, t := splitTable(name)
	return sqlquote.Ident(s) + "." + sqlquote.Ident(t)
}
