package remote

import (
	"context"
	"math"
	"math/big"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pgrollup/pgrollup/internal/jobstest"
	"github.com/pgrollup/pgrollup/jobs/cache"
	"github.com/pgrollup/pgrollup/jobs/duck"
	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

// queryEnv is a worker answering over NATS and a client asking it, both in
// this process on an embedded server, over files in a file:// storage.
type queryEnv struct {
	srv     *node.Server
	storage *rollup.FileStorage
	duck    *duck.DB
	cache   *cache.Cache
	server  *Server
	client  *Client
	cnc     *nats.Conn // the client's connection
}

type envOptions struct {
	server ServerOptions
	client ClientOptions
	// storage, when set, is where the worker's cache downloads from
	// (instead of reading the file:// storage in place).
	storage rollup.Storage
}

func newQueryEnv(t testing.TB, o envOptions) *queryEnv {
	t.Helper()
	e := &queryEnv{srv: jobstest.EmbeddedServer(t, t.TempDir())}
	var err error
	if e.storage, err = rollup.NewFileStorage(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if e.duck, err = duck.Open(1<<30, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.duck.Close() })
	cacheOpts := cache.Options{Storage: e.storage}
	if o.storage != nil {
		cacheOpts = cache.Options{Storage: o.storage, Dir: t.TempDir(), MaxBytes: 1 << 30}
	}
	if e.cache, err = cache.New(cacheOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cache.Close)
	e.startServer(t, o.server)
	e.cnc = jobstest.Conn(t, e.srv)
	e.client = NewClient(e.cnc, o.client)
	return e
}

// startServer starts a query server on its own connection; it stops at the
// end of the test.
func (e *queryEnv) startServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	nc, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	o.Cache, o.DuckDB = e.cache, e.duck
	ctx, cancel := context.WithCancel(context.Background())
	qs, err := Serve(ctx, nc, o)
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
	if err := jobstest.MkdirFor(p); err != nil {
		t.Fatal(err)
	}
	jobstest.WriteParquet(t, p, query)
	return key, p
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

// waitIdle waits until the server runs no query.
func waitIdle(t testing.TB, qs *Server, within time.Duration) {
	t.Helper()
	started := time.Now()
	jobstest.WaitFor(t, within, "the worker to stop its query", func() bool { return qs.Stats().Active == 0 })
	t.Logf("worker idle %s later", time.Since(started).Round(time.Millisecond))
}
