package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

func TestStatementCacheParsesOnce(t *testing.T) {
	c := newStatementCache(2, statementCacheBytes, parselimit.Limits{})
	a := c.get("select 1")
	if b := c.get("select 1"); b == a {
		t.Fatal("an unparsed statement was cached")
	}
	tree, err := a.Parse()
	if tree == nil || err != nil {
		t.Fatalf("parse: %v, %v", tree, err)
	}
	if again, _ := a.Parse(); again != tree {
		t.Fatal("second Parse parsed again")
	}
	if b := c.get("select 1"); b != a {
		t.Fatal("a parsed statement was not cached")
	}
	bad := c.get("selec 1")
	if tree, err := bad.Parse(); err == nil || tree != nil {
		t.Fatalf("bad SQL: tree %v, err %v", tree, err)
	}
	for _, sql := range []string{"select 2", "select 3"} {
		if _, err := c.get(sql).Parse(); err != nil {
			t.Fatal(err)
		}
	}
	if again := c.get("select 1"); again == a {
		t.Fatal("cache kept more entries than its size")
	}
}

func BenchmarkStatementCache(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		c := newStatementCache(100, statementCacheBytes, parselimit.Limits{})
		_, _ = c.get("SELECT abalance FROM pgbench_accounts WHERE aid = 1;").Parse()
		for b.Loop() {
			_, _ = c.get("SELECT abalance FROM pgbench_accounts WHERE aid = 1;").Parse()
		}
	})
	b.Run("miss", func(b *testing.B) {
		c := newStatementCache(100, statementCacheBytes, parselimit.Limits{})
		i := 0
		for b.Loop() {
			i++
			_, _ = c.get(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i)).Parse()
		}
	})
}

// TestStatementCacheBudget checks the cache holds no more than its budget
// of estimated tree memory, and no statement too big for a share of it.
func TestStatementCacheBudget(t *testing.T) {
	const budget = 1 << 20
	c := newStatementCache(1000, budget, parselimit.Limits{})
	pad := strings.Repeat(" ", 280)
	for i := range 40 {
		if _, err := c.get(fmt.Sprintf("SELECT %d%s", i, pad)).Parse(); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.cache.Len(); n == 0 || int64(n)*(&Statement{SQL: "SELECT 0" + pad}).cost() > budget || c.bytes.Load() > budget {
		t.Errorf("%d statements, %d bytes kept within a budget of %d", n, c.bytes.Load(), budget)
	}
	big := "SELECT 1" + strings.Repeat(" ", 1000)
	if _, err := c.get(big).Parse(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.cache.Get(big); ok {
		t.Error("a statement bigger than a sixteenth of the budget was kept")
	}
}
