package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const jdbcJar = "/usr/share/java/postgresql.jar"

// jdbcFixture is the schema Compat.java reads; Metabase-style metadata calls
// see its tables, keys, comments and defaults.
const jdbcFixture = `
DROP SCHEMA IF EXISTS jdbc CASCADE;
CREATE SCHEMA jdbc;
CREATE TABLE jdbc.customers (id int PRIMARY KEY, name text NOT NULL, country char(2));
COMMENT ON TABLE jdbc.customers IS 'who buys';
CREATE TABLE jdbc.orders (
	id serial PRIMARY KEY,
	customer_id int NOT NULL REFERENCES jdbc.customers (id),
	amount numeric(10,2),
	status varchar(16) NOT NULL DEFAULT 'new',
	created_at timestamptz NOT NULL,
	note text
);
COMMENT ON COLUMN jdbc.orders.amount IS 'in euros';
CREATE INDEX orders_created ON jdbc.orders (created_at);
CREATE VIEW jdbc.big_orders AS SELECT * FROM jdbc.orders WHERE amount > 1000;
INSERT INTO jdbc.customers SELECT g, 'customer ' || g, (ARRAY['DE','FR','US'])[1 + g % 3] FROM generate_series(1, 10) g;
INSERT INTO jdbc.orders (customer_id, amount, status, created_at, note)
SELECT 1 + g % 10, round(g * 49.95, 2), (ARRAY['new','paid','shipped'])[1 + g % 3],
	timestamptz '2024-01-01 00:00:00+00' + g * interval '9 hours', CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, 100) g;
`

// TestJDBC compiles testdata/jdbc/Compat.java against Debian's pgjdbc and runs
// it directly and through the proxy; its canonical output must be identical.
func TestJDBC(t *testing.T) {
	requireTool(t, "javac", "java", jdbcJar)
	ctx := testCtx(t, 120*time.Second)
	owner := connect(t, ctx, directDSN(userScram, dbMain))
	if _, err := owner.Exec(ctx, jdbcFixture); err != nil {
		t.Fatal(err)
	}
	classes := t.TempDir()
	javac := exec.CommandContext(ctx, "javac", "-nowarn", "-cp", jdbcJar, "-d", classes, "testdata/jdbc/Compat.java")
	if out, err := javac.CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	out := differential(t, ctx, "pgjdbc", func(t *testing.T, ctx context.Context, tg target) string {
		url := fmt.Sprintf("jdbc:postgresql://%s/%s", tg.addr(), dbMain)
		cmd := exec.CommandContext(ctx, "java", "-Duser.timezone=UTC", "-Duser.language=en", "-Xshare:auto",
			"-XX:TieredStopAtLevel=1", "-cp", jdbcJar+string(os.PathListSeparator)+classes, "Compat", url, userScram, passwords[userScram])
		cmd.Env = cleanEnv()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: java Compat: %v\nstderr:\n%s\nstdout:\n%s", tg.name, err, stderr.String(), tail([]byte(stdout.String()), 40))
		}
		return stdout.String()
	})
	mustContain(t, "pgjdbc", out,
		"String:S_1 str=S_1", "String:S_2", // the PreparedStatements became server-side statements
		"TABLE_NAME=orders COLUMN_NAME=amount DATA_TYPE=2 TYPE_NAME=numeric COLUMN_SIZE=10 DECIMAL_DIGITS=2",
		"TABLE_NAME=big_orders TABLE_TYPE=VIEW",
		"PKTABLE_NAME=customers PKCOLUMN_NAME=id FKTABLE_NAME=orders FKCOLUMN_NAME=customer_id",
		"row | Integer:100 str=100 | String:", // fetchSize: the last of 100 rows arrived
		"== maxRows\ncols | g int4/4 p=10 s=0 class=java.lang.Integer\n",
		"maxRows prepared rows=3",
		"prepared fetch rows=45",
		"state=22012", "state=42703", "state=42601", "state=23505", "state=22P02", "state=25P02",
		"cancelled: state=57014", "cancelled within 5s=true", "usable after cancel",
		"batch counts=[1, 1, 1", "== end\nvalid=true")
	if strings.Count(out, "row | Integer:") < 100 {
		t.Errorf("fewer rows than expected in the JDBC output")
	}
	mustContain(t, "pgjdbc", out, "row | Integer:7 str=7\nrows=7\n") // setMaxRows(7) cut at 7
}
