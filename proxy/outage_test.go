package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// cuttable stands between the proxy and the warehouse: cut drops every
// connection and refuses new ones, as a warehouse that went away; restore
// lets them through again on the same address.
type cuttable struct {
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]bool
	// shutdownAfter: new connections end with the FATAL error of a
	// shutdown right after the first message of this type with an
	// int32 body of 0 ('R': AuthenticationOk), or of this type ('Z'); 0:
	// never.
	shutdownAfter atomic.Int32
}

func newCuttable(t *testing.T, target string) *cuttable {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cuttable{target: target, addr: l.Addr().String(), l: l, conns: map[net.Conn]bool{}}
	go c.serve(l)
	t.Cleanup(c.cut)
	return c
}

func (c *cuttable) serve(l net.Listener) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns[in], c.conns[out] = true, true
		c.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close(); in.Close() }()
		if typ := byte(c.shutdownAfter.Load()); typ != 0 {
			go func() { shutDownAfter(typ, in, out); out.Close(); in.Close() }()
			continue
		}
		go func() { _, _ = io.Copy(in, out); out.Close(); in.Close() }()
	}
}

// shutDownAfter relays the server's messages until one of type typ (and,
// for 'R', AuthenticationOk), then says the server is shutting down, as
// Postgres does to a backend.
func shutDownAfter(typ byte, client, server net.Conn) {
	r := bufio.NewReader(server)
	for {
		var head [5]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if _, err := client.Write(append(head[:], body...)); err != nil {
			return
		}
		if head[0] == typ && (typ != 'R' || binary.BigEndian.Uint32(body) == 0) {
			e := newError(severityFatal, sqlstate.AdminShutdown, "terminating connection due to administrator command")
			_, _ = client.Write(e.encode(nil))
			return
		}
	}
}

func (c *cuttable) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil {
		c.l.Close()
		c.l = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

func (c *cuttable) restore(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.l = l
	c.mu.Unlock()
	go c.serve(l)
}

// dsn is the superuser's DSN through the cuttable.
func (c *cuttable) dsn(t *testing.T) string {
	u, err := url.Parse(cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = c.addr
	return u.String()
}

// startOutageProxy starts a proxy whose warehouse can be cut, answering
// localSQL itself.
func startOutageProxy(t *testing.T) (*testProxy, *cuttable) {
	fw := newCuttable(t, net.JoinHostPort(cluster(t).Host, strconv.Itoa(cluster(t).Port)))
	p := startProxy(t, func(o *Options) {
		o.WarehouseDSN = fw.dsn(t)
		o.Router = testRouter{answer: seriesAnswer{}}
		o.OutageLogins = true
	})
	return p, fw
}

// waitWarehouseUp waits until pgrollup_warehouse_up is want.
func waitWarehouseUp(t *testing.T, p *testProxy, want float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for testutil.ToFloat64(p.srv.metrics.WarehouseUp) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pgrollup_warehouse_up is not %v after 15s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantCode fails unless err is a Postgres error with one of codes.
func wantCode(t *testing.T, what string, err error, codes ...string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: want SQLSTATE %v, got %v", what, codes, err)
	}
	for _, c := range codes {
		if pe.Code == c {
			return pe
		}
	}
	t.Fatalf("%s: want SQLSTATE %v, got %s: %s", what, codes, pe.Code, pe.Message)
	return nil
}

func scalar(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Sessions outlive an outage: local answers go on, statements for the
// warehouse get 57P03 and the session goes on, a client that logged in
// before can log in again without the warehouse, and when it is back the
// same connections relay again, prepared statements included.
func TestOutageSessionsSurvive(t *testing.T) {
	ctx := context.Background()
	p, fw := startOutageProxy(t)
	a := connect(t, p.dsn(scramUser, scramPassword))
	want := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL)
	if n := scalar(t, a, "select $1::int + 1", 1); n != 2 {
		t.Fatalf("before: %d", n)
	}
	if _, err := a.Prepare(ctx, "before", "select $1::int * 10"); err != nil {
		t.Fatal(err)
	}
	trust := connect(t, p.dsn(trustUser, ""))

	fw.cut()
	// A statement finds the connection gone; the session does not end.
	_, err := a.Exec(ctx, "select 2")
	wantCode(t, "passthrough during the outage", err, sqlstate.CannotConnectNow, sqlstate.ConnectionFailure)
	waitWarehouseUp(t, p, 0)
	_, err = a.Exec(ctx, "select 2")
	pe := wantCode(t, "passthrough during the outage", err, sqlstate.CannotConnectNow)
	if pe.Severity != "ERROR" {
		t.Errorf("severity %s, want ERROR", pe.Severity)
	}
	for name, mode := range execModes {
		if got := rows(t, a, mode, localSQL); got != want {
			t.Errorf("%s: local answer during the outage:\n%s\nwant\n%s", name, got, want)
		}
	}
	_, err = a.Exec(ctx, "select $1::int", 7)
	wantCode(t, "extended passthrough during the outage", err, sqlstate.CannotConnectNow)
	if got := rows(t, trust, pgx.QueryExecModeCacheStatement, localSQL); got != want {
		t.Errorf("trust session: %s", got)
	}

	// New logins: the proxy authenticates them.
	b := connect(t, p.dsn(scramUser, scramPassword))
	if got := rows(t, b, pgx.QueryExecModeCacheStatement, localSQL); got != want {
		t.Errorf("new session: %s", got)
	}
	_, err = b.Exec(ctx, "select 3")
	wantCode(t, "new session's passthrough", err, sqlstate.CannotConnectNow)
	connectFails := func(dsn, code string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, dsn)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("%s: logged in during the outage", dsn)
		}
		pe := wantCode(t, "login", err, code)
		if pe.Severity != "FATAL" {
			t.Errorf("login refused with severity %s", pe.Severity)
		}
	}
	connectFails(p.dsn(scramUser, "wrong"), sqlstate.InvalidPassword)
	// md5 logins are not authenticated by the proxy, nor unknown ones.
	connectFails(p.dsn(md5User, md5Password), sqlstate.CannotConnectNow)
	connectFails(p.dsn("nobody", "x"), sqlstate.CannotConnectNow)
	// A trust login that worked before works without a password.
	connect(t, p.dsn(trustUser, ""))
	if v := testutil.ToFloat64(p.srv.metrics.LocalLogins); v != 2 {
		t.Errorf("pgrollup_outage_logins_total = %v, want 2", v)
	}

	fw.restore(t)
	waitWarehouseUp(t, p, 1)
	if n := scalar(t, a, "select $1::int + 3", 1); n != 4 {
		t.Errorf("after the outage: %d", n)
	}
	if n := scalar(t, a, "before", 5); n != 50 {
		t.Errorf("statement prepared before the outage: %d", n)
	}
	// b never had a connection: it gets one with the SCRAM keys of its login.
	if n := scalar(t, b, "select $1::int + 4", 1); n != 5 {
		t.Errorf("session started during the outage: %d", n)
	}
	var user string
	if err := b.QueryRow(ctx, "select current_user").Scan(&user); err != nil || user != scramUser {
		t.Errorf("current_user %q %v", user, err)
	}
	if n := scalar(t, trust, "select 6"); n != 6 {
		t.Errorf("trust session after: %d", n)
	}
}

// A block open when the connection is lost fails: the loss is reported
// once, then Postgres's "current transaction is aborted" until the client
// ends it. BEGIN and COMMIT without the warehouse keep rollup answers
// coming, and a block begun then goes on on the warehouse once it is back.
func TestOutageInTransaction(t *testing.T) {
	ctx := context.Background()
	p, fw := startOutageProxy(t)
	a := connect(t, p.dsn(scramUser, scramPassword))
	mustExec := func(sql string) pgconn.CommandTag {
		t.Helper()
		tag, err := a.Exec(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return tag
	}
	mustExec("begin")
	mustExec("select 1")
	fw.cut()
	waitWarehouseUp(t, p, 0)
	_, err := a.Exec(ctx, "select 2")
	pe := wantCode(t, "first statement after the loss", err, sqlstate.ConnectionFailure)
	if pe.Detail == "" {
		t.Error("the loss has no detail")
	}
	_, err = a.Exec(ctx, "select 3")
	wantCode(t, "in the failed block", err, sqlstate.InFailedSQLTransaction)
	_, err = a.Exec(ctx, localSQL)
	wantCode(t, "a rollup answer in the failed block", err, sqlstate.InFailedSQLTransaction)
	if s := a.PgConn().TxStatus(); s != 'E' {
		t.Fatalf("status %c, want E", s)
	}
	if tag := mustExec("rollback"); tag.String() != "ROLLBACK" {
		t.Errorf("rollback: %s", tag)
	}
	want := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL)
	mustExec("begin")
	if got := rows(t, a, pgx.QueryExecModeCacheStatement, localSQL); got != want {
		t.Errorf("in a block begun without the warehouse: %s", got)
	}
	_, err = a.Exec(ctx, "select 4")
	wantCode(t, "passthrough in the block", err, sqlstate.CannotConnectNow)
	if tag := mustExec("commit"); tag.String() != "ROLLBACK" {
		t.Errorf("commit of a failed block: %s, want ROLLBACK", tag)
	}
	mustExec("begin")
	fw.restore(t)
	waitWarehouseUp(t, p, 1)
	mustExec("create temp table t (a int)")
	if s := a.PgConn().TxStatus(); s != 'T' {
		t.Fatalf("status %c after the reattach, want T", s)
	}
	mustExec("rollback")
	// The temp table was created in the block, which the rollback undid.
	_, err = a.Exec(ctx, "select * from t")
	wantCode(t, "table from the rolled-back block", err, sqlstate.UndefinedTable)
}

// A session that changed its state on the warehouse learns of the loss
// before a statement runs without it; a clean one resumes without a word.
func TestOutageReportsLostState(t *testing.T) {
	ctx := context.Background()
	p, fw := startOutageProxy(t)
	dirty := connect(t, p.dsn(scramUser, scramPassword))
	clean := connect(t, p.dsn(scramUser, scramPassword))
	if _, err := dirty.Exec(ctx, "set work_mem = '17MB'"); err != nil {
		t.Fatal(err)
	}
	scalar(t, clean, "select 1")
	fw.cut()
	waitWarehouseUp(t, p, 0)
	fw.restore(t)
	waitWarehouseUp(t, p, 1)
	if n := scalar(t, clean, "select 2"); n != 2 {
		t.Errorf("clean: %d", n)
	}
	_, err := dirty.Exec(ctx, "select 3")
	wantCode(t, "dirty session's first statement", err, sqlstate.ConnectionFailure)
	var wm string
	if err := dirty.QueryRow(ctx, "show work_mem").Scan(&wm); err != nil || wm == "17MB" {
		t.Errorf("work_mem %q %v: want the default again", wm, err)
	}
}

// A statement running when the connection is lost gets an error, and the
// session goes on.
func TestOutageDuringStatement(t *testing.T) {
	ctx := context.Background()
	p, fw := startOutageProxy(t)
	a := connect(t, p.dsn(scramUser, scramPassword))
	done := make(chan error, 1)
	go func() {
		_, err := a.Exec(ctx, "select pg_sleep(30)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	fw.cut()
	select {
	case err := <-done:
		wantCode(t, "running statement", err, sqlstate.ConnectionFailure)
	case <-time.After(10 * time.Second):
		t.Fatal("the running statement got no answer")
	}
	if got := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL); got == "" {
		t.Error("no local answer after the loss")
	}
	// The monitor's probe runs while the connection is cut: until it has
	// seen the outage, pgrollup_warehouse_up still says 1 from before, and
	// a statement then finds it down.
	waitWarehouseUp(t, p, 0)
	fw.restore(t)
	waitWarehouseUp(t, p, 1)
	// pg_sleep has no lasting effect: the session resumes at once.
	if n := scalar(t, a, "select 5"); n != 5 {
		t.Errorf("after: %d", n)
	}
}

// pg_terminate_backend of one session's backend ends that session, as it
// would without the proxy: the warehouse is up.
func TestTerminatedBackendEndsSession(t *testing.T) {
	ctx := context.Background()
	p, _ := startOutageProxy(t)
	a := connect(t, p.dsn(scramUser, scramPassword))
	pid := a.PgConn().PID()
	super := connect(t, cluster(t).DSN("postgres"))
	if _, err := super.Exec(ctx, "select pg_terminate_backend($1)", int(pid)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !a.IsClosed() {
		_, err := a.Exec(ctx, "select 1")
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == sqlstate.CannotConnectNow {
				t.Fatalf("the session survived pg_terminate_backend: %v", err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the session is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := testutil.ToFloat64(p.srv.metrics.WarehouseUp); v != 1 {
		t.Errorf("pgrollup_warehouse_up = %v", v)
	}
}

// switchProber hands out whichever Probe the test sets.
type switchProber struct{ p atomic.Pointer[Probe] }

func (s *switchProber) Probe() *Probe { return s.p.Load() }

// probedAnswer answers localSQL only for a session whose context was read
// for the current Probe, as the Router's answers do.
type probedAnswer struct{ prober *switchProber }

func (a probedAnswer) Columns() []Column    { return seriesAnswer{}.Columns() }
func (a probedAnswer) ParamTypes() []uint32 { return nil }
func (a probedAnswer) Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error) {
	if sess.Probe != a.prober.Probe() || len(sess.Probed) != 1 || sess.Probed[0] != "ctx" {
		return nil, errors.New("context unknown")
	}
	return seriesAnswer{}.Run(ctx, sess, params)
}

// During an outage a session's context stays good for a new Probe of the
// same catalog, and so does the one a new login borrows; a Probe of another
// catalog needs a read the warehouse cannot give.
func TestOutageKeepsContextForAnEquivalentProbe(t *testing.T) {
	ctx := context.Background()
	prober := &switchProber{}
	prober.p.Store(&Probe{Select: "'ctx'", Columns: 1, Fingerprint: "db/1"})
	fw := newCuttable(t, net.JoinHostPort(cluster(t).Host, strconv.Itoa(cluster(t).Port)))
	p := startProxy(t, func(o *Options) {
		o.WarehouseDSN = fw.dsn(t)
		o.Router = testRouter{answer: probedAnswer{prober}, fallback: true}
		o.Prober = prober
		o.OutageLogins = true
	})
	a := connect(t, p.dsn(scramUser, scramPassword))
	want := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL)
	fw.cut()
	_, _ = a.Exec(ctx, "select 1")
	waitWarehouseUp(t, p, 0)

	prober.p.Store(&Probe{Select: "'ctx'", Columns: 1, Fingerprint: "db/1"})
	if got := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL); got != want {
		t.Errorf("after a new Probe of the same catalog: %s", got)
	}
	b := connect(t, p.dsn(scramUser, scramPassword))
	if got := rows(t, b, pgx.QueryExecModeSimpleProtocol, localSQL); got != want {
		t.Errorf("new login: %s", got)
	}

	prober.p.Store(&Probe{Select: "'ctx'", Columns: 1, Fingerprint: "db/2"})
	_, err := a.Exec(ctx, localSQL)
	wantCode(t, "after a Probe of another catalog", err, sqlstate.CannotConnectNow)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if c, err := pgx.Connect(cctx, p.dsn(scramUser, scramPassword)); err == nil {
		c.Close(ctx)
		t.Error("a login whose context is stale started without the warehouse")
	}

	fw.restore(t)
	waitWarehouseUp(t, p, 1)
	if got := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL); got != want {
		t.Errorf("after the outage, read again: %s", got)
	}
}

// A warehouse that shuts down right after it authenticated a client, before
// the session started: the session starts without it.
func TestOutageAfterAuthentication(t *testing.T) {
	ctx := context.Background()
	p, fw := startOutageProxy(t)
	before := connect(t, p.dsn(scramUser, scramPassword))
	want := rows(t, before, pgx.QueryExecModeSimpleProtocol, localSQL)
	before.Close(ctx)
	fw.shutdownAfter.Store('R')
	a := connect(t, p.dsn(scramUser, scramPassword))
	if a.PgConn().PID() != 0 {
		t.Errorf("pid %d: the session has no backend", a.PgConn().PID())
	}
	if got := rows(t, a, pgx.QueryExecModeSimpleProtocol, localSQL); got != want {
		t.Errorf("local answer: %s", got)
	}
	_, err := a.Exec(ctx, "select 1")
	wantCode(t, "passthrough", err, sqlstate.CannotConnectNow)
	// Shut down as the session starts: its settings are the login's.
	fw.shutdownAfter.Store(0)
	waitWarehouseUp(t, p, 1)
	fw.shutdownAfter.Store('Z')
	b := connect(t, p.dsn(scramUser, scramPassword))
	if got := rows(t, b, pgx.QueryExecModeSimpleProtocol, localSQL); got != want {
		t.Errorf("local answer in a session whose start lost the warehouse: %s", got)
	}
	fw.shutdownAfter.Store(0)
	waitWarehouseUp(t, p, 1)
	if n := scalar(t, a, "select $1::int", 3); n != 3 {
		t.Errorf("after: %d", n)
	}
	if n := scalar(t, b, "select $1::int", 4); n != 4 {
		t.Errorf("after: %d", n)
	}
}

// The monitor tells a warehouse that answers, even with an error about the
// account, from one that cannot be reached or accepts no connections, and
// logs each outage once at its start and once at its end.
func TestWarehouseMonitor(t *testing.T) {
	var mu sync.Mutex
	var next error
	var logs syncBuf
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	m := newWarehouseMonitor(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return next
	}, gauge, slog.New(slog.NewTextHandler(&logs, nil)))
	check := func(err error, wantUp bool) {
		t.Helper()
		mu.Lock()
		next = err
		mu.Unlock()
		if up := m.confirm(context.Background()); up != wantUp || testutil.ToFloat64(gauge) != map[bool]float64{true: 1, false: 0}[wantUp] {
			t.Errorf("%v: up %v, gauge %v; want %v", err, up, testutil.ToFloat64(gauge), wantUp)
		}
	}
	refused := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	check(nil, true)
	check(&pgconn.PgError{Code: sqlstate.InvalidPassword}, true) // the service account's password: not an outage
	check(&pgconn.PgError{Code: sqlstate.TooManyConnections}, true)
	check(refused, false)
	check(&pgconn.PgError{Code: sqlstate.CannotConnectNow}, false)
	check(fmt.Errorf("connect: %w", &pgconn.PgError{Code: sqlstate.AdminShutdown}), false)
	check(context.DeadlineExceeded, false)
	check(nil, true)
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || strings.Count(out, "level=INFO") != 1 || !strings.Contains(out, "outage=") {
		t.Errorf("log:\n%s", out)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The monitor's check asks for a session and leaves at the first answer:
// a real warehouse asks for credentials, whatever the password the DSN
// holds (it is never sent); one that refuses sessions says so at once.
func TestKnockCheck(t *testing.T) {
	knock := func(dsn string) error {
		t.Helper()
		w, err := newWarehouse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		check, err := knockCheck(w, dsn)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return check(ctx)
	}
	c := cluster(t)
	if err := knock(c.DSN("postgres")); err != nil || !answers(err) {
		t.Errorf("a running warehouse: %v", err)
	}
	if err := knock(c.DSNFor("postgres", "not the password", "no_such_database")); err != nil {
		t.Errorf("a running warehouse, a wrong password and database: %v", err)
	}

	// A warehouse that refuses sessions, as Postgres does while it starts
	// up, and is told whose session the proxy asks for.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	asked := make(chan map[string]string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, body, err := readStartupPacket(conn)
		if err != nil {
			asked <- nil
			return
		}
		params, _ := parseStartupParameters(body)
		asked <- params
		_, _ = conn.Write(newError(severityFatal, sqlstate.CannotConnectNow, "the database system is starting up").encode(nil))
	}()
	err = knock("postgres://svc:secret@" + l.Addr().String() + "/wh?sslmode=disable&application_name=monitor")
	if pe, ok := err.(*pgconn.PgError); !ok || pe.Code != sqlstate.CannotConnectNow || pe.Message != "the database system is starting up" || answers(err) {
		t.Errorf("a warehouse starting up: %v", err)
	}
	if p := <-asked; p["user"] != "svc" || p["database"] != "wh" || p["application_name"] != "monitor" || len(p) != 3 {
		t.Errorf("the startup asked for %v", p)
	}
	l.Close()
	if err := knock("postgres://svc@" + l.Addr().String() + "/wh?sslmode=disable&connect_timeout=2"); err == nil || answers(err) {
		t.Errorf("a closed port: %v", err)
	}
}

func TestKnockAnswer(t *testing.T) {
	message := func(typ byte, body []byte) []byte { return appendMessage(nil, typ, body) }
	for _, tc := range []struct {
		name   string
		answer []byte
		up     bool
		code   string
	}{
		{"SASL", message('R', append(binary.BigEndian.AppendUint32(nil, 10), "SCRAM-SHA-256\x00\x00"...)), true, ""},
		{"trust", message('R', binary.BigEndian.AppendUint32(nil, 0)), true, ""},
		{"protocol version", message('v', binary.BigEndian.AppendUint32(nil, 196608)), true, ""},
		{"too many clients", newError(severityFatal, sqlstate.TooManyConnections, "sorry, too many clients already").encode(nil), true, sqlstate.TooManyConnections},
		{"shutting down", newError(severityFatal, sqlstate.CannotConnectNow, "the database system is shutting down").encode(nil), false, sqlstate.CannotConnectNow},
		{"closed", nil, false, ""},
		{"cut short", message('E', []byte("SFATAL\x00C57P03\x00"))[:8], false, ""},
		{"huge", []byte{'E', 0x7f, 0, 0, 0}, false, ""},
		{"not an answer", message('Z', []byte{'I'}), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := knockAnswer(bytes.NewReader(tc.answer))
			if answers(err) != tc.up {
				t.Errorf("%v: up %v, want %v", err, answers(err), tc.up)
			}
			var pe *pgconn.PgError
			if errors.As(err, &pe) != (tc.code != "") || pe != nil && pe.Code != tc.code {
				t.Errorf("%v: want SQLSTATE %q", err, tc.code)
			}
		})
	}
}
