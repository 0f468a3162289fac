package routing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
)

// countingExecutor answers every SQL with rows made from it and counts its calls.
type countingExecutor struct {
	calls map[string]int
	rows  func(sql string) [][]any
	fail  error // Err of the rows it returns
}

func (e *countingExecutor) Query(_ context.Context, q *executor.Query) (executor.Rows, error) {
	e.calls[q.SQL]++
	return &failingRows{Rows: proxy.SliceRows(e.rows(q.SQL)), err: e.fail}, nil
}

type failingRows struct {
	proxy.Rows
	err error
}

func (r *failingRows) Err() error { return r.err }

func readAll(t *testing.T, rows proxy.Rows, limit int) [][]any {
	t.Helper()
	var out [][]any
	for (limit < 0 || len(out) < limit) && rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestResultCache(t *testing.T) {
	ctx := context.Background()
	small := func(sql string) [][]any {
		return [][]any{{sql, int64(1)}, {nil, int64(2)}}
	}
	big := func(sql string) [][]any {
		rows := make([][]any, resultCacheMaxRows+1)
		for i := range rows {
			rows[i] = []any{int64(i)}
		}
		return rows
	}
	q := func(sql string) *executor.Query { return &executor.Query{SQL: sql} }

	t.Run("a repeated query is answered from the cache, equal", func(t *testing.T) {
		exec := &countingExecutor{calls: map[string]int{}, rows: small}
		c, err := NewResultCache(exec, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			rows, err := c.Query(ctx, q("a"))
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, rows, -1); !reflect.DeepEqual(got, small("a")) {
				t.Fatalf("run %d: %v, want %v", i, got, small("a"))
			}
		}
		readAll(t, must(c.Query(ctx, q("b"))), -1)
		if exec.calls["a"] != 1 || exec.calls["b"] != 1 {
			t.Errorf("executor calls %v, want one per SQL", exec.calls)
		}
	})
	t.Run("answers not read to the end, failed or large are not kept", func(t *testing.T) {
		exec := &countingExecutor{calls: map[string]int{}, rows: small}
		c, _ := NewResultCache(exec, 1<<20, nil)
		readAll(t, must(c.Query(ctx, q("partial"))), 1)
		readAll(t, must(c.Query(ctx, q("partial"))), -1)
		exec.rows = big
		readAll(t, must(c.Query(ctx, q("big"))), -1)
		readAll(t, must(c.Query(ctx, q("big"))), -1)
		exec.rows, exec.fail = small, errors.New("worker lost")
		readAll(t, must(c.Query(ctx, q("failed"))), -1)
		readAll(t, must(c.Query(ctx, q("failed"))), -1)
		if want := map[string]int{"partial": 2, "big": 2, "failed": 2}; !reflect.DeepEqual(exec.calls, want) {
			t.Errorf("executor calls %v, want %v", exec.calls, want)
		}
	})
	t.Run("the budget evicts the least recently used", func(t *testing.T) {
		exec := &countingExecutor{calls: map[string]int{}, rows: small}
		c, _ := NewResultCache(exec, 8*1024, nil)
		for i := 0; i < 100; i++ {
			readAll(t, must(c.Query(ctx, q(fmt.Sprintf("q%d", i)))), -1)
		}
		rc := c.(*ResultCache)
		if rc.bytes > rc.budget || rc.lru.Len() >= 100 || rc.lru.Len() == 0 {
			t.Fatalf("%d answers of %d bytes kept in a budget of %d", rc.lru.Len(), rc.bytes, rc.budget)
		}
		readAll(t, must(c.Query(ctx, q("q99"))), -1)
		readAll(t, must(c.Query(ctx, q("q0"))), -1)
		if exec.calls["q99"] != 1 || exec.calls["q0"] != 2 {
			t.Errorf("newest answered %d times, oldest %d times; want 1 and 2", exec.calls["q99"], exec.calls["q0"])
		}
	})
	t.Run("a budget of 0 keeps nothing", func(t *testing.T) {
		exec := &countingExecutor{calls: map[string]int{}, rows: small}
		c, _ := NewResultCache(exec, 0, nil)
		if c != executor.Executor(exec) {
			t.Fatalf("NewResultCache with budget 0 = %T, want the executor itself", c)
		}
	})
}

func must(rows proxy.Rows, err error) proxy.Rows {
	if err != nil {
		panic(err)
	}
	return rows
}

// TestResultCacheForget: answers read from a version taken out of service
// are not served again, and one that completes afterwards is not kept.
func TestResultCacheForget(t *testing.T) {
	ctx := context.Background()
	exec := &countingExecutor{calls: map[string]int{}, rows: func(sql string) [][]any { return [][]any{{sql}} }}
	c, err := NewResultCache(exec, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := c.(*ResultCache)
	q := func(sql string, files ...string) *executor.Query { return &executor.Query{SQL: sql, Files: files} }
	run := func(d *executor.Query) {
		t.Helper()
		rows, err := c.Query(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, rows, -1)
	}
	old, other := q("SELECT 1 FROM old", "v1/a", "v1/b"), q("SELECT 1 FROM other", "w1/a")
	run(old)
	run(other)
	// An answer of the old version still being read when it goes.
	late, err := c.Query(ctx, q("SELECT 2 FROM old", "v1/b"))
	if err != nil {
		t.Fatal(err)
	}
	rc.Forget([]string{"v1/a", "v1/b"})
	readAll(t, late, -1)
	run(old)
	run(other)
	run(q("SELECT 2 FROM old", "v1/b"))
	if exec.calls["SELECT 1 FROM old"] != 2 || exec.calls["SELECT 2 FROM old"] != 2 {
		t.Errorf("answers of the forgotten version served from the cache: calls %v", exec.calls)
	}
	if exec.calls["SELECT 1 FROM other"] != 1 {
		t.Errorf("an answer of another version was dropped: calls %v", exec.calls)
	}
}
