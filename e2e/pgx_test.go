package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

type queryCase struct {
	sql  string
	args []any
}

// pgxCases run in every pgx execution mode. Errors are part of the workload:
// their SQLSTATE, position and every other field must survive the proxy.
var pgxCases = []queryCase{
	{sql: "SELECT * FROM types ORDER BY id"},
	{sql: "SELECT id, t, num, tstz FROM types WHERE id = $1", args: []any{2}},
	{sql: "SELECT $1::int + $2::int AS sum, $3::text AS label, $4::numeric AS n", args: []any{40, 2, "ok", "1.50"}},
	{sql: "SELECT category, count(*), sum(amount), avg(amount), min(created_at), max(qty) FROM items GROUP BY category ORDER BY 1"},
	{sql: "SELECT g, md5(g::text) FROM generate_series(1, 3000) g"},
	{sql: "SELECT * FROM types WHERE false"},
	{sql: "SELECT 1.5::numeric(10,3) AS n, 'abc'::varchar(7) AS v, '2024-02-29'::date + 1 AS d, NULL AS nothing, 1 AS \"Mixed Case\""},
	{sql: "SELECT 1/0"},
	{sql: "SELECT nosuchcol FROM types"},
	{sql: "SELEC 1"},
	{sql: "SELECT $1::int", args: []any{"not a number"}},
	{sql: "INSERT INTO scratch (k, v) VALUES ($1, $2) RETURNING k, v, length(v)", args: []any{1, "one"}},
	{sql: "INSERT INTO scratch (k, v) VALUES ($1, $2)", args: []any{1, "duplicate"}},
	{sql: "UPDATE scratch SET v = v || '!' WHERE k = $1", args: []any{1}},
	{sql: "DELETE FROM scratch WHERE k > $1", args: []any{100}},
	{sql: "SELECT k, v FROM scratch ORDER BY k"},
	{sql: "SELECT current_setting('TimeZone'), '2024-06-01 12:00:00+00'::timestamptz"},
}

var pgxModes = []pgx.QueryExecMode{
	pgx.QueryExecModeSimpleProtocol,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
}

func TestPgxQueryModes(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	for _, mode := range pgxModes {
		t.Run(mode.String(), func(t *testing.T) {
			out := differential(t, ctx, "pgx "+mode.String(), func(t *testing.T, ctx context.Context, tg target) string {
				conn := connect(t, ctx, tg.DSN(userScram, dbMain))
				if _, err := conn.Exec(ctx, "CREATE TEMP TABLE scratch (k int PRIMARY KEY, v text)"); err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				// Twice: cached modes take a different path the second time.
				for round := 0; round < 2; round++ {
					for _, c := range pgxCases {
						fmt.Fprintf(&b, "== %s %v\n", c.sql, c.args)
						rows, err := conn.Query(ctx, c.sql, append([]any{mode}, c.args...)...)
						if err != nil {
							fmt.Fprintf(&b, "query error: %s\n", errorText(err))
							continue
						}
						b.WriteString(renderRows(rows))
					}
				}
				return b.String()
			})
			mustContain(t, "pgx "+mode.String(), out, "code=22012", "code=42703", "code=42601", "code=23505", `tag "SELECT 3000"`, `"hello"`)
		})
	}
}

// TestPgxResultFormats asks for every column in text and then in binary, and
// sends parameters in binary, at the byte level.
func TestPgxResultFormats(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	out := differential(t, ctx, "result formats", func(t *testing.T, ctx context.Context, tg target) string {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain))
		pc := conn.PgConn()
		var b strings.Builder
		for _, format := range []int16{0, 1} {
			fmt.Fprintf(&b, "== all columns, format %d\n", format)
			b.WriteString(renderResult(pc.ExecParams(ctx, "SELECT * FROM types ORDER BY id", nil, nil, nil, []int16{format})))
		}
		b.WriteString("== binary int4 parameter, mixed result formats\n")
		b.WriteString(renderResult(pc.ExecParams(ctx, "SELECT $1::int4 * 2 AS doubled, 'x' AS txt",
			[][]byte{{0, 0, 0, 21}}, []uint32{23}, []int16{1}, []int16{1, 0})))
		b.WriteString("== wrong binary parameter length\n")
		b.WriteString(renderResult(pc.ExecParams(ctx, "SELECT $1::int4", [][]byte{{0, 1}}, []uint32{23}, []int16{1}, nil)))
		b.WriteString("== simple protocol, several statements\n")
		b.WriteString(renderMulti(pc.Exec(ctx, "SELECT 1 AS a; SELECT 'two' AS b, 2.5::float8 AS c; SELECT * FROM types WHERE id = 1")))
		return b.String()
	})
	mustContain(t, "result formats", out, "format=1", `"\x00\x00\x00*"`, "code=08P01")
}

func TestPgxBatch(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			out := differential(t, ctx, "batch "+mode.String(), func(t *testing.T, ctx context.Context, tg target) string {
				cfg, err := pgx.ParseConfig(tg.DSN(userScram, dbMain))
				if err != nil {
					t.Fatal(err)
				}
				cfg.DefaultQueryExecMode = mode
				conn, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				// Not inside the batch: cached modes prepare every statement first.
				if _, err := conn.Exec(ctx, "CREATE TEMP TABLE b (k int PRIMARY KEY)"); err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				run := func(queries []queryCase) {
					batch := &pgx.Batch{}
					for _, q := range queries {
						batch.Queue(q.sql, q.args...)
					}
					br := conn.SendBatch(ctx, batch)
					for _, q := range queries {
						fmt.Fprintf(&b, "== %s\n", q.sql)
						rows, err := br.Query()
						if err != nil {
							fmt.Fprintf(&b, "query error: %s\n", errorText(err))
							continue
						}
						b.WriteString(renderRows(rows))
					}
					fmt.Fprintf(&b, "close: %s\n", errorText(br.Close()))
					fmt.Fprintf(&b, "tx status after batch: %c\n", conn.PgConn().TxStatus())
				}
				run([]queryCase{
					{sql: "INSERT INTO b VALUES ($1), ($2)", args: []any{1, 2}},
					{sql: "SELECT k FROM b ORDER BY k"},
					{sql: "SELECT count(*) FROM items WHERE category = $1", args: []any{"books"}},
				})
				run([]queryCase{
					{sql: "INSERT INTO b VALUES ($1)", args: []any{3}},
					{sql: "INSERT INTO b VALUES ($1)", args: []any{1}}, // duplicate: aborts the rest of the batch
					{sql: "SELECT k FROM b ORDER BY k"},
				})
				rows, _ := conn.Query(ctx, "SELECT k FROM b ORDER BY k")
				b.WriteString("== after the failed batch\n" + renderRows(rows))
				return b.String()
			})
			mustContain(t, "batch", out, "code=23505", `tag "SELECT 2"`)
		})
	}
}

// TestPgxPipeline drives pgconn's pipeline: several Syncs in flight, an error
// inside the first one, named statements, Describe-only prepares.
func TestPgxPipeline(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	out := differential(t, ctx, "pipeline", func(t *testing.T, ctx context.Context, tg target) string {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain))
		p := conn.PgConn().StartPipeline(ctx)
		p.SendPrepare("dbl", "SELECT $1::int * 2 AS d", nil)
		p.SendQueryPrepared("dbl", [][]byte{[]byte("21")}, nil, nil)
		p.SendQueryParams("SELECT 1/0", nil, nil, nil, nil)
		p.SendQueryParams("SELECT 'skipped'", nil, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryPrepared("dbl", [][]byte{[]byte("5")}, nil, []int16{1})
		p.SendQueryParams("SELECT id, category FROM items WHERE id <= $1 ORDER BY id", [][]byte{[]byte("3")}, nil, nil, nil)
		p.SendDeallocate("dbl")
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for syncs := 0; syncs < 2; {
			res, err := p.GetResults()
			if err != nil {
				fmt.Fprintf(&b, "result error: %s\n", errorText(err))
				continue
			}
			switch r := res.(type) {
			case *pgconn.StatementDescription:
				fmt.Fprintf(&b, "prepared %s params=%v\n", r.Name, r.ParamOIDs)
				renderFields(&b, r.Fields)
			case *pgconn.ResultReader:
				b.WriteString(renderResult(r))
			case *pgconn.PipelineSync:
				b.WriteString("sync\n")
				syncs++
			case *pgconn.CloseComplete:
				b.WriteString("close complete\n")
			case nil:
				t.Fatalf("pipeline ran dry after %d syncs", syncs)
			default:
				fmt.Fprintf(&b, "unexpected %T\n", r)
			}
		}
		if err := p.Close(); err != nil {
			fmt.Fprintf(&b, "close: %s\n", errorText(err))
		}
		return b.String()
	})
	mustContain(t, "pipeline", out, `row "42"`, "code=22012", `row "\x00\x00\x00\n"`, "close complete")
}

func TestPgxCopy(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	out := differential(t, ctx, "copy", func(t *testing.T, ctx context.Context, tg target) string {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain))
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE c (id int PRIMARY KEY, name text NOT NULL, amount numeric, at timestamptz, tags text[])`); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		rows := make([][]any, 0, 5000)
		for i := 0; i < 5000; i++ {
			rows = append(rows, []any{i, fmt.Sprintf("name %d\t\"quoted\"\n", i), fmt.Sprintf("%d.%02d", i, i%100),
				time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC), []string{"a", fmt.Sprint(i)}})
		}
		n, err := conn.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "name", "amount", "at", "tags"}, pgx.CopyFromRows(rows))
		fmt.Fprintf(&b, "CopyFrom (binary): n=%d err=%s\n", n, errorText(err))
		// A NOT NULL violation in the middle: the whole COPY fails with Postgres's error.
		n, err = conn.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "name"}, pgx.CopyFromRows([][]any{{10001, "ok"}, {10002, nil}}))
		fmt.Fprintf(&b, "CopyFrom with a NULL: n=%d err=%s\n", n, errorText(err))
		// Text COPY FROM STDIN through pgconn.
		tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("20001\ttext row\t1.5\t\\N\t{x}\n20002\tother\t\\N\t2024-05-05 05:05:05+00\t\\N\n"), "COPY c FROM STDIN")
		fmt.Fprintf(&b, "COPY FROM STDIN text: %q err=%s\n", tag.String(), errorText(err))
		tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("bad row\n"), "COPY c FROM STDIN")
		fmt.Fprintf(&b, "COPY FROM STDIN bad: %q err=%s\n", tag.String(), errorText(err))
		var out bytes.Buffer
		tag, err = conn.PgConn().CopyTo(ctx, &out, "COPY (SELECT * FROM c ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
		fmt.Fprintf(&b, "COPY TO STDOUT csv: %q err=%s bytes=%d\n%s\n", tag.String(), errorText(err), out.Len(), out.String())
		out.Reset()
		tag, err = conn.PgConn().CopyTo(ctx, &out, "COPY c TO STDOUT (FORMAT binary)")
		fmt.Fprintf(&b, "COPY TO STDOUT binary: %q err=%s bytes=%d\n", tag.String(), errorText(err), out.Len())
		return b.String()
	})
	mustContain(t, "copy", out, "CopyFrom (binary): n=5000 err=<nil>", "code=23502", `"COPY 2"`, "code=22P02", `"COPY 5002"`)
}

// TestPgxListenNotify sends notifications between two sessions through the
// proxy and checks they arrive with the payload and the sender's backend pid.
func TestPgxListenNotify(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	differential(t, ctx, "listen/notify", func(t *testing.T, ctx context.Context, tg target) string {
		listener := connect(t, ctx, tg.DSN(userScram, dbMain))
		sender := connect(t, ctx, tg.DSN(userMD5, dbMain))
		var b strings.Builder
		if _, err := listener.Exec(ctx, `LISTEN "e2e channel"`); err != nil {
			t.Fatal(err)
		}
		var senderPID uint32
		if err := sender.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&senderPID); err != nil {
			t.Fatal(err)
		}
		// Inside a transaction: delivered only at COMMIT, in order, duplicates folded.
		tx, err := sender.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"first", "second", "first", "ünïcödé"} {
			if _, err := tx.Exec(ctx, "SELECT pg_notify('e2e channel', $1)", p); err != nil {
				t.Fatal(err)
			}
		}
		waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = listener.WaitForNotification(waitCtx)
		cancel()
		fmt.Fprintf(&b, "before commit: timed out=%v\n", errors.Is(err, context.DeadlineExceeded))
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, err := listener.WaitForNotification(waitCtx)
			cancel()
			if err != nil {
				t.Fatalf("notification %d not received: %v", i, err)
			}
			fmt.Fprintf(&b, "notification channel=%q payload=%q from sender pid=%v\n", n.Channel, n.Payload, n.PID == senderPID)
		}
		// The listener still answers queries after waiting.
		var one int
		if err := listener.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		if _, err := listener.Exec(ctx, `UNLISTEN *`); err != nil {
			t.Fatal(err)
		}
		return b.String()
	})
}

func TestPgxNotice(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	out := differential(t, ctx, "notices", func(t *testing.T, ctx context.Context, tg target) string {
		var mu sync.Mutex
		var notices []string
		cfg, err := pgx.ParseConfig(tg.DSN(userScram, dbMain))
		if err != nil {
			t.Fatal(err)
		}
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			defer mu.Unlock()
			notices = append(notices, pgErrorText((*pgconn.PgError)(n)))
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `DO $$
BEGIN
	RAISE NOTICE 'hello %', 42;
	RAISE WARNING 'careful' USING DETAIL = 'some detail', HINT = 'a hint', ERRCODE = '01000';
	RAISE INFO 'info line';
	RAISE DEBUG 'not shown at default client_min_messages';
END$$`)
		_, err2 := conn.Exec(ctx, "DROP TABLE IF EXISTS no_such_table_here")
		_, err3 := conn.Exec(ctx, `DO $$BEGIN RAISE EXCEPTION 'boom %', 1 USING ERRCODE = 'P0001', HINT = 'h'; END$$`)
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("exec: %s / %s / %s\n%s\n", errorText(err), errorText(err2), errorText(err3), strings.Join(notices, "\n"))
	})
	mustContain(t, "notices", out, `message="hello 42"`, `detail="some detail"`, "severity=INFO", "does not exist, skipping", "code=P0001")
}

// parameterKeys are the settings Postgres reports with ParameterStatus.
var parameterKeys = []string{"application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
	"in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding", "server_version",
	"session_authorization", "standard_conforming_strings", "TimeZone"}

func TestPgxParameterStatus(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	out := differential(t, ctx, "parameter status", func(t *testing.T, ctx context.Context, tg target) string {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain)+"&application_name=startup%20app&timezone=Europe/Berlin")
		pc := conn.PgConn()
		var b strings.Builder
		dump := func(label string) {
			fmt.Fprintf(&b, "== %s (tx %c)\n", label, pc.TxStatus())
			for _, k := range parameterKeys {
				fmt.Fprintf(&b, "%s=%q\n", k, pc.ParameterStatus(k))
			}
		}
		dump("at connect")
		for _, s := range []string{
			"SET TimeZone = 'America/New_York'",
			"SET application_name = 'e2e app ✓'",
			"SET DateStyle = 'SQL, DMY'",
			"SET IntervalStyle = 'iso_8601'",
			"BEGIN",
			"SET LOCAL TimeZone = 'Asia/Kolkata'",
			"ROLLBACK",
			"SET SESSION AUTHORIZATION DEFAULT",
			"RESET ALL",
		} {
			_, err := conn.Exec(ctx, s)
			fmt.Fprintf(&b, "exec %s: %s\n", s, errorText(err))
			dump("after " + s)
		}
		// The full set, including anything not in parameterKeys.
		hj, err := pc.Hijack()
		if err != nil {
			t.Fatal(err)
		}
		defer hj.Conn.Close()
		keys := make([]string, 0, len(hj.ParameterStatuses))
		for k := range hj.ParameterStatuses {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "all %s=%q\n", k, hj.ParameterStatuses[k])
		}
		return b.String()
	})
	mustContain(t, "parameter status", out, `TimeZone="America/New_York"`, `application_name="e2e app ???"`, // Postgres keeps application_name ASCII

		`TimeZone="Europe/Berlin"`, `application_name="startup app"`, `DateStyle="SQL, DMY"`)
}

// TestPgxCancel cancels pg_sleep(10) with a CancelRequest; through the proxy
// the cancel must reach the right upstream backend quickly.
func TestPgxCancel(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	super := superConn(t, ctx, dbMain)
	out := differential(t, ctx, "cancel", func(t *testing.T, ctx context.Context, tg target) string {
		victim := connect(t, ctx, tg.DSN(userScram, dbMain))
		bystander := connect(t, ctx, tg.DSN(userScram, dbMain))
		var b strings.Builder

		// A cancel carrying the wrong key must not cancel anything.
		done := make(chan error, 1)
		go func() {
			_, err := bystander.Exec(ctx, "SELECT pg_sleep(0.6) /* bystander */")
			done <- err
		}()
		if err := waitForActivity(ctx, super, "%bystander%"); err != nil {
			t.Fatal(err)
		}
		if err := sendBogusCancel(ctx, tg, bystander.PgConn()); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "bystander after a wrong-key cancel: %s\n", errorText(<-done))

		start := time.Now()
		go func() {
			_, err := victim.Exec(ctx, "SELECT pg_sleep(10) /* victim */")
			done <- err
		}()
		if err := waitForActivity(ctx, super, "%victim%"); err != nil {
			t.Fatal(err)
		}
		if err := victim.PgConn().CancelRequest(ctx); err != nil {
			t.Fatalf("CancelRequest: %v", err)
		}
		select {
		case err := <-done:
			fmt.Fprintf(&b, "cancelled: %s\n", errorText(err))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s: cancel took %s, want < 2s", tg.name, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: pg_sleep(10) not cancelled within 5s", tg.name)
		}
		var one int
		err := victim.QueryRow(ctx, "SELECT 1").Scan(&one)
		fmt.Fprintf(&b, "session usable after cancel: %d %s\n", one, errorText(err))
		return b.String()
	})
	mustContain(t, "cancel", out, "bystander after a wrong-key cancel: <nil>", "code=57014", "usable after cancel: 1 <nil>")
}

// sendBogusCancel sends a CancelRequest for pc's process id with a wrong secret.
func sendBogusCancel(ctx context.Context, tg target, pc *pgconn.PgConn) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", tg.addr())
	if err != nil {
		return err
	}
	defer c.Close()
	key := append([]byte(nil), pc.SecretKey()...)
	for i := range key {
		key[i] ^= 0x5a
	}
	buf, err := (&pgproto3.CancelRequest{ProcessID: pc.PID(), SecretKey: key}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := c.Write(buf); err != nil {
		return err
	}
	// The server closes without answering; wait for that so the cancel is processed.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Read(make([]byte, 1))
	return nil
}

// TestPgxConcurrentSessions checks that sessions through the proxy stay apart:
// each sees only its own settings, temp tables and results.
func TestPgxConcurrentSessions(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	const sessions, rounds = 12, 40
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			user := []string{userScram, userMD5, userTrust}[i%3]
			conn, err := pgx.Connect(ctx, env.proxy.DSN(user, dbMain))
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
				return
			}
			defer conn.Close(ctx)
			name := fmt.Sprintf("worker %d", i)
			if _, err := conn.Exec(ctx, "SET application_name = '"+name+"'; CREATE TEMP TABLE mine (v int); INSERT INTO mine VALUES ("+fmt.Sprint(i)+")"); err != nil {
				errs <- fmt.Errorf("session %d setup: %w", i, err)
				return
			}
			for r := 0; r < rounds; r++ {
				var app, who string
				var v, echo int
				mode := pgxModes[r%len(pgxModes)]
				err := conn.QueryRow(ctx, "SELECT current_setting('application_name'), current_user, (SELECT v FROM mine), $1::int",
					mode, i*1000+r).Scan(&app, &who, &v, &echo)
				if err != nil {
					errs <- fmt.Errorf("session %d round %d: %w", i, r, err)
					return
				}
				if app != name || who != user || v != i || echo != i*1000+r {
					errs <- fmt.Errorf("session %d round %d saw another session's state: app=%q user=%q v=%d echo=%d", i, r, app, who, v, echo)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPgxTLS connects through the proxy's TLS listener, verifying the
// certificate the proxy was configured with.
func TestPgxTLS(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(env.certPEM) {
		t.Fatal("bad test certificate")
	}
	for _, user := range []string{userScram, userMD5, userTrust} {
		cfg, err := pgx.ParseConfig(env.proxy.DSN(user, dbMain))
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("%s over TLS: %v", user, err)
			continue
		}
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Errorf("%s: connection is %T, not TLS", user, conn.PgConn().Conn())
		}
		var who string
		var n int
		if err := conn.QueryRow(ctx, "SELECT current_user, count(*) FROM items").Scan(&who, &n); err != nil || who != user || n != 1000 {
			t.Errorf("%s over TLS: got %q %d %v", user, who, n, err)
		}
		conn.Close(ctx)
	}
	// sslmode=require against the proxy works; against a server without a
	// certificate it would fail, so this proves the proxy answered 'S'.
	conn, err := pgx.Connect(ctx, strings.Replace(env.proxy.DSN(userScram, dbMain), "sslmode=disable", "sslmode=require", 1))
	if err != nil {
		t.Fatalf("sslmode=require: %v", err)
	}
	defer conn.Close(ctx)
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Errorf("sslmode=require: connection is %T, not TLS", conn.PgConn().Conn())
	}
	// A cancel arrives on its own plain connection; it must still find the TLS session.
	super := superConn(t, ctx, dbMain)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(10) /* tls victim */")
		done <- err
	}()
	if err := waitForActivity(ctx, super, "%tls victim%"); err != nil {
		t.Fatal(err)
	}
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !strings.Contains(errorText(err), "code=57014") {
			t.Errorf("cancel of a TLS session: got %s, want 57014", errorText(err))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel of a TLS session did not arrive within 5s")
	}
}

// TestPgxBackpressure pushes more than socket buffers hold in both
// directions at once: a batch of thousands of queries whose results the
// client reads only after sending them all, and megabytes of COPY each way.
// A proxy that stops reading one side while blocked writing the other
// deadlocks here.
func TestPgxBackpressure(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	out := differential(t, ctx, "backpressure", func(t *testing.T, ctx context.Context, tg target) string {
		conn := connect(t, ctx, tg.DSN(userScram, dbMain))
		var b strings.Builder
		batch := &pgx.Batch{}
		const queries = 3000
		for i := 0; i < queries; i++ {
			batch.Queue("SELECT $1::int AS i, repeat('x', 2000) AS pad", i)
		}
		br := conn.SendBatch(ctx, batch)
		sum := 0
		for i := 0; i < queries; i++ {
			var v int
			var pad string
			if err := br.QueryRow().Scan(&v, &pad); err != nil {
				t.Fatalf("batch query %d: %v", i, err)
			}
			sum += v + len(pad)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "batch sum %d\n", sum)

		if _, err := conn.Exec(ctx, "CREATE TEMP TABLE bulk (id int, payload text)"); err != nil {
			t.Fatal(err)
		}
		var in bytes.Buffer
		for i := 0; i < 40000; i++ {
			fmt.Fprintf(&in, "%d\t%s\n", i, strings.Repeat("p", 200))
		}
		tag, err := conn.PgConn().CopyFrom(ctx, &in, "COPY bulk FROM STDIN")
		fmt.Fprintf(&b, "copy in %q %s\n", tag.String(), errorText(err))
		var outBuf bytes.Buffer
		tag, err = conn.PgConn().CopyTo(ctx, &outBuf, "COPY (SELECT id, payload, md5(payload || id) FROM bulk ORDER BY id) TO STDOUT")
		fmt.Fprintf(&b, "copy out %q %s bytes=%d\n", tag.String(), errorText(err), outBuf.Len())
		var n int
		var digest string
		if err := conn.QueryRow(ctx, "SELECT count(*), md5(string_agg(payload || id, ',' ORDER BY id)) FROM bulk").Scan(&n, &digest); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "table %d %s\n", n, digest)
		return b.String()
	})
	mustContain(t, "backpressure", out, `copy in "COPY 40000" <nil>`, `copy out "COPY 40000" <nil>`, "table 40000 ")
}

// TestPgxBackendTerminated kills the upstream backend of an idle session: the
// client must get Postgres's FATAL and a closed connection, as it would directly.
func TestPgxBackendTerminated(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	super := superConn(t, ctx, dbMain)
	out := differential(t, ctx, "backend terminated", func(t *testing.T, ctx context.Context, tg target) string {
		conn, err := pgx.Connect(ctx, tg.DSN(userScram, dbMain))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var pid int
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if err := super.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend: %v %v", ok, err)
		}
		_, err = conn.Exec(ctx, "SELECT 1")
		return fmt.Sprintf("after termination: %s\nclosed: %v\n", errorText(err), conn.IsClosed())
	})
	mustContain(t, "backend terminated", out, "severity=FATAL/FATAL code=57P01", "closed: true")
}

// TestAbruptDisconnect drops a client's TCP connection in the middle of a
// transaction that holds a row lock: the upstream session must go away with
// it, so that another session gets the lock.
func TestAbruptDisconnect(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	owner := connect(t, ctx, directDSN(userScram, dbMain))
	if _, err := owner.Exec(ctx, "CREATE TABLE IF NOT EXISTS locks (id int PRIMARY KEY); INSERT INTO locks VALUES (1) ON CONFLICT DO NOTHING; GRANT ALL ON locks TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	holder, err := pgx.Connect(ctx, env.proxy.DSN(userScram, dbMain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "BEGIN; SELECT * FROM locks WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	other := connect(t, ctx, env.proxy.DSN(userMD5, dbMain))
	// First prove the lock is held, so that getting it later means something.
	_, err = other.Exec(ctx, "SET lock_timeout = '100ms'; BEGIN; SELECT * FROM locks WHERE id = 1 FOR UPDATE")
	if !strings.Contains(errorText(err), "code=55P03") {
		t.Fatalf("want lock_not_available (55P03) while the holder lives, got %s", errorText(err))
	}
	if _, err := other.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// No Terminate: the socket just goes away.
	if err := holder.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := other.Exec(ctx, "SET lock_timeout = '5s'; BEGIN; SELECT * FROM locks WHERE id = 1 FOR UPDATE; ROLLBACK"); err != nil {
		t.Fatalf("the dropped client's lock was not released (its upstream session lives on): %s", errorText(err))
	}
	t.Logf("lock acquired %s after the drop", time.Since(start))
}
