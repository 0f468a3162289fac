package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The renderers below turn results into text so that a difference between
// Postgres and pgrollup shows as a readable line diff. They print everything a
// client can observe: column metadata, raw bytes, decoded values, tags, and
// every field of an error.

// tempSchema matches the per-backend schema of temporary tables: each side of
// a comparison has its own backend, so the number differs legitimately.
var tempSchema = regexp.MustCompile(`^pg_temp_[0-9]+$`)

func pgErrorText(err error) string {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return "non-Postgres error: " + err.Error()
	}
	return fmt.Sprintf("ERROR severity=%s/%s code=%s message=%q detail=%q hint=%q position=%d "+
		"internal_position=%d internal_query=%q where=%q schema=%q table=%q column=%q datatype=%q "+
		"constraint=%q file=%s line=%d routine=%s",
		e.Severity, e.SeverityUnlocalized, e.Code, e.Message, e.Detail, e.Hint, e.Position,
		e.InternalPosition, e.InternalQuery, e.Where, tempSchema.ReplaceAllString(e.SchemaName, "pg_temp_N"), e.TableName, e.ColumnName, e.DataTypeName,
		e.ConstraintName, e.File, e.Line, e.Routine)
}

func renderFields(b *strings.Builder, fds []pgconn.FieldDescription) {
	for _, fd := range fds {
		fmt.Fprintf(b, "col %q oid=%d typmod=%d size=%d format=%d table=%s attnum=%d\n",
			fd.Name, fd.DataTypeOID, fd.TypeModifier, fd.DataTypeSize, fd.Format, tableName(fd.TableOID), fd.TableAttributeNumber)
	}
}

var tableNames struct {
	sync.Mutex
	conn  *pgx.Conn
	cache map[uint32]string
}

// tableName shows a column's table OID as the table's name: a temporary table
// created by each side of a comparison has its own OID but the same name.
// Names are looked up in the main database, straight from Postgres.
func tableName(oid uint32) string {
	if oid == 0 {
		return "0"
	}
	tableNames.Lock()
	defer tableNames.Unlock()
	if name, ok := tableNames.cache[oid]; ok {
		return name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if tableNames.conn == nil {
		conn, err := pgx.Connect(ctx, env.pg.DSN(dbMain))
		if err != nil {
			return fmt.Sprintf("%d(lookup failed: %v)", oid, err)
		}
		tableNames.conn = conn
		tableNames.cache = map[uint32]string{}
	}
	var name string
	err := tableNames.conn.QueryRow(ctx, `SELECT CASE WHEN relpersistence = 't' THEN 'pg_temp.' || relname
		ELSE relnamespace::regnamespace || '.' || relname END FROM pg_class WHERE oid = $1`, oid).Scan(&name)
	if err != nil {
		return fmt.Sprintf("%d(unknown)", oid)
	}
	if !strings.HasPrefix(name, "pg_temp.") {
		// A temporary table's OID is never reused while it exists, but do not
		// trust the cache for them across sessions anyway.
		tableNames.cache[oid] = name
	}
	return name
}

// fieldsOf returns rows' field descriptions, or nil where pgx has none to give
// (it panics on a batch query that never started).
func fieldsOf(rows pgx.Rows) (fds []pgconn.FieldDescription) {
	defer func() {
		if recover() != nil {
			fds = nil
		}
	}()
	return rows.FieldDescriptions()
}

func renderRaw(b *strings.Builder, vals [][]byte) {
	b.WriteString("row")
	for _, v := range vals {
		if v == nil {
			b.WriteString(" NULL")
		} else {
			fmt.Fprintf(b, " %q", v)
		}
	}
	b.WriteString("\n")
}

// renderRows drains a pgx.Rows: metadata, raw values, decoded values, tag, error.
func renderRows(rows pgx.Rows) string {
	var b strings.Builder
	n := 0
	for rows.Next() {
		if n == 0 {
			renderFields(&b, fieldsOf(rows))
		}
		n++
		renderRaw(&b, rows.RawValues())
		vals, err := rows.Values()
		if err != nil {
			fmt.Fprintf(&b, "decode error: %s\n", errorText(err))
		} else {
			fmt.Fprintf(&b, "values %v\n", vals)
		}
	}
	if n == 0 {
		renderFields(&b, fieldsOf(rows))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		fmt.Fprintf(&b, "%s\n", errorText(err))
	}
	fmt.Fprintf(&b, "tag %q rows=%d\n", rows.CommandTag().String(), n)
	return b.String()
}

// renderResult drains a pgconn.ResultReader at the byte level.
func renderResult(rr *pgconn.ResultReader) string {
	var b strings.Builder
	renderFields(&b, rr.FieldDescriptions())
	for rr.NextRow() {
		renderRaw(&b, rr.Values())
	}
	tag, err := rr.Close()
	if err != nil {
		fmt.Fprintf(&b, "%s\n", errorText(err))
	}
	fmt.Fprintf(&b, "tag %q\n", tag.String())
	return b.String()
}

// renderMulti drains a simple-protocol MultiResultReader.
func renderMulti(mrr *pgconn.MultiResultReader) string {
	var b strings.Builder
	for mrr.NextResult() {
		b.WriteString(renderResult(mrr.ResultReader()))
	}
	if err := mrr.Close(); err != nil {
		fmt.Fprintf(&b, "%s\n", errorText(err))
	}
	return b.String()
}

// renderMessage renders one backend message as JSON; maskKeys hides the values
// that legitimately differ between two servers (the proxy hands out its own
// cancel keys).
func renderMessage(msg pgproto3.BackendMessage, maskKeys bool) string {
	if bkd, ok := msg.(*pgproto3.BackendKeyData); ok && maskKeys {
		return fmt.Sprintf(`{"Type":"BackendKeyData","ProcessID":"<masked>","SecretKeyLen":%d}`, len(bkd.SecretKey))
	}
	if n, ok := msg.(*pgproto3.NotificationResponse); ok && maskKeys {
		return fmt.Sprintf(`{"Type":"NotificationResponse","PID":"<masked>","Channel":%q,"Payload":%q}`, n.Channel, n.Payload)
	}
	j, err := json.Marshal(msg)
	if err != nil {
		return fmt.Sprintf("%T (unrenderable: %v)", msg, err)
	}
	return string(j)
}

// differential runs f once against Postgres and once through the proxy and
// requires the same text. It returns the direct rendering so that a test can
// also check that the workload really did something.
func differential(t *testing.T, ctx context.Context, what string, f func(t *testing.T, ctx context.Context, tg target) string) string {
	t.Helper()
	var outs []string
	for _, tg := range targets() {
		outs = append(outs, f(t, ctx, tg))
	}
	requireSame(t, what, outs[0], outs[1])
	return outs[0]
}

// mustContain guards a differential test against comparing two empty or
// failed runs: the direct output must show the workload happened.
func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: direct output lacks %q; the workload did not run as intended:\n%s", what, w, text)
		}
	}
}
