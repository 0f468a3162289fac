package routing

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/rewrite"
)

// TestLoadTablesCollations reads each column's collation, and whether the
// database's default sorts bytewise, from databases created with libc's C,
// libc's en_US.UTF-8 and ICU's en-US (whose datcollate is C).
func TestLoadTablesCollations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cluster(t)
	cfg := &config.Config{Tables: []config.Table{{Name: "public.words"}}}
	const fixture = `CREATE COLLATION en_libc (provider = libc, locale = 'en_US.UTF-8');
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION c_too (provider = libc, locale = 'C');
CREATE TABLE words (d text, c varchar(10) COLLATE "C", p text COLLATE "POSIX", c2 text COLLATE c_too,
	e text COLLATE en_libc, u text COLLATE "en-US-x-icu", ci text COLLATE ci, n int, nm name)`
	want := map[string]*rewrite.Collation{
		"d":  nil,
		"c":  {Name: "C", SQL: `pg_catalog."C"`, Bytewise: true},
		"p":  {Name: "POSIX", SQL: `pg_catalog."POSIX"`, Bytewise: true},
		"c2": {Name: "c_too", SQL: "public.c_too", Bytewise: true},
		"e":  {Name: "en_libc", SQL: "public.en_libc"},
		"u":  {Name: "en-US-x-icu", SQL: `pg_catalog."en-US-x-icu"`},
		"ci": {Name: "ci", SQL: "public.ci", Nondeterministic: true},
		"n":  nil,
		"nm": {Name: "C", SQL: `pg_catalog."C"`, Bytewise: true},
	}
	for _, db := range []struct {
		name     string
		locale   pgcluster.Locale
		bytewise bool
	}{
		{"routing_coll_c", pgcluster.Locale{LibC: "C"}, true},
		{"routing_coll_posix", pgcluster.Locale{LibC: "POSIX"}, true},
		{"routing_coll_c_utf8", pgcluster.Locale{LibC: "C.UTF-8"}, false},
		{"routing_coll_en", pgcluster.Locale{LibC: "en_US.UTF-8"}, false},
		{"routing_coll_icu", pgcluster.Locale{ICU: "en-US"}, false},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn, err := c.NewLocaleDatabase(ctx, db.name, db.locale, fixture)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			bytewise, err := TextSortsBytewise(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if bytewise != db.bytewise {
				t.Errorf("TextSortsBytewise = %v, want %v", bytewise, db.bytewise)
			}
			tables, err := LoadTables(ctx, conn, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cols := tables["public.words"].Columns
			if len(cols) != len(want) {
				t.Fatalf("%d columns, want %d", len(cols), len(want))
			}
			for _, col := range cols {
				w := want[col.Name]
				switch {
				case w == nil && col.Collation != nil:
					t.Errorf("column %s: collation %+v, want the default", col.Name, *col.Collation)
				case w != nil && (col.Collation == nil || *col.Collation != *w):
					t.Errorf("column %s: collation %+v, want %+v", col.Name, col.Collation, *w)
				}
			}
		})
	}
}
