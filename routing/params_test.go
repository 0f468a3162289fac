package routing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// Binary parameters are printed as Postgres prints the same value, checked
// by having Postgres print the value pgx sent it in binary.
func TestBinaryParamsAsText(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cluster(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		oid   uint32
		name  string
		value any
	}{
		{pgtype.Int4OID, "int4", int32(-7)},
		{pgtype.Int8OID, "int8", int64(1) << 40},
		{pgtype.Int2OID, "int2", int16(12)},
		{pgtype.BoolOID, "bool", true},
		{pgtype.TextOID, "text", "paid"},
		{pgtype.DateOID, "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{pgtype.TimestampOID, "timestamp", time.Date(2024, 3, 31, 2, 30, 0, 123456000, time.UTC)},
		{pgtype.TimestamptzOID, "timestamptz", time.Date(2024, 3, 31, 2, 30, 0, 0, berlin)},
	}
	for _, tt := range tests {
		raw, err := conn.TypeMap().Encode(tt.oid, pgx.BinaryFormatCode, tt.value, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Postgres's output function applied to the same binary value.
		res := conn.PgConn().ExecParams(ctx, "SELECT $1::"+tt.name, [][]byte{raw}, []uint32{tt.oid}, []int16{1}, []int16{0}).Read()
		if res.Err != nil {
			t.Fatalf("%v: %v", tt.value, res.Err)
		}
		want := string(res.Rows[0][0])
		got, err := binaryToText(tt.oid, raw)
		if err != nil {
			t.Fatalf("%v: %v", tt.value, err)
		}
		if got != want {
			t.Errorf("type %d %v: got %q, Postgres %q", tt.oid, tt.value, got, want)
		}
	}
	if _, err := binaryToText(pgtype.NumericOID, []byte{0, 0}); err == nil {
		t.Error("an unsupported binary type was accepted")
	}
}

func TestConvertPadsBpchar(t *testing.T) {
	got, err := convert("ab", rewrite.Type{OID: pgtype.BPCharOID, Typmod: 4 + 4})
	if err != nil || got != "ab  " {
		t.Fatalf("char(4) 'ab' = %q, %v", got, err)
	}
	if _, err := convert(int64(1), rewrite.Type{OID: pgtype.TextOID, Typmod: -1}); err == nil {
		t.Fatal("an integer was accepted as text")
	}
}

// filteredCatalog has one rollup of orders by quantity, filtered to paid
// orders; status is no dimension of it.
func filteredCatalog() *rewrite.Catalog {
	return &rewrite.Catalog{
		BuildTimezone: "UTC", TextSortsBytewise: true,
		Tables: map[string]*rewrite.Table{"public.orders": {Name: "public.orders", OID: 1, Columns: []rewrite.Column{
			{Name: "id", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 1},
			{Name: "status", Type: rewrite.Type{OID: pgtype.TextOID, Typmod: -1}, AttNum: 2},
			{Name: "quantity", Type: rewrite.Type{OID: pgtype.Int4OID, Typmod: -1}, AttNum: 3},
		}}},
		Rollups: []*rewrite.RollupState{{
			Def:    config.Rollup{Name: "paid", Table: "public.orders", Dimensions: []string{"quantity"}, Measures: []string{"count(*)", "sum(quantity)"}, Filters: []string{"status = 'paid'"}},
			Status: rewrite.StatusActive, Version: "v1", Partitions: []rewrite.Partition{{Files: []string{"/nonexistent/paid.parquet"}, Rows: 4}},
			AllTime: true, Rows: 4, BuiltAt: time.Now(),
		}},
	}
}

// A bound value is decided on as the literal it stands for: a filter on a
// column that is no dimension is served when the value is the rollup's, and
// passes through otherwise.
func TestBoundFilterValues(t *testing.T) {
	r := NewRouter(filteredCatalog(), Options{})
	text := func(v string) proxy.Param { return proxy.Param{TypeOID: pgtype.TextOID, Value: []byte(v)} }
	untyped := func(v string) proxy.Param { return proxy.Param{Value: []byte(v)} }
	int4 := func(v string) proxy.Param { return proxy.Param{TypeOID: pgtype.Int4OID, Value: []byte(v)} }
	binText := func(v string) proxy.Param { return proxy.Param{TypeOID: pgtype.TextOID, Format: 1, Value: []byte(v)} }
	const byQty = "SELECT quantity, count(*) FROM orders WHERE %s GROUP BY quantity"
	tests := []struct {
		where  string
		params []proxy.Param
		served bool
	}{
		{"status = $1", []proxy.Param{text("paid")}, true},
		{"$1 = status", []proxy.Param{text("paid")}, true},
		{"status = $1", []proxy.Param{untyped("paid")}, true},
		{"status = $1", []proxy.Param{binText("paid")}, true},
		{"status = $1", []proxy.Param{{TypeOID: pgtype.VarcharOID, Value: []byte("paid")}}, true},
		{"status IN ($1)", []proxy.Param{text("paid")}, true},
		{"status IN ($1, $2)", []proxy.Param{text("paid"), text("paid")}, true},
		{"status = $1 AND quantity = $2", []proxy.Param{text("paid"), int4("3")}, true},
		{"quantity >= $2 AND status = $1", []proxy.Param{untyped("paid"), int4("3")}, true},
		// Near misses: values outside the filter, or not certainly the same.
		{"status = $1", []proxy.Param{text("new")}, false},
		{"status = $1", []proxy.Param{text("paid ")}, false},
		{"status = $1", []proxy.Param{text("Paid")}, false},
		{"status = $1", []proxy.Param{text("pa'id")}, false},
		{"status = $1", []proxy.Param{{TypeOID: pgtype.TextOID}}, false}, // NULL
		{"status IN ($1, $2)", []proxy.Param{text("paid"), text("new")}, false},
		{"status <> $1", []proxy.Param{text("new")}, false},
		{"status = $1 OR status = $2", []proxy.Param{text("paid"), text("paid")}, false},
		// A type Postgres would not compare text with: the warehouse says so.
		{"status = $1", []proxy.Param{int4("1")}, false},
		// bpchar compares differently from text: not written in.
		{"status = $1", []proxy.Param{{TypeOID: pgtype.BPCharOID, Value: []byte("paid")}}, false},
		// An untyped parameter used twice takes one type for both uses,
		// which literals would not: not written in.
		{"status = $1 AND $1 <> ''", []proxy.Param{untyped("paid")}, false},
		// An unspecified binary value's type is unknown here.
		{"status = $1", []proxy.Param{{Format: 1, Value: []byte("paid")}}, false},
	}
	for _, tt := range tests {
		sql := fmt.Sprintf(byQty, tt.where)
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		sess := &proxy.SessionInfo{Parameters: map[string]string{"TimeZone": "UTC"}, Now: time.Now()}
		// The statement arrives without values: Bind decides.
		st := &proxy.Statement{SQL: sql}
		if d := r.Route(context.Background(), st, sess); d.Answer == nil {
			t.Fatalf("%s: not left to Bind to decide: %s", sql, d.Reason)
		}
		d, err := r.decideBound(context.Background(), sql, tree, sess, tt.params, true)
		served := err == nil && d.Outcome == rewrite.OutcomeRollup
		if served != tt.served {
			t.Errorf("%s %v: served %v, want %v (%v %v)", sql, tt.params, served, tt.served, err, d.Reason)
		}
	}
}

// Decisions on one prepared statement follow each execution's values:
// nothing decided for one value serves another.
func TestBoundFilterValuesPerExecution(t *testing.T) {
	r := NewRouter(filteredCatalog(), Options{})
	const sql = "SELECT quantity, count(*) FROM orders WHERE status = $1 GROUP BY quantity"
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	sess := &proxy.SessionInfo{Parameters: map[string]string{"TimeZone": "UTC"}, Now: time.Now()}
	d := r.Route(context.Background(), &proxy.Statement{SQL: sql}, sess)
	b, ok := d.Answer.(proxy.Binder)
	if !ok {
		t.Fatalf("not decided at Bind: %+v", d)
	}
	for i, v := range []string{"paid", "new", "paid", "cancelled", "paid"} {
		a, _ := b.Bind(context.Background(), sess, []proxy.Param{{TypeOID: pgtype.TextOID, Value: []byte(v)}})
		if served := a != nil; served != (v == "paid") {
			t.Fatalf("execution %d with %q: served %v", i, v, served)
		}
		if a == nil {
			continue
		}
		// Run decides again with the values it runs with.
		if d, err := r.decideBound(context.Background(), sql, tree, sess, []proxy.Param{{TypeOID: pgtype.TextOID, Value: []byte("new")}}, true); err != nil || d.Outcome == rewrite.OutcomeRollup {
			t.Fatalf("'new' served after %q was: %v %v", v, d.Outcome, err)
		}
	}
}

func TestWithLiterals(t *testing.T) {
	tests := []struct {
		sql    string
		params []rewrite.Param
		want   string // "" when nothing is written in
	}{
		{"SELECT 1 FROM t WHERE a = $1", []rewrite.Param{{Type: pgtype.TextOID, Value: "x'y"}}, "SELECT 1 FROM t WHERE a = ('x''y'::pg_catalog.text)"},
		{"SELECT 1 FROM t WHERE a = $1", []rewrite.Param{{Value: `a\b`}}, `SELECT 1 FROM t WHERE a = 'a\b'`},
		{"SELECT $1 FROM t WHERE a = $1", []rewrite.Param{{Value: "x"}}, ""},
		{"SELECT $1::text FROM t WHERE a = $2 AND b = $1", []rewrite.Param{{Type: pgtype.TextOID, Value: "x"}, {Type: pgtype.Int8OID, Value: "-5"}},
			"SELECT $1::text FROM t WHERE a = ('-5'::pg_catalog.int8) AND b = ('x'::pg_catalog.text)"},
		{"SELECT 1 FROM t WHERE a = $10", make10(), "SELECT 1 FROM t WHERE a = ('10'::pg_catalog.int4)"},
		{"SELECT 1 FROM t WHERE a = $1", []rewrite.Param{{Type: pgtype.TextOID, Null: true}}, ""},
		{"SELECT 1 FROM t WHERE a = $1", []rewrite.Param{{Type: pgtype.BPCharOID, Value: "x"}}, ""},
		{"SELECT 1 FROM t WHERE a = $1 UNION SELECT 2", []rewrite.Param{{Type: pgtype.TextOID, Value: "x"}}, ""},
		{"SELECT 1 FROM t GROUP BY a HAVING a = $1", []rewrite.Param{{Type: pgtype.TextOID, Value: "x"}}, ""},
	}
	for _, tt := range tests {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := withLiterals(tt.sql, tree, tt.params)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.sql, got, tt.want)
		}
	}
}

func make10() []rewrite.Param {
	ps := make([]rewrite.Param, 10)
	for i := range ps {
		ps[i] = rewrite.Param{Type: pgtype.Int4OID, Value: fmt.Sprint(i + 1)}
	}
	return ps
}

func TestAllLiterals(t *testing.T) {
	text := func(v string) rewrite.Param { return rewrite.Param{Type: pgtype.TextOID, Value: v} }
	tests := []struct {
		sql    string
		params []rewrite.Param
		want   string // "" when not every parameter can be written in
	}{
		{"SELECT a FROM t GROUP BY a ORDER BY a LIMIT $1 OFFSET $2", []rewrite.Param{{Type: pgtype.Int8OID, Value: "10"}, {Type: pgtype.Int8OID, Value: "20"}},
			"SELECT a FROM t GROUP BY a ORDER BY a LIMIT ('10'::pg_catalog.int8) OFFSET ('20'::pg_catalog.int8)"},
		// A value Parse left untyped, or one its type may refuse, would
		// fail in the finished statement's Parse rather than at Bind.
		{"SELECT a FROM t GROUP BY a HAVING count(*) > $1", []rewrite.Param{{Value: "10"}}, ""},
		// Untyped in LIMIT and OFFSET, where Postgres makes it a bigint.
		{"SELECT a FROM t GROUP BY a LIMIT $1 OFFSET $2", []rewrite.Param{{Value: "10"}, {Value: "5"}},
			"SELECT a FROM t GROUP BY a LIMIT ('10'::pg_catalog.int8) OFFSET ('5'::pg_catalog.int8)"},
		{"SELECT a FROM t GROUP BY a LIMIT $1", []rewrite.Param{{Value: "ten"}}, ""},
		{"SELECT a FROM t GROUP BY a LIMIT $1", []rewrite.Param{{Type: pgtype.Int8OID, Value: "ten"}}, ""},
		{"SELECT s.a FROM (SELECT a FROM t WHERE b = $1) s", []rewrite.Param{text("o'k")}, "SELECT s.a FROM (SELECT a FROM t WHERE b = ('o''k'::pg_catalog.text)) s"},
		{"SELECT count(*) * $1::int FROM t WHERE a = $2", []rewrite.Param{{Type: pgtype.Int4OID, Value: "3"}, {Type: pgtype.Int4OID, Null: true}},
			"SELECT count(*) * ('3'::pg_catalog.int4)::int FROM t WHERE a = (NULL::pg_catalog.int4)"},
		// An unspecified type used twice, an untyped NULL, a type with no
		// literal form: the statement keeps a parameter, so none is written.
		{"SELECT $1 FROM t WHERE a = $1", []rewrite.Param{{Value: "x"}}, ""},
		{"SELECT 1 FROM t WHERE a = $1", []rewrite.Param{{Null: true}}, ""},
		{"SELECT 1 FROM t WHERE a = $1 AND b = $2", []rewrite.Param{text("x"), {Type: pgtype.ByteaOID, Value: "y"}}, ""},
		{"SELECT 1 FROM t", nil, ""},
	}
	for _, tt := range tests {
		tree, err := pg_query.Parse(tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := allLiterals(tt.sql, tree, tt.params)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.sql, got, tt.want)
		}
	}
}
