package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
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
	p := startProxy(b, nil)
	ctx := context.Background()
	setup, err := pgx.Connect(ctx, cluster(b).DSN("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE TABLE IF NOT EXISTS pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
		fmt.Sprintf("INSERT INTO pgbench_accounts SELECT i, 1, 0, '' FROM generate_series(1, %d) i ON CONFLICT DO NOTHING", benchAids),
		"GRANT SELECT ON pgbench_accounts TO " + trustUser,
	} {
		if _, err := setup.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	setup.Close(ctx)

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

	for _, tc := range []struct {
		name  string
		setup []byte
		txs   [][]byte
	}{
		{"simple", nil, simple},
		{"prepared", parse, prepared},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := dialBench(b, p.dsn(trustUser, ""))
			if tc.setup != nil {
				c.roundTrip(b, tc.setup)
			}
			for i := range 50 { // warm up: buffers, caches, the first statement's parse
				c.roundTrip(b, tc.txs[i%len(tc.txs)])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.roundTrip(b, tc.txs[i%len(tc.txs)])
			}
		})
	}
}

// benchConn is a client connection spoken to in raw protocol messages, so
// that the client itself allocates nothing per transaction.
type benchConn struct {
	conn net.Conn
	r    *bufio.Reader
	head [5]byte
	buf  []byte
}

func dialBench(b *testing.B, dsn string) *benchConn {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	h, err := pc.Hijack()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = h.Conn.Write([]byte{'X', 0, 0, 0, 4})
		h.Conn.Close()
	})
	return &benchConn{conn: h.Conn, r: bufio.NewReaderSize(h.Conn, 64<<10), buf: make([]byte, 0, 64<<10)}
}

// roundTrip writes msgs and reads the answers up to ReadyForQuery, failing
// on an ErrorResponse.
func (c *benchConn) roundTrip(b *testing.B, msgs []byte) {
	if _, err := c.conn.Write(msgs); err != nil {
		b.Fatal(err)
	}
	head := c.head[:]
	for {
		if _, err := io.ReadFull(c.r, head); err != nil {
			b.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(head[1:])) - 4
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		body := c.buf[:n]
		if _, err := io.ReadFull(c.r, body); err != nil {
			b.Fatal(err)
		}
		switch head[0] {
		case 'E':
			b.Fatalf("error: %q", body)
		case 'Z':
			return
		}
	}
}
