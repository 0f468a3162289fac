//go:build unix

package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// benchAids is how many different aids a run's transactions cycle
// through: pgbench -S draws a new one for each, so that in the simple
// protocol no two neighbouring statements have the same text.
const benchAids = 1000

// BenchmarkPassthrough measures one pgbench -S transaction through the
// proxy, relayed to a real Postgres, in both protocols: the proxy's
// allocations per transaction (the client below makes none) and its time,
// which includes the warehouse's round trip.
//
//	simple:   Query "SELECT abalance FROM pgbench_accounts WHERE aid = N;"
//	prepared: Bind(P_0, N), Describe portal, Execute, Sync, as libpq's
//	          PQsendQueryPrepared sends them for pgbench -M prepared, after
//	          one Parse of P_0 at the start of the session
func BenchmarkPassthrough(b *testing.B) {
	p, cases := passthroughCases(b)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.start(b, p)
			b.ReportAllocs()
			b.ResetTimer()
			user, sys := processCPU(b)
			for i := 0; i < b.N; i++ {
				c.roundTrip(b, tc.txs[i%len(tc.txs)])
			}
			// The time per op waits on the warehouse; the process's CPU
			// (the proxy's, and the client's few reads and writes) does
			// not, and is what the proxy costs a busy machine: in user
			// space its own work, in the kernel its reads and writes.
			user2, sys2 := processCPU(b)
			b.ReportMetric(float64((user2-user).Nanoseconds())/1e3/float64(b.N), "user-µs/op")
			b.ReportMetric(float64((sys2-sys).Nanoseconds())/1e3/float64(b.N), "sys-µs/op")
		})
	}
}

// TestPassthroughAllocs checks what BenchmarkPassthrough measures: a
// prepared statement's execution costs the proxy no allocation, nor does a
// plain simple Query, even of a new text.
func TestPassthroughAllocs(t *testing.T) {
	p, cases := passthroughCases(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.start(t, p)
			i := 0
			// Averaged over many, so that what the rest of the process
			// allocates now and then does not count.
			got := testing.AllocsPerRun(500, func() {
				c.roundTrip(t, tc.txs[i%len(tc.txs)])
				i++
			})
			if raceDetector {
				t.Logf("%v allocations per transaction under -race, which allocates itself", got)
				return
			}
			if got > tc.allocs {
				t.Errorf("%v allocations per transaction, want at most %v", got, tc.allocs)
			}
		})
	}
}

// passthroughCase is a pgbench -S session: what it sends first, then the
// transactions it cycles through.
type passthroughCase struct {
	name   string
	setup  []byte
	txs    [][]byte
	allocs float64 // the proxy's allocations per transaction
}

// start connects a session through p, sends its setup, and warms it up:
// buffers, caches, the first statement's parse.
func (tc passthroughCase) start(tb testing.TB, p *testProxy) *benchConn {
	c := dialBench(tb, p.dsn(trustUser, ""))
	if tc.setup != nil {
		c.roundTrip(tb, tc.setup)
	}
	for i := range 50 {
		c.roundTrip(tb, tc.txs[i%len(tc.txs)])
	}
	return c
}

// passthroughCases starts a proxy over a warehouse with pgbench_accounts
// and returns the sessions of pgbench -S in both protocols.
func passthroughCases(tb testing.TB) (*testProxy, []passthroughCase) {
	p := startProxy(tb, nil)
	ctx := context.Background()
	setup, err := pgx.Connect(ctx, cluster(tb).DSN("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer setup.Close(ctx)
	for _, sql := range []string{
		"CREATE TABLE IF NOT EXISTS pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
		fmt.Sprintf("INSERT INTO pgbench_accounts SELECT i, 1, 0, '' FROM generate_series(1, %d) i ON CONFLICT DO NOTHING", benchAids),
		"GRANT SELECT ON pgbench_accounts TO " + trustUser,
	} {
		if _, err := setup.Exec(ctx, sql); err != nil {
			tb.Fatal(err)
		}
	}
	simple := make([][]byte, benchAids)
	prepared := make([][]byte, benchAids)
	for i := range benchAids {
		aid := strconv.Itoa(i + 1)
		simple[i] = appendMessage(nil, 'Q', appendCString(nil, "SELECT abalance FROM pgbench_accounts WHERE aid = "+aid+";"))
		bind := appendCString(nil, "")
		bind = appendCString(bind, "P_0")
		bind = append(bind, 0, 0, 0, 1) // no parameter formats: text; one value
		bind = binary.BigEndian.AppendUint32(bind, uint32(len(aid)))
		bind = append(bind, aid...)
		bind = append(bind, 0, 0) // no result formats: text
		tx := appendMessage(nil, 'B', bind)
		tx = appendMessage(tx, 'D', []byte{'P', 0})
		tx = appendMessage(tx, 'E', []byte{0, 0, 0, 0, 0})
		prepared[i] = appendMessage(tx, 'S', nil)
	}
	parse := appendCString(appendCString(nil, "P_0"), "SELECT abalance FROM pgbench_accounts WHERE aid = $1;")
	parse = appendMessage(nil, 'P', append(parse, 0, 0))
	parse = appendMessage(parse, 'S', nil)
	// A BI tool's page of rows: 1,000 DataRows per answer, relayed as
	// they come.
	rows := [][]byte{appendMessage(nil, 'Q', appendCString(nil, "SELECT aid, bid, abalance, filler FROM pgbench_accounts ORDER BY aid"))}
	return p, []passthroughCase{
		// A new text each time, plain: the session's Statement over the
		// read buffer (relayPlainQuery).
		{name: "simple", txs: simple, allocs: 0},
		{name: "prepared", setup: parse, txs: prepared, allocs: 0},
		{name: "rows", txs: rows, allocs: 0},
	}
}

// processCPU returns the CPU time the process used so far, in user space
// and in the kernel.
func processCPU(tb testing.TB) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// benchConn is a client connection spoken to in raw protocol messages, so
// that the client itself allocates nothing per transaction.
type benchConn struct {
	conn net.Conn
	r    *bufio.Reader
	head [5]byte
	buf  []byte
}

func dialBench(tb testing.TB, dsn string) *benchConn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := pc.Hijack()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_, _ = h.Conn.Write([]byte{'X', 0, 0, 0, 4})
		h.Conn.Close()
	})
	return &benchConn{conn: h.Conn, r: bufio.NewReaderSize(h.Conn, 64<<10), buf: make([]byte, 0, 64<<10)}
}

// roundTrip writes msgs and reads the answers up to ReadyForQuery, failing
// on an ErrorResponse.
func (c *benchConn) roundTrip(tb testing.TB, msgs []byte) {
	if _, err := c.conn.Write(msgs); err != nil {
		tb.Fatal(err)
	}
	for {
		typ, body := c.readMessage(tb)
		switch typ {
		case 'E':
			tb.Fatalf("error: %q", body)
		case 'Z':
			return
		}
	}
}

// readMessage reads one message; its body is valid until the next call.
func (c *benchConn) readMessage(tb testing.TB) (byte, []byte) {
	head := c.head[:]
	if _, err := io.ReadFull(c.r, head); err != nil {
		tb.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(head[1:])) - 4
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.r, body); err != nil {
		tb.Fatal(err)
	}
	return head[0], body
}
