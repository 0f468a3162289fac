package rollup

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestFoldWindows folds clock-relative filters the way a build does, in a transaction
// and a zone, and checks each folded bound against Postgres's own value of it in the
// same transaction; filters of other shapes stay as they are.
func TestFoldWindows(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "fold_windows", `CREATE TABLE ev (at timestamptz, ts timestamp, d date, n int)`)
	cases := []struct {
		filters []string
		zone    string
		want    []string // per window: column op, with the bound's type name
		bounds  []string // the bound as Postgres should evaluate it
		same    []bool   // per filter: left as it is
		conj    []int
	}{
		{filters: []string{"at >= date_trunc('day', now()) - interval '52 weeks'"}, zone: "UTC",
			want: []string{"ev.at >= timestamp with time zone"}, bounds: []string{"date_trunc('day', now()) - interval '52 weeks'"}, conj: []int{0}},
		{filters: []string{"at >= date_trunc('day', now()) - interval '52 weeks'"}, zone: "America/New_York",
			want: []string{"ev.at >= timestamp with time zone"}, bounds: []string{"date_trunc('day', now()) - interval '52 weeks'"}, conj: []int{0}},
		{filters: []string{"n > 0", "at > now() - interval '30 days' AND at < current_date"}, zone: "Asia/Kolkata",
			want:   []string{"ev.at > timestamp with time zone", "ev.at < date"},
			bounds: []string{"now() - interval '30 days'", "current_date"}, same: []bool{true, false}, conj: []int{1, 2}},
		{filters: []string{"current_timestamp - interval '1 day' <= at"}, zone: "UTC",
			want: []string{"ev.at >= timestamp with time zone"}, bounds: []string{"current_timestamp - interval '1 day'"}, conj: []int{0}},
		{filters: []string{"ts >= localtimestamp - interval '2 hours'", "d >= current_date - 7"}, zone: "Europe/Berlin",
			want:   []string{"ev.ts >= timestamp without time zone", "ev.d >= date"},
			bounds: []string{"localtimestamp - interval '2 hours'", "current_date - 7"}, conj: []int{0, 1}},
		// Not folded: another clock, a time of day, an equality, a column on both sides,
		// a bound that is not a time.
		{filters: []string{"at >= statement_timestamp() - interval '1 day'", "n = extract(day FROM now())", "at >= now() - (n * interval '1 day')"}, zone: "UTC",
			same: []bool{true, true, true}},
		{filters: []string{"n < extract(epoch FROM now())"}, zone: "UTC", same: []bool{true}},
	}
	for _, c := range cases {
		t.Run(c.filters[0]+" in "+c.zone, func(t *testing.T) {
			cfg, err := pgconn.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.RuntimeParams["timezone"] = c.zone
			conn, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if err := execAll(ctx, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
				t.Fatal(err)
			}
			q, _ := newQualifier("ev")
			qualified, err := q.exprs(c.filters)
			if err != nil {
				t.Fatal(err)
			}
			out, ws, err := foldWindows(ctx, conn, qualified)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != len(c.want) {
				t.Fatalf("windows %+v, want %d", ws, len(c.want))
			}
			for i, w := range ws {
				if got := w.Column + " " + w.Op + " " + w.Type.Name; got != c.want[i] {
					t.Errorf("window %d is %q, want %q", i, got, c.want[i])
				}
				if w.Conjunct != c.conj[i] {
					t.Errorf("window %d is conjunct %d, want %d", i, w.Conjunct, c.conj[i])
				}
				// Postgres's own value of the bound in this transaction, and the
				// literal the build query uses, are both the recorded instant.
				res := conn.ExecParams(ctx, "SELECT ("+c.bounds[i]+") = "+typedTimeLiteral(w.Value, w.Type.OID)+", "+w.SQL+" IS NOT NULL FROM (SELECT NULL::timestamptz AS at, NULL::timestamp AS ts, NULL::date AS d) ev", nil, nil, nil, nil).Read()
				if res.Err != nil {
					t.Fatalf("%s: %v", w.SQL, res.Err)
				}
				if string(res.Rows[0][0]) != "t" {
					t.Errorf("window %d folded to %s, Postgres computes another value for %s", i, w.Value, c.bounds[i])
				}
			}
			for i, same := range c.same {
				if same != (out[i] == qualified[i]) {
					t.Errorf("filter %d: %q became %q", i, qualified[i], out[i])
				}
			}
			// Nothing above aborted the build's transaction.
			if err := execAll(ctx, conn, "SELECT 1"); err != nil {
				t.Fatalf("transaction aborted: %v", err)
			}
		})
	}
}

// TestBuildRollingWindow builds a rollup filtered to the last 52 weeks and checks that
// the version records the window the build read, at the build's now() in
// build_timezone, that it holds exactly the rows the recorded condition selects, and
// that the build is never incremental.
func TestBuildRollingWindow(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t, "rolling_build",
		`CREATE TABLE orders (id int, status text, amount numeric(12,2), created_at timestamptz NOT NULL)`,
		`INSERT INTO orders SELECT i, (ARRAY['new','paid'])[1 + i % 2], i % 100, now() - i * interval '3 hours 7 minutes' FROM generate_series(0, 5000) i`)
	cfg := loadConfig(t, dsn, t.TempDir(), `
build_timezone: America/New_York
rollups:
  - name: recent
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: day
    partition_granularity: month
    measures: [sum(amount), count(*)]
    filters: ["created_at >= date_trunc('day', now()) - interval '52 weeks'"]
`)
	b := newBuilder(t, dsn, cfg)
	def := mustDefinition(t, cfg, "recent")
	v, err := b.Build(ctx, Request{Def: def, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Windows) != 1 {
		t.Fatalf("windows %+v", v.Windows)
	}
	w := v.Windows[0]
	ny, _ := time.LoadLocation("America/New_York")
	s := v.Started.In(ny)
	want := time.Date(s.Year(), s.Month(), s.Day()-52*7, 0, 0, 0, 0, ny)
	if !w.Value.Equal(want) {
		t.Errorf("window starts at %s, want %s (52 weeks before the build's day in New York)", w.Value, want)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT status, date_trunc('day', created_at, 'America/New_York') FROM orders WHERE `+w.SQL+` GROUP BY 1, 2) g`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != v.Rows {
		t.Errorf("version has %d rows, the recorded condition %s selects %d groups", v.Rows, w.SQL, rows)
	}
	v2, err := b.Build(ctx, Request{Def: def, VersionID: "v2", Incremental: true, UpdateWindow: 48 * time.Hour, Previous: v})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Incremental || len(v2.Windows) != 1 {
		t.Errorf("rebuild: incremental=%v windows=%+v", v2.Incremental, v2.Windows)
	}
}
