package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// collationFixtureSQL is one text value per row in every collation at once:
// d has the database's default, c COLLATE "C", e libc's en_US, u ICU's en-US
// and ci a nondeterministic (case-insensitive) ICU collation. The values
// sort differently under each: case, accents, punctuation, spaces, digits.
const collationFixtureSQL = `
CREATE COLLATION en_libc (provider = libc, locale = 'en_US.UTF-8');
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE words (
	id int PRIMARY KEY, g int NOT NULL, n int NOT NULL,
	d text, c text COLLATE "C", e text COLLATE en_libc, u text COLLATE "en-US-x-icu", ci text COLLATE ci
);
INSERT INTO words
SELECT row_number() OVER (), (k + i) % 3, k * 10 + i, v, v, v, v, v
FROM unnest(ARRAY['apple', 'Apple', 'APPLE', 'banana', 'Banana', 'éclair', 'eclair', 'Éclair', 'zebra',
	'Zebra', 'a b', 'a-b', 'ab', 'a_b', 'ab c', '10', '9', '1', 'Ärger', 'arger', '', ' lead', 'x', NULL,
	'Z', 'ü', 'u', 'M', 'm', 'Ma']) WITH ORDINALITY AS t(v, k), generate_series(1, 3) i;
ANALYZE words;
`

// collationDB is one database of the collation test: its default collation,
// and whether that compares bytewise.
type collationDB struct {
	name     string
	locale   pgcluster.Locale
	bytewise bool
}

// collationCase is one statement of the collation test. want: "hit" (served
// whole from a rollup), "finished" (the warehouse finished it around a
// rollup's answer), "collation" (passed through with that reason) or ""
// (only the answer is compared).
type collationCase struct {
	sql     string
	want    string
	ordered bool // the statement orders its rows: compared in order
}

func collationCases(db collationDB) []collationCase {
	bytewise := map[string]bool{"d": db.bytewise, "c": true, "e": false, "u": false}
	served := func(col string) string {
		if bytewise[col] {
			return "hit"
		}
		return "collation"
	}
	finished := func(col string) string {
		if bytewise[col] {
			return "hit"
		}
		return "finished"
	}
	var cases []collationCase
	for _, x := range []string{"d", "c", "e", "u"} {
		for _, dir := range []string{"", " ASC NULLS FIRST", " DESC", " DESC NULLS LAST"} {
			// Ordering text under a collation that is not bytewise is
			// left to the warehouse, which finishes the statement around
			// the groups a rollup answers (their values keep the column's
			// collation).
			want := "finished"
			if bytewise[x] {
				want = "hit"
			}
			cases = append(cases, collationCase{sql: "SELECT " + x + ", count(*), sum(n) FROM words GROUP BY " + x + " ORDER BY " + x + dir, want: want, ordered: true})
		}
		cases = append(cases,
			collationCase{sql: "SELECT " + x + `, count(*) FROM words GROUP BY 1 ORDER BY ` + x + ` COLLATE "C" DESC`, want: "hit", ordered: true},
			collationCase{sql: "SELECT " + x + ", count(*) FROM words GROUP BY 1", want: "hit"},
			collationCase{sql: "SELECT count(*), sum(n) FROM words WHERE " + x + " > 'M'", want: served(x)},
			collationCase{sql: "SELECT count(*) FROM words WHERE " + x + " BETWEEN 'a' AND 'b'", want: served(x)},
			collationCase{sql: "SELECT count(*) FROM words WHERE " + x + ` COLLATE "C" >= 'a'`, want: "hit"},
			collationCase{sql: "SELECT min(" + x + "), max(" + x + ") FROM words", want: served(x)},
			// words_text stores min and max per g: at its exact grain
			// they are returned as the warehouse computed them.
			collationCase{sql: "SELECT g, min(" + x + "), max(" + x + ") FROM words GROUP BY g ORDER BY g", want: "hit", ordered: true},
			// ... but comparing them is the collation's business: the
			// warehouse's, around the groups, where it is not bytewise.
			collationCase{sql: "SELECT g, count(*) FROM words GROUP BY g HAVING max(" + x + ") > 'M' ORDER BY g", want: finished(x), ordered: true},
			// An ORDER BY around the aggregate orders by the collation of
			// the column it shows. (The warehouse does not finish a
			// SELECT *, whose columns' origins pgrollup does not give:
			// only the answer is compared where it is not bytewise.)
			collationCase{sql: "SELECT * FROM (SELECT " + x + ", count(*) AS k FROM words GROUP BY " + x + ") s ORDER BY " + x + " DESC", want: map[bool]string{true: "hit"}[bytewise[x]], ordered: true},
			collationCase{sql: "SELECT s." + x + ", s.k FROM (SELECT " + x + ", count(*) AS k FROM words GROUP BY " + x + ") s ORDER BY " + x + " DESC", want: finished(x), ordered: true},
		)
	}
	return append(cases,
		collationCase{sql: "SELECT ci, count(*) FROM words GROUP BY ci", want: "collation"},
		collationCase{sql: "SELECT count(*) FROM words WHERE ci = 'APPLE'", want: "collation"},
		collationCase{sql: "SELECT g, count(*) FROM words GROUP BY g ORDER BY g", want: "hit", ordered: true},
	)
}

// TestCollations runs statements whose answers depend on the collation
// through pgrollup and directly on Postgres, on databases whose default
// collation is C, libc's en_US.UTF-8 and ICU's en-US: answers must always be
// equal, and served from a rollup exactly where DuckDB's bytewise comparison
// is Postgres's.
func TestCollations(t *testing.T) {
	for _, db := range []collationDB{
		{name: "e2e_coll_c", locale: pgcluster.Locale{LibC: "C"}, bytewise: true},
		{name: "e2e_coll_en", locale: pgcluster.Locale{LibC: "en_US.UTF-8"}},
		{name: "e2e_coll_icu", locale: pgcluster.Locale{ICU: "en-US"}},
	} {
		t.Run(db.name, func(t *testing.T) { testCollationDB(t, db) })
	}
}

func testCollationDB(t *testing.T, db collationDB) {
	ctx := testCtx(t, 4*time.Minute)
	if _, err := env.pg.NewLocaleDatabase(ctx, db.name, db.locale, collationFixtureSQL, "GRANT SELECT ON words TO "+userScram); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, x := range []string{"d", "c", "e", "u"} {
		texts = append(texts, "min("+x+")", "max("+x+")")
	}
	p, _ := startTestProxy(t, ctx, db.name, filepath.Join(env.tmp, "proxy-"+db.name), env.pg.DSN(db.name), map[string]any{
		"rollups": []map[string]any{
			{"name": "words_dims", "table": "public.words", "dimensions": []string{"d", "c", "e", "u"}, "measures": []string{"count(*)", "sum(n)"}},
			{"name": "words_text", "table": "public.words", "dimensions": []string{"g"}, "measures": append(texts, "count(*)")},
			{"name": "words_ci", "table": "public.words", "dimensions": []string{"ci"}, "measures": []string{"count(*)"}},
		},
	}, "info")
	if _, err := waitRollupsActive(ctx, p, 3); err != nil {
		t.Fatal(err)
	}
	direct := connect(t, ctx, directDSN(userScram, db.name)).PgConn()
	via := connect(t, ctx, target{name: "proxy", host: p.host, port: p.port}.DSN(userScram, db.name)).PgConn()
	for _, c := range collationCases(db) {
		t.Run(c.sql, func(t *testing.T) {
			rows := measuresExplain(t, ctx, via, c.sql)
			d, err := collationRows(ctx, direct, c.sql, c.ordered)
			if err != nil {
				t.Fatalf("Postgres: %v", err)
			}
			v, err := collationRows(ctx, via, c.sql, c.ordered)
			if err != nil {
				t.Fatalf("pgrollup: %v", err)
			}
			if strings.Join(d, "\n") != strings.Join(v, "\n") {
				t.Errorf("WRONG ANSWER:\n--- Postgres\n%s\n--- pgrollup\n%s\n%s", strings.Join(d, "\n"), strings.Join(v, "\n"), measuresRender(rows))
			}
			chosen, refused, finished := false, false, false
			for i, r := range rows {
				chosen = chosen || r[1] == "chosen"
				refused = refused || strings.HasPrefix(r[2], "collation:")
				finished = finished || i == 0 && r[1] == "finished_by_warehouse"
			}
			switch {
			case c.want == "hit" && (!chosen || finished):
				t.Errorf("not served whole from a rollup:\n%s", measuresRender(rows))
			case c.want == "finished" && !finished:
				t.Errorf("not finished by the warehouse around a rollup's answer:\n%s", measuresRender(rows))
			case c.want == "collation" && (chosen || !refused):
				t.Errorf("want the collation refusal:\n%s", measuresRender(rows))
			}
		})
	}
}

// collationRows runs sql in the simple protocol and returns its rows as
// text, NULL spelt out, sorted unless the statement orders them.
func collationRows(ctx context.Context, conn *pgconn.PgConn, sql string, ordered bool) ([]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, res := range results {
		if res.Err != nil {
			return nil, res.Err
		}
		for _, row := range res.Rows {
			var cells []string
			for _, v := range row {
				if v == nil {
					cells = append(cells, "NULL")
				} else {
					cells = append(cells, fmt.Sprintf("%q", v))
				}
			}
			out = append(out, strings.Join(cells, " | "))
		}
	}
	if !ordered {
		sort.Strings(out)
	}
	return out, nil
}
