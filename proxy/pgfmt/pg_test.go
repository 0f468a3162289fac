package pgfmt

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/pgrollup/pgrollup/internal/pgcluster"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

// testPG is the throw-away cluster every differential test compares against,
// started by the first of them.
var testPG pgcluster.Shared

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testPG.Exit))
}

// pgCase is one value: an SQL expression the server evaluates, and the same
// value built independently in Go. In expr, "$?" stands for the case's own
// parameter (param), which is how exact bit patterns reach the server.
type pgCase struct {
	name     string
	expr     string
	v        any
	param    []byte
	paramOID uint32
	paramFmt int16
}

// session is a connection to the test server with known settings.
type session struct {
	t    *testing.T
	conn *pgconn.PgConn
	ctx  context.Context
}

func newSession(t *testing.T) *session {
	t.Helper()
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, testPG.Get(t).DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &session{t: t, conn: conn, ctx: ctx}
}

func (s *session) exec(sql string) {
	s.t.Helper()
	if _, err := s.conn.Exec(s.ctx, sql).ReadAll(); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// set applies settings with SET and returns the Settings built from what the
// server then reports, so that SettingsFromParams is exercised on real
// ParameterStatus values.
func (s *session) set(dateStyle, intervalStyle, timeZone string, efd int) *Settings {
	s.t.Helper()
	s.exec(fmt.Sprintf("SET DateStyle = %s; SET IntervalStyle = %s; SET TimeZone = %s; SET extra_float_digits = %d",
		sqlquote.Literal(dateStyle), sqlquote.Literal(intervalStyle), sqlquote.Literal(timeZone), efd))
	params := map[string]string{
		"DateStyle":          s.conn.ParameterStatus("DateStyle"),
		"IntervalStyle":      s.conn.ParameterStatus("IntervalStyle"),
		"TimeZone":           s.conn.ParameterStatus("TimeZone"),
		"extra_float_digits": strconv.Itoa(efd),
	}
	st, err := SettingsFromParams(params)
	if err != nil {
		s.t.Fatalf("SettingsFromParams(%v): %v", params, err)
	}
	return &st
}

// query evaluates the cases' expressions in batches and returns the raw
// column bytes in the given result format.
func (s *session) query(cases []pgCase, format int16) [][]byte {
	s.t.Helper()
	const batch = 400
	var out [][]byte
	for start := 0; start < len(cases); start += batch {
		part := cases[start:min(start+batch, len(cases))]
		var sel []string
		var vals [][]byte
		var oids []uint32
		var fmts []int16
		for _, c := range part {
			e := c.expr
			if strings.Contains(e, "$?") {
				vals = append(vals, c.param)
				oids = append(oids, c.paramOID)
				fmts = append(fmts, c.paramFmt)
				e = strings.ReplaceAll(e, "$?", "$"+strconv.Itoa(len(vals)))
			}
			sel = append(sel, e)
		}
		res := s.conn.ExecParams(s.ctx, "SELECT "+strings.Join(sel, ", "), vals, oids, fmts, []int16{format}).Read()
		if res.Err != nil {
			s.t.Fatalf("query with %s ...: %v", sel[0], res.Err)
		}
		if len(res.Rows) != 1 || len(res.Rows[0]) != len(part) {
			s.t.Fatalf("unexpected result shape")
		}
		out = append(out, res.Rows[0]...)
	}
	return out
}

// diff compares the server's bytes for cases with the encoder's, reporting
// each mismatch, and returns how many cases matched.
func (s *session) diff(label string, oid uint32, cases []pgCase, format int16, st *Settings) int {
	s.t.Helper()
	got := s.query(cases, format)
	ok := 0
	for i, c := range cases {
		var want []byte
		var err error
		if format == 0 {
			want, err = AppendText(nil, oid, c.v, st)
		} else {
			want, err = AppendBinary(nil, oid, c.v)
		}
		switch {
		case err != nil:
			s.t.Errorf("%s %s %s: encoder error %v (server: %q)", label, typeName(oid), c.name, err, got[i])
		case got[i] == nil:
			s.t.Errorf("%s %s %s: server returned NULL", label, typeName(oid), c.name)
		case !bytes.Equal(want, got[i]):
			if format == 0 {
				s.t.Errorf("%s %s %s: got %q, server %q", label, typeName(oid), c.name, want, got[i])
			} else {
				s.t.Errorf("%s %s %s: got % x, server % x", label, typeName(oid), c.name, want, got[i])
			}
		default:
			ok++
		}
	}
	return ok
}

// tally counts matched cases per setting for the test log (and the report).
type tally struct {
	t      *testing.T
	counts map[string]int
	order  []string
}

func newTally(t *testing.T) *tally { return &tally{t: t, counts: map[string]int{}} }

func (ty *tally) add(key string, n int) {
	if _, ok := ty.counts[key]; !ok {
		ty.order = append(ty.order, key)
	}
	ty.counts[key] += n
}

func (ty *tally) log() {
	total := 0
	for _, k := range ty.order {
		total += ty.counts[k]
		ty.t.Logf("%-60s %6d cases equal to the server", k, ty.counts[k])
	}
	ty.t.Logf("total %d", total)
}

// The settings grids the tests sweep.
var (
	allDateStyles = []string{
		"ISO, MDY", "ISO, DMY", "ISO, YMD",
		"SQL, MDY", "SQL, DMY", "SQL, YMD",
		"Postgres, MDY", "Postgres, DMY", "Postgres, YMD",
		"German, DMY", "German, MDY", "German, YMD",
	}
	allIntervalStyles = []string{"postgres", "postgres_verbose", "sql_standard", "iso_8601"}
	allExtraFloat     = []int{-15, -5, 0, 1, 2, 3}
)
