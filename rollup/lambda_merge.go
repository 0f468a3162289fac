package rollup

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/rollup/layout"
)

// An incremental build of a lambda rollup rebuilds the partitions from the
// one holding the previous version's cutoff. Read whole, that partition is
// every row of its day (or month) so far: at a steady insert stream, millions
// of rows read again at each refresh. Below the previous cutoff the rows are
// final — late_window says none arrives there any more, the answers already
// rely on it, and verification checks it — so when every measure part merges
// exactly, the build reads only the warehouse's rows from the previous cutoff
// on and merges their aggregates with the previous version's file of that
// partition: a refresh then costs the rows inserted since the last one.

// mergeBase returns the previous version's partitions that a lambda rollup's
// incremental build merges with the warehouse's rows at or above from (the
// previous cutoff), first being the first partition the build writes; ok is
// false when the build reads its partitions whole instead: an id column,
// files of another layout, a cutoff gone back (a wall clock when daylight
// saving time ends), an update_window reaching below the previous cutoff
// (the rows there are to be read again), max_rows, or a measure part that
// does not merge exactly.
func (p *Plan) mergeBase(prev *Version, updateWindow time.Duration, first *Range) (from time.Time, base []Partition, ok bool) {
	l := p.Def.Lambda
	switch {
	case l == nil || l.IDs || prev == nil || first == nil,
		p.previousCutoff == nil || p.LambdaCutoff == nil,
		p.LambdaCutoff.Before(*p.previousCutoff),
		updateWindow > l.LateWindow,
		p.Def.MaxRows > 0,
		!mergeable(p.Columns),
		!sameLayout(prev.Columns, p.Columns):
		return time.Time{}, nil, false
	}
	from = *p.previousCutoff
	if from.Before(first.Start) {
		return time.Time{}, nil, false
	}
	for _, part := range prev.Partitions {
		if !part.Start.Before(from) || !part.End.After(first.Start) {
			continue
		}
		// Partitions of one identity share their bounds: the previous
		// partition below the cutoff is the first one rebuilt.
		if !part.Start.Equal(first.Start) || part.Truncated || part.File == "" {
			return time.Time{}, nil, false
		}
		base = append(base, part)
	}
	return from, base, true
}

// sameLayout says files of columns a hold the columns of b, in order and
// stored as the same DuckDB types.
func sameLayout(a, b []Column) bool {
	return slices.EqualFunc(a, b, func(x, y Column) bool {
		return x.Name == y.Name && x.DuckDBType == y.DuckDBType
	})
}

// mergeable says every measure part of a rollup with columns cols merges
// exactly in DuckDB: sums of integers and decimals add, counts add, and the
// min and max of integers, decimals, dates and timestamps compare as
// Postgres compares them. Float sums depend on the order of addition, text
// compares under a collation, and distinct counts do not add.
func mergeable(cols []Column) bool {
	for _, c := range cols {
		if c.Role != RoleMeasure {
			continue
		}
		exact := c.DuckDBType == "SMALLINT" || c.DuckDBType == "INTEGER" || c.DuckDBType == "BIGINT" ||
			c.DuckDBType == "HUGEINT" || strings.HasPrefix(c.DuckDBType, "DECIMAL(")
		switch c.Part {
		case layout.PartCount:
		case layout.PartSum:
			if !exact {
				return false
			}
		case layout.PartMin, layout.PartMax:
			if !exact && c.DuckDBType != "DATE" && c.DuckDBType != "TIMESTAMP" && c.DuckDBType != "TIMESTAMPTZ" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// mergeInto adds the rows of the base partitions' files to the table "part",
// which holds the warehouse's aggregates from the previous cutoff on, and
// merges the rows of each group into one: the bucket holding the previous
// cutoff has rows on both sides of it.
func (b *Builder) mergeInto(ctx context.Context, conn *sql.Conn, dir string, p *Plan, base []Partition) error {
	for i, part := range base {
		file := filepath.Join(dir, fmt.Sprintf("base-%d.parquet", i))
		if err := b.fetch(ctx, part, file); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, "INSERT INTO part SELECT * FROM read_parquet("+sqlquote.Literal(file)+")")
		os.Remove(file)
		if err != nil {
			return fmt.Errorf("merge %s: %w", part.File, err)
		}
	}
	var keys, list []string
	for _, c := range p.Columns {
		col := sqlquote.Ident(c.Name)
		switch {
		case c.Role != RoleMeasure:
			keys = append(keys, col)
			list = append(list, col)
		case c.Part == layout.PartMin || c.Part == layout.PartMax:
			list = append(list, c.Part+"("+col+") AS "+col)
		default: // sum and count
			list = append(list, "CAST(sum("+col+") AS "+c.DuckDBType+") AS "+col)
		}
	}
	q := "CREATE TABLE merged AS SELECT " + strings.Join(list, ", ") + " FROM part"
	if len(keys) > 0 {
		q += " GROUP BY " + strings.Join(keys, ", ")
	}
	for _, stmt := range []string{q, "DROP TABLE part", "ALTER TABLE merged RENAME TO part"} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	return nil
}

// fetch copies a partition's file from storage to path and checks it against
// the checksum its version recorded.
func (b *Builder) fetch(ctx context.Context, part Partition, path string) error {
	r, err := b.Storage.Open(ctx, part.File)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	h := Hasher()
	size, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("merge: read %s: %w", part.File, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := part.Check(size, sum); err != nil {
		return fmt.Errorf("merge: %s: %w", part.File, err)
	}
	return nil
}
