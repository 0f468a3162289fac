package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestSetOrigins: the origins of a finished statement are written into
// its RowDescription, and a description of another shape is left alone.
func TestSetOrigins(t *testing.T) {
	cols := []Column{
		{Name: "region", TypeOID: 25, TypeSize: -1, Typmod: -1},
		{Name: "sum", TypeOID: 1700, TypeSize: -1, Typmod: -1},
	}
	origins := []ColumnOrigin{{TableOID: 16406, Attnum: 2}, {}}
	raw := appendRowDescription(nil, cols, nil)
	if !setOrigins(raw[5:], origins) {
		t.Fatal("setOrigins refused a matching description")
	}
	want := appendRowDescription(nil, []Column{
		{Name: "region", TableOID: 16406, Attnum: 2, TypeOID: 25, TypeSize: -1, Typmod: -1},
		{Name: "sum", TypeOID: 1700, TypeSize: -1, Typmod: -1},
	}, nil)
	if !bytes.Equal(raw, want) {
		t.Errorf("got %x\nwant %x", raw, want)
	}
	for _, other := range [][]Column{cols[:1], append(cols, cols[0])} {
		raw := appendRowDescription(nil, other, nil)
		before := bytes.Clone(raw)
		if setOrigins(raw[5:], origins) || !bytes.Equal(raw, before) {
			t.Errorf("a description of %d columns was changed", len(other))
		}
	}
	if setOrigins([]byte{0, 2, 'x'}, origins) {
		t.Error("a truncated description was accepted")
	}
}

// TestFinishMessages: the Query and Parse pgrollup relays in place of the
// client's are well formed.
func TestFinishMessages(t *testing.T) {
	q := queryMessage("SELECT 1")
	if string(q.raw) != "Q\x00\x00\x00\x0dSELECT 1\x00" || !bytes.Equal(q.body(), q.raw[5:]) {
		t.Errorf("query %q", q.raw)
	}
	p := parseMessage("SELECT 1")
	name, query, ok := parseParse(p.body())
	oids, ok2 := parseParamOIDs(p.body(), name, query)
	if !ok || !ok2 || name != "" || query != "SELECT 1" || len(oids) != 0 || p.typ != 'P' {
		t.Errorf("parse %q: %q %q %v %v", p.raw, name, query, oids, ok && ok2)
	}
}

// boundSQL has a parameter; finishRouter has the warehouse run it at each
// Bind as the statement with the value written in.
const boundSQL = "select n::int8 as n, 'row ' || n as label from generate_series(1, 5) n where n <= $1"

// finishRouter answers boundSQL through valueFinisher at Bind.
type finishRouter struct{ finishes *atomic.Int32 }

func (r finishRouter) Route(_ context.Context, st *Statement, _ *SessionInfo) RouteDecision {
	if st.SQL != boundSQL {
		return RouteDecision{Route: RoutePassthrough}
	}
	return RouteDecision{Route: RouteRollup, Answer: finishBinder(r)}
}

// finishBinder finishes every portal with its value written in.
type finishBinder struct{ finishes *atomic.Int32 }

func (finishBinder) Columns() []Column    { return nil }
func (finishBinder) ParamTypes() []uint32 { return nil }
func (finishBinder) Run(context.Context, *SessionInfo, []Param) (*Result, error) {
	return nil, errors.New("bound only")
}
func (b finishBinder) Bind(_ context.Context, _ *SessionInfo, params []Param) (Answer, Finisher) {
	v := string(params[0].Value)
	switch b := params[0].Value; {
	case params[0].Format == 1 && len(b) == 4:
		v = fmt.Sprint(int32(binary.BigEndian.Uint32(b)))
	case params[0].Format == 1:
		v = fmt.Sprint(int64(binary.BigEndian.Uint64(b)))
	}
	return nil, valueFinisher{b.finishes, v}
}

type valueFinisher struct {
	finishes *atomic.Int32
	value    string
}

func (f valueFinisher) Finish(context.Context, *SessionInfo) (string, []ColumnOrigin, error) {
	f.finishes.Add(1)
	return strings.Replace(boundSQL, "$1", "'"+f.value+"'::int8", 1), nil, nil
}

// TestFinishAtBind: each Bind of a statement with parameters runs the
// statement its Finisher gives, prepared under the proxy's own name,
// with the client's result formats and row limits; a client's own
// statement of that name still works, before and after.
func TestFinishAtBind(t *testing.T) {
	finishes := &atomic.Int32{}
	p := startProxy(t, func(o *Options) { o.Router = finishRouter{finishes} })
	ctx := context.Background()
	direct := connect(t, cluster(t).DSN("postgres"))
	proxied := connect(t, p.dsn(trustUser, ""))
	render := func(conn *pgx.Conn, mode pgx.QueryExecMode, v int64) string {
		r, err := conn.Query(ctx, boundSQL, mode, v)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var b strings.Builder
		for _, f := range r.FieldDescriptions() {
			fmt.Fprintf(&b, "%s:%d:%d:%d ", f.Name, f.DataTypeOID, f.Format, f.TableOID)
		}
		for r.Next() {
			fmt.Fprintf(&b, "%q ", r.RawValues())
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for name, mode := range execModes {
		if mode == pgx.QueryExecModeSimpleProtocol {
			continue // no Bind
		}
		t.Run(name, func(t *testing.T) {
			for _, v := range []int64{2, 4} {
				before := finishes.Load()
				if got, want := render(proxied, mode, v), render(direct, mode, v); got != want {
					t.Fatalf("value %d: through the proxy %s, warehouse %s", v, got, want)
				}
				if finishes.Load() == before {
					t.Fatalf("value %d was not finished", v)
				}
			}
		})
	}
	// Message by message, as Postgres answers the client's statement.
	five := [][]byte{[]byte("5")}
	for _, tt := range []struct {
		name string
		msgs []pgproto3.FrontendMessage
	}{
		{"row limit suspends the portal", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "b1", Query: boundSQL, ParameterOIDs: []uint32{pgtype.Int8OID}},
			&pgproto3.Bind{DestinationPortal: "c1", PreparedStatement: "b1", Parameters: five},
			&pgproto3.Describe{ObjectType: 'P', Name: "c1"},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Execute{Portal: "c1", MaxRows: 2},
			&pgproto3.Sync{},
		}},
		{"binary and text results, unnamed", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: boundSQL},
			&pgproto3.Describe{ObjectType: 'S'},
			&pgproto3.Bind{Parameters: five, ResultFormatCodes: []int16{1, 0}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		{"an error before it skips it", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "select 1/0"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Parse{Name: "b2", Query: boundSQL},
			&pgproto3.Bind{PreparedStatement: "b2", Parameters: five},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "b2", Parameters: five},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		{"a bad value fails in the warehouse's words", []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "b3", Query: boundSQL, ParameterOIDs: []uint32{pgtype.Int8OID}},
			&pgproto3.Bind{PreparedStatement: "b3", Parameters: [][]byte{[]byte("x")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := conversation(t, cluster(t).DSN("postgres"), tt.msgs...)
			got := conversation(t, p.dsn(trustUser, ""), tt.msgs...)
			if got != want {
				t.Fatalf("through the proxy:\n%s\nwarehouse:\n%s", got, want)
			}
		})
	}
	// The client's own statement named as the proxy's.
	t.Run("name clash", func(t *testing.T) {
		if _, err := proxied.Prepare(ctx, finishedName, "select 7 as seven"); err != nil {
			t.Fatalf("prepare %q after a finish: %v", finishedName, err)
		}
		var seven int
		if err := proxied.QueryRow(ctx, finishedName).Scan(&seven); err != nil || seven != 7 {
			t.Fatalf("%q: %v %d", finishedName, err, seven)
		}
		before := finishes.Load()
		if got, want := render(proxied, pgx.QueryExecModeDescribeExec, 3), render(direct, pgx.QueryExecModeDescribeExec, 3); got != want {
			t.Fatalf("with the client's statement of that name: %s, want %s", got, want)
		}
		if finishes.Load() != before {
			t.Fatal("finished over the client's statement of that name")
		}
		if err := proxied.QueryRow(ctx, finishedName).Scan(&seven); err != nil || seven != 7 {
			t.Fatalf("%q afterwards: %v %d", finishedName, err, seven)
		}
	})
}
