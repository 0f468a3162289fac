package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// step is one thing a client does in a scripted session; the transcript of
// a script through the proxy must equal the warehouse's.
type step struct {
	sql     string // simple Query
	query   string // ExecParams, text results: the rows are in the transcript
	prepare string // Prepare of name (Parse, Describe, Sync)
	name    string
	execute string                     // ExecPrepared of this name
	batch   []pgproto3.FrontendMessage // sent as is, read up to each Sync's ReadyForQuery
	ready   int                        // ReadyForQuery to read after batch, when not one per Sync
	sleep   time.Duration
}

// runScript runs steps on conn and returns what came back, as text.
func runScript(t *testing.T, conn *pgconn.PgConn, steps []step) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, s := range steps {
		switch {
		case s.sql != "":
			_, err := conn.Exec(ctx, s.sql).ReadAll()
			fmt.Fprintf(&b, "%s: %s\n", s.sql, errCode(err))
		case s.query != "":
			res := conn.ExecParams(ctx, s.query, nil, nil, nil, nil).Read()
			fmt.Fprintf(&b, "%s: %q %s\n", s.query, res.Rows, errCode(res.Err))
		case s.prepare != "":
			_, err := conn.Prepare(ctx, s.name, s.prepare, nil)
			fmt.Fprintf(&b, "prepare %s: %s\n", s.name, errCode(err))
		case s.execute != "":
			res := conn.ExecPrepared(ctx, s.execute, nil, nil, nil).Read()
			fmt.Fprintf(&b, "execute %s: %d rows %s %s\n", s.execute, len(res.Rows), res.CommandTag, errCode(res.Err))
		case s.batch != nil:
			fmt.Fprintf(&b, "batch: %s\n", exchange(t, ctx, conn, s.batch, s.ready))
		case s.sleep > 0:
			time.Sleep(s.sleep)
		}
		fmt.Fprintf(&b, "  (%c)\n", conn.TxStatus())
	}
	return b.String()
}

// exchange sends raw messages and reads the answers up to the
// ReadyForQuery of every Sync among them, or up to the ready-th, as text
// for comparing the proxy with Postgres message by message.
func exchange(t *testing.T, ctx context.Context, conn *pgconn.PgConn, msgs []pgproto3.FrontendMessage, ready int) string {
	t.Helper()
	fe := conn.Frontend()
	syncs := 0
	for _, m := range msgs {
		fe.Send(m)
		if _, ok := m.(*pgproto3.Sync); ok {
			syncs++
		}
	}
	if ready > 0 {
		syncs = ready
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.Conn().SetReadDeadline(deadline)
		defer conn.Conn().SetReadDeadline(time.Time{})
	}
	var b strings.Builder
	for syncs > 0 {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %s: %v", b.String(), err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			syncs--
			fmt.Fprintf(&b, "Z(%c) ", m.TxStatus)
		case *pgproto3.DataRow:
			fmt.Fprintf(&b, "D%q ", m.Values)
		case *pgproto3.ErrorResponse:
			fmt.Fprintf(&b, "E(%s %s) ", m.Code, m.Message)
		case *pgproto3.CommandComplete:
			fmt.Fprintf(&b, "C(%s) ", m.CommandTag)
		case *pgproto3.RowDescription:
			b.WriteString("T")
			for _, f := range m.Fields {
				fmt.Fprintf(&b, "[%s %d %d %d %d %d]", f.Name, f.DataTypeOID, f.DataTypeSize, f.TypeModifier, f.Format, f.TableOID)
			}
			b.WriteString(" ")
		case *pgproto3.ParameterStatus, *pgproto3.NoticeResponse:
		default:
			fmt.Fprintf(&b, "%T ", m)
		}
	}
	return b.String()
}

func errCode(err error) string {
	if err == nil {
		return "ok"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code + " " + pgErr.Message
	}
	return err.Error()
}

// extended is Parse, Bind and Execute of sql on the unnamed statement and
// portal, text results.
func extended(sql string) []pgproto3.FrontendMessage {
	return []pgproto3.FrontendMessage{&pgproto3.Parse{Query: sql}, &pgproto3.Bind{}, &pgproto3.Execute{}}
}

// batch joins messages and ends them with Sync.
func batch(parts ...[]pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, &pgproto3.Sync{})
}
