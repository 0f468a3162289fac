package routing

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Querier is the part of a warehouse connection pool that reads one row (a
// *pgxpool.Pool satisfies it).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Warehouse is the part of a warehouse connection pool the catalog and the
// context watch read with.
type Warehouse interface {
	Querier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// tableColumnsQuery lists a table's live columns with their types as
// format_type spells them, which rewrite.ParseType reads, and the collation
// of each text column that does not have the database's default (OID 100).
// Columns that may not exist in older releases are read through to_jsonb.
const tableColumnsQuery = `SELECT c.oid, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
  coalesce(co.collname, ''), coalesce(co.collprovider::text, ''), coalesce(to_jsonb(co)->>'collcollate', ''),
  coalesce((to_jsonb(co)->>'collisdeterministic')::boolean, true),
  coalesce(pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// LoadTables reads the columns of every table the configuration names from
// the warehouse's catalog, so that names resolve as Postgres resolves them.
// A column of a type the rewriter does not know keeps OID 0, and a rollup
// needing it then passes through.
func LoadTables(ctx context.Context, db Warehouse, cfg *config.Config) (map[string]*rewrite.Table, error) {
	names := map[string]bool{}
	for _, r := range cfg.Rollups {
		names[r.Table] = true
	}
	for _, t := range cfg.Tables {
		names[t.Name] = true
		for _, j := range t.Joins {
			names[j.Table] = true
		}
	}
	tables := map[string]*rewrite.Table{}
	for name := range names {
		t, err := loadTable(ctx, db, name)
		if err != nil {
			return nil, err
		}
		tables[qualified(name)] = t
	}
	return tables, nil
}

func loadTable(ctx context.Context, db Warehouse, name string) (*rewrite.Table, error) {
	rows, err := db.Query(ctx, tableColumnsQuery, name)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", name, err)
	}
	defer rows.Close()
	t := &rewrite.Table{Name: qualified(name)}
	for rows.Next() {
		var col rewrite.Column
		var typ, collName, provider, collate, collSQL string
		var deterministic bool
		if err := rows.Scan(&t.OID, &col.Name, &col.AttNum, &typ, &collName, &provider, &collate, &deterministic, &collSQL); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", name, err)
		}
		col.Type, _ = rewrite.ParseType(typ)
		if collName != "" {
			col.Collation = &rewrite.Collation{
				Name:             collName,
				SQL:              collSQL,
				Bytewise:         provider == "c" && isCLocale(collate),
				Nondeterministic: !deterministic,
			}
		}
		t.Columns = append(t.Columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", name, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("table %s does not exist in the warehouse", name)
	}
	if err := loadIndexes(ctx, db, t); err != nil {
		return nil, err
	}
	return t, nil
}

// qualified names a table as the catalog keys it: schema.table, public by default.
func qualified(name string) string {
	if strings.Contains(name, ".") {
		return name
	}
	return "public." + name
}

// TextSortsBytewise reports whether the warehouse database's default
// collation compares text as DuckDB does: libc's C or POSIX. A database whose
// locale provider is ICU sorts by its ICU locale whatever datcollate says
// (CREATE DATABASE ... LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C').
// This decides for text columns of the default collation whether ORDER BY
// and ranges may be computed from a rollup.
func TextSortsBytewise(ctx context.Context, db Querier) (bool, error) {
	var collate, provider string
	err := db.QueryRow(ctx, `SELECT datcollate, coalesce(to_jsonb(d)->>'datlocprovider', 'c')
FROM pg_catalog.pg_database d WHERE datname = current_database()`).Scan(&collate, &provider)
	if err != nil {
		return false, fmt.Errorf("database collation: %w", err)
	}
	return provider == "c" && isCLocale(collate), nil
}

// isCLocale reports whether a libc LC_COLLATE compares bytewise. C.UTF-8
// and every other locale count as not: only these two are certain.
func isCLocale(collate string) bool { return collate == "C" || collate == "POSIX" }

// NewServingCatalog is the serving catalog of a configuration before any
// build has been seen: the real table columns, every rollup pending. Builds
// replace it with snapshots that have active versions. (The offline catalog
// of the explain command, rewrite.NewOfflineCatalog, instead takes every
// rollup as built; the build catalog in NATS is jobs.Catalog.)
func NewServingCatalog(cfg *config.Config, tables map[string]*rewrite.Table, bytewise bool) (*rewrite.Catalog, error) {
	cat, err := rewrite.NewOfflineCatalog(cfg, nil)
	if err != nil {
		return nil, err
	}
	cat.Tables = tables
	cat.PartialColumns = false
	cat.TextSortsBytewise = bytewise
	for _, r := range cat.Rollups {
		r.Status = rewrite.StatusPending
		r.Version = ""
		r.Partitions = nil
		r.AllTime = false
		r.Rows, r.Bytes = 0, 0
	}
	return cat, nil
}
