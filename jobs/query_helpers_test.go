package jobs

import (
	"context"
	"database/sql"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

// writeParquet writes the rows of a DuckDB query to a Parquet file.
func writeParquet(t testing.TB, path, query string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("COPY (" + query + ") TO " + executor.QuoteLiteral(path) + " (FORMAT parquet)"); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// decisionFor is a rollup route over files as the rewriter lays it out: the
// SQL reads read_parquet([files]) AS "r"; sql holds %s where that goes.
func decisionFor(sql string, files []string, cols ...string) *executor.Query {
	var lits []string
	for _, f := range files {
		lits = append(lits, executor.QuoteLiteral(f))
	}
	q := &executor.Query{
		Rollup: "r", Version: "v1", Files: files,
		SQL: strings.Replace(sql, "%s", `read_parquet([`+strings.Join(lits, ", ")+`]) AS "r"`, 1),
	}
	for _, c := range cols {
		q.Columns = append(q.Columns, executor.Column{Name: c})
	}
	return q
}

// queryEnv is a worker answering over NATS and a client asking it, both in
// this process on an embedded server, over files in a file:// storage.
type queryEnv struct {
	srv     *node.Server
	storage *rollup.FileStorage
	duck    *duck.DB
	cache   *Cache
	server  *QueryServer
	client  *QueryClient
	cnc     *nats.Conn // the client's connection
}

type envOptions struct {
	server QueryServerOptions
	client QueryClientOptions
	// storage, when set, is where the worker's cache downloads from
	// (instead of reading the file:// storage in place).
	storage rollup.Storage
}

func newQueryEnv(t testing.TB, o envOptions) *queryEnv {
	t.Helper()
	srv, err := node.StartServer(context.Background(), node.ServerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e := &queryEnv{srv: srv}
	if e.storage, err = rollup.NewFileStorage(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if e.duck, err = duck.Open(1<<30, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.duck.Close() })
	cacheOpts := CacheOptions{Storage: e.storage}
	if o.storage != nil {
		cacheOpts = CacheOptions{Storage: o.storage, Dir: t.TempDir(), MaxBytes: 1 << 30}
	}
	if e.cache, err = NewCache(cacheOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cache.Close)
	e.startServer(t, o.server)
	if e.cnc, err = srv.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cnc.Close)
	e.client = NewQueryClient(e.cnc, o.client)
	return e
}

// startServer starts a query server on its own connection; it stops at the
// end of the test.
func (e *queryEnv) startServer(t testing.TB, o QueryServerOptions) *QueryServer {
	t.Helper()
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	o.Cache, o.DuckDB = e.cache, e.duck
	ctx, cancel := context.WithCancel(context.Background())
	qs, err := ServeQueries(ctx, nc, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); qs.Wait(); nc.Close() })
	if e.server == nil {
		e.server = qs
	}
	return qs
}

// file writes a Parquet file into the storage and returns its key and path.
func (e *queryEnv) file(t testing.TB, key, query string) (string, string) {
	t.Helper()
	p := filepath.Join(e.storage.Dir(), filepath.FromSlash(key))
	if err := mkdirFor(p); err != nil {
		t.Fatal(err)
	}
	writeParquet(t, p, query)
	return key, p
}

// collect reads every row, copying the values.
func collect(rows executor.Rows) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return out, rows.Err()
}

// sameValue compares two values as exactly as their types allow: the same
// Go type and the same bits (NaN equals NaN, -0 differs from 0).
func sameValue(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	case float32:
		return math.Float32bits(x) == math.Float32bits(b.(float32))
	case *big.Int:
		return x.Cmp(b.(*big.Int)) == 0
	case time.Time:
		y := b.(time.Time)
		xn, xo := x.Zone()
		yn, yo := y.Zone()
		return x.Equal(y) && xn == yn && xo == yo && x.Location().String() == y.Location().String()
	}
	return reflect.DeepEqual(a, b)
}

// reasonOf is the fallback reason an error carries, "" for none.
func reasonOf(err error) string { return executor.FallbackReason(err, "") }

// waitIdle waits until the server runs no query.
func waitIdle(t testing.TB, qs *QueryServer, within time.Duration) {
	t.Helper()
	started := time.Now()
	waitFor(t, within, "the worker to stop its query", func() bool { return qs.Stats().Active == 0 })
	t.Logf("worker idle %s later", time.Since(started).Round(time.Millisecond))
}

func mkdirFor(path string) error { return os.MkdirAll(filepath.Dir(path), 0o755) }
