package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/promtext"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// The outage test stops its own Postgres cluster, so that no other test
// loses the shared one, with pgrollup in front of it serving a rollup over
// the items fixture. pgrollup reads verifiers through auth.query as
// PgBouncer's documentation sets it up: a SECURITY DEFINER function over
// pg_authid that only a dedicated role may call.
const (
	authRole     = "e2e_auth"
	authPassword = "auth-lookup-pw"
	authQuery    = "SELECT uname, phash FROM pgrollup_auth.user_lookup($1)"
)

const authSetupSQL = `
CREATE SCHEMA pgrollup_auth;
CREATE FUNCTION pgrollup_auth.user_lookup(i_username text, OUT uname text, OUT phash text) RETURNS record
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
	AS $$ SELECT rolname::text, rolpassword::text FROM pg_catalog.pg_authid WHERE rolname = i_username $$;
REVOKE ALL ON FUNCTION pgrollup_auth.user_lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgrollup_auth TO ` + authRole + `;
GRANT EXECUTE ON FUNCTION pgrollup_auth.user_lookup(text) TO ` + authRole + `;
`

// startOutageCluster starts a cluster of the test's own with the scram
// role, the main database, the fixtures and the auth query's function.
func startOutageCluster(t *testing.T, ctx context.Context) *pgcluster.Cluster {
	t.Helper()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Config: map[string]string{"max_connections": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := pg.ServerLog(); err == nil {
				t.Logf("Postgres log:\n%s", tail(log, 60))
			}
		}
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	if pg.External {
		t.Skip("PGROLLUP_TEST_DSN names an external server, which this test cannot stop")
	}
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE " + userScram + " LOGIN PASSWORD " + sqlquote.Literal(passwords[userScram]),
		"CREATE ROLE " + authRole + " LOGIN PASSWORD " + sqlquote.Literal(authPassword),
		"CREATE DATABASE " + dbMain + " OWNER " + userScram,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	db, err := pgx.Connect(ctx, pg.DSN(dbMain))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, fixtureSQL+authSetupSQL); err != nil {
		t.Fatal(err)
	}
	return pg
}

// startOutagePgrollup starts pgrollup over pg with the ops rollup and the
// auth query, and waits until the rollup answers.
func startOutagePgrollup(t *testing.T, ctx context.Context, pg *pgcluster.Cluster) *opsProc {
	t.Helper()
	dir := filepath.Join(env.tmp, "outage")
	rest := opsRollupConfig()
	rest["auth"] = map[string]any{
		"query":   authQuery,
		"dsn":     pg.DSNFor(authRole, authPassword, dbMain),
		"refresh": "2s",
	}
	cfgFile, text, p, err := writeProxyConfig("outage", dir, pg.DSN(dbMain), rest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.start(ctx, cfgFile, text, "debug"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("pgrollup (outage) did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("pgrollup (outage) log:\n%s", tail(p.log.Bytes(), 200))
		}
	})
	o := &opsProc{proxyProc: p, cfgFile: cfgFile, dir: dir}
	o.waitActive(t, ctx, opsRollup, "")
	return o
}

// Outage phases a statement starts in. Statements that start while
// Postgres is being stopped or started count in neither.
const (
	phaseBefore int32 = iota
	phaseStopping
	phaseDown
	phaseStarting
	phaseAfter
	phases
)

var phaseNames = [phases]string{"before", "stopping", "down", "starting", "after"}

// outageTally counts one client's outcomes by phase.
type outageTally struct {
	rollupOK, passOK [phases]int
	// errs counts errors by phase, kind (rollup or passthrough) and SQLSTATE;
	// "none" is an error that is not Postgres's (a broken connection).
	errs map[string]int
	// wrong holds rollup answers that differ from the warehouse's.
	wrong []string
	// messages holds the error messages seen, to check none names the
	// warehouse's address.
	messages map[string]bool
}

func (c *outageTally) fail(phase int32, kind string, err error) {
	code := "none"
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code = pe.Code
		c.messages[pe.Message+" "+pe.Detail+" "+pe.Hint] = true
	} else {
		c.messages[err.Error()] = true
	}
	c.errs[fmt.Sprintf("%s %s %s", phaseNames[phase], kind, code)]++
}

// opsFinish is a statement the warehouse finishes around the ops rollup's
// answer.
const opsFinish = "SELECT row_to_json(s) AS j FROM (SELECT category, count(*) AS n FROM items GROUP BY 1) s"

// queryErr runs sql in mode and returns its error.
func queryErr(ctx context.Context, conn *pgx.Conn, sql string, mode pgx.QueryExecMode) error {
	rows, err := conn.Query(ctx, sql, mode)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// rowsText runs sql and renders its rows.
func rowsText(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return "", err
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String(), rows.Err()
}

// metric reads one series from pgrollup's /metrics.
func (o *opsProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, body, err := o.adminGet("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	m, err := promtext.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m[series]
	if !ok {
		t.Fatalf("no series %s on /metrics", series)
	}
	return v
}

func (o *opsProc) waitMetric(t *testing.T, ctx context.Context, series string, want float64) {
	t.Helper()
	for o.metric(t, series) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s is not %v", series, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestWarehouseOutage stops Postgres under load from several clients:
// rollup answers go on, statements for the warehouse get 08006 or 57P03
// and the sessions stay open, a new client logs in with its SCRAM password
// and gets rollup answers, and once Postgres is back the same connections
// relay again.
func TestWarehouseOutage(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	pg := startOutageCluster(t, ctx)
	o := startOutagePgrollup(t, ctx, pg)
	clientDSN := o.DSN(userScram, dbMain)

	// What the rollup statements answer, read while all is well.
	want := map[string]string{}
	first := connect(t, ctx, clientDSN)
	for _, sql := range opsHits {
		text, err := rowsText(ctx, first, sql)
		if err != nil {
			t.Fatal(err)
		}
		want[sql] = text
	}
	// The statement the warehouse finishes, while it is up.
	before, err := diffScrape(o.proxyProc)
	if err != nil {
		t.Fatal(err)
	}
	if err := queryErr(ctx, first, opsFinish, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	after, err := diffScrape(o.proxyProc)
	if err != nil {
		t.Fatal(err)
	}
	if d := finishCounted(before, after); d.finished != 1 {
		t.Fatalf("%s: counted %+v, want finished by the warehouse", opsFinish, d)
	}
	first.Close(ctx)

	const clients = 6
	var phase atomic.Int32
	stop := make(chan struct{})
	tallies := make([]*outageTally, clients)
	conns := make([]*pgx.Conn, clients)
	var wg sync.WaitGroup
	for i := range clients {
		conns[i] = connect(t, ctx, clientDSN)
		tallies[i] = &outageTally{errs: map[string]int{}, messages: map[string]bool{}}
		wg.Add(1)
		go func(conn *pgx.Conn, c *outageTally) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				if n%2 == 0 {
					sql := opsHits[(n/2)%len(opsHits)]
					text, err := rowsText(ctx, conn, sql)
					switch {
					case err != nil:
						c.fail(p, "rollup", err)
					case text != want[sql]:
						c.wrong = append(c.wrong, fmt.Sprintf("%s: %q", sql, text))
					default:
						c.rollupOK[p]++
					}
				} else {
					var v int
					if err := conn.QueryRow(ctx, opsOther).Scan(&v); err != nil {
						c.fail(p, "passthrough", err)
					} else {
						c.passOK[p]++
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}(conns[i], tallies[i])
	}

	time.Sleep(1500 * time.Millisecond)
	// The auth query ran as its own role when the clients logged in.
	super := connect(t, ctx, pg.DSN("postgres"))
	var lookups int
	if err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", authRole).Scan(&lookups); err != nil {
		t.Fatal(err)
	}
	if lookups == 0 {
		t.Errorf("no connection of %s: auth.query did not run", authRole)
	}
	super.Close(ctx)

	phase.Store(phaseStopping)
	if err := pg.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	phase.Store(phaseDown)
	o.waitMetric(t, ctx, "pgrollup_warehouse_up", 0)

	// A client that was not connected logs in with its password, which
	// pgrollup checks itself, and is answered from the rollup.
	late := connect(t, ctx, clientDSN)
	for _, sql := range opsHits {
		text, err := rowsText(ctx, late, sql)
		if err != nil || text != want[sql] {
			t.Errorf("new session during the outage, %s: %q %v", sql, text, err)
		}
	}
	_, err = late.Exec(ctx, opsOther)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P03" || !strings.Contains(pe.Message, "unreachable") {
		t.Errorf("passthrough on the new session: %v, want 57P03 saying the warehouse is unreachable", err)
	}
	// A statement the warehouse would finish around a core the rollup
	// answers needs the warehouse: it fails as a passthrough one does.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		err := queryErr(ctx, late, opsFinish, mode)
		if !errors.As(err, &pe) || pe.Code != "57P03" {
			t.Errorf("statement finished by the warehouse, %s, during the outage: %v, want 57P03", mode, err)
		}
	}
	if c, err := pgx.Connect(ctx, dsn(o.host, o.port, userScram, "wrong", dbMain, "disable")); err == nil {
		c.Close(ctx)
		t.Error("a wrong password logged in during the outage")
	} else if !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Errorf("wrong password during the outage: %v, want 28P01", err)
	}
	if n := o.metric(t, "pgrollup_outage_logins_total"); n < 1 {
		t.Errorf("pgrollup_outage_logins_total = %v", n)
	}
	// Outages last longer than this; the point is answers over time.
	time.Sleep(time.Until(downAt.Add(4 * time.Second)))

	phase.Store(phaseStarting)
	if err := pg.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	o.waitMetric(t, ctx, "pgrollup_warehouse_up", 1)
	phase.Store(phaseAfter)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	// The session that started during the outage relays now, with the
	// keys of its SCRAM exchange.
	var who string
	if err := late.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != userScram {
		t.Errorf("new session after the outage: %q %v", who, err)
	}

	port := ":" + strconv.Itoa(pg.Port)
	var total outageTally
	total.errs = map[string]int{}
	for i, c := range tallies {
		t.Logf("client %d: rollup answers %v, passthrough answers %v (phases %v), errors %v", i, c.rollupOK, c.passOK, phaseNames, c.errs)
		if conns[i].IsClosed() {
			t.Errorf("client %d: connection closed", i)
		}
		for _, w := range c.wrong {
			t.Errorf("client %d: wrong rollup answer: %s", i, w)
		}
		for msg := range c.messages {
			if strings.Contains(msg, port) {
				t.Errorf("client %d: an error names the warehouse's address: %s", i, msg)
			}
		}
		if c.rollupOK[phaseDown] == 0 {
			t.Errorf("client %d: no rollup answers during the outage", i)
		}
		if c.passOK[phaseDown] != 0 {
			t.Errorf("client %d: %d passthrough statements answered while Postgres was down", i, c.passOK[phaseDown])
		}
		if c.passOK[phaseAfter] == 0 || c.rollupOK[phaseAfter] == 0 {
			t.Errorf("client %d: no answers on the same connection after the outage", i)
		}
		for key, n := range c.errs {
			total.errs[key] += n
			f := strings.Fields(key)
			phase, kind, code := f[0], f[1], f[2]
			switch {
			case code != "57P03" && code != "08006":
				t.Errorf("client %d: %d errors %s (want only 08006 or 57P03)", i, n, key)
			case phase == "down" && kind == "rollup":
				t.Errorf("client %d: %d rollup statements failed during the outage (%s)", i, n, code)
			case phase == "before" || phase == "after":
				t.Errorf("client %d: %d errors while Postgres was up (%s)", i, n, key)
			}
		}
		for p := range phases {
			total.rollupOK[p] += c.rollupOK[p]
			total.passOK[p] += c.passOK[p]
		}
	}
	keys := make([]string, 0, len(total.errs))
	for k := range total.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&errs, " %s=%d", k, total.errs[k])
	}
	t.Logf("%d clients; rollup answers by phase %v: %v; passthrough answers: %v; errors:%s",
		clients, phaseNames, total.rollupOK, total.passOK, errs.String())

	log := string(o.log.Bytes())
	for _, line := range []string{"level=WARN msg=\"the warehouse is unreachable", "level=INFO msg=\"the warehouse is reachable again"} {
		if !strings.Contains(log, line) {
			t.Errorf("the log lacks %s", line)
		}
	}
	if !strings.Contains(log, "outage=") {
		t.Error("the log does not say how long the outage lasted")
	}
}
