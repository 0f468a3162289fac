package proxy

import (
	"fmt"
	"testing"
)

func TestStatementCacheParsesOnce(t *testing.T) {
	c := newStatementCache(2)
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
		c := newStatementCache(100)
		_, _ = c.get("SELECT abalance FROM pgbench_accounts WHERE aid = 1;").Parse()
		for b.Loop() {
			_, _ = c.get("SELECT abalance FROM pgbench_accounts WHERE aid = 1;").Parse()
		}
	})
	b.Run("miss", func(b *testing.B) {
		c := newStatementCache(100)
		i := 0
		for b.Loop() {
			i++
			_, _ = c.get(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i)).Parse()
		}
	})
}
