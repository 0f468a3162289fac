package serve

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/jobstest"
)

// TestProxyExecutor: the configuration picks the executor and the file
// mapping that goes with it.
func TestProxyExecutor(t *testing.T) {
	nc := jobstest.Conn(t, jobstest.EmbeddedServer(t, t.TempDir()))
	// Nothing connects to the warehouse: the executors only read files.
	const dsn = "postgres://nobody@127.0.0.1:1/none"
	for _, c := range []struct {
		name, yaml string
		want       string
		keys       bool
	}{
		{"file", "", "*local.Executor", false},
		{"s3", `storage: {url: "s3://bucket/prefix", s3: {endpoint: "http://127.0.0.1:1", access_key: a, secret_key: b}}`, "*local.Executor", true},
		{"nats", `nats: {url: "nats://127.0.0.1:1"}`, "*remote.Client", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\n%s\n", dsn, dir, c.yaml)
			cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			p, err := newProxyExecutor(context.Background(), cfg, nc, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := fmt.Sprintf("%T", p.Executor); got != c.want {
				t.Errorf("executor %s, want %s", got, c.want)
			}
			path, ok := p.LocalPath("r/id/v1/part.parquet")
			if !ok || (path == "r/id/v1/part.parquet") != c.keys {
				t.Errorf("LocalPath = %q, %v", path, ok)
			}
		})
	}
}
