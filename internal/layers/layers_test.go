package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pgrollup/pgrollup"

// layers lists pgrollup's packages bottom to top, as paths in the module;
// "x/..." is x and everything under it, and the longest pattern that matches
// a package places it. A package may import packages of its own layer and of
// the layers below; tests may import anything.
var layers = [][]string{
	// Foundations: the configuration, small helpers, the rollup files'
	// layout, and the importer of other tools' definitions into config.
	{"internal/...", "config", "importer", "proxy/pgfmt", "rollup/layout"},
	// Rollup definitions, builds and storage.
	{"rollup"},
	// The executor contract that the router and the workers share.
	{"jobs/executor"},
	// The job system's state and the files: NATS, the catalog, broken files,
	// the Parquet cache, the DuckDB.
	{"jobs/node", "jobs/catalog", "jobs/integrity", "jobs/cache", "jobs/duck"},
	// What runs on them: builds, the admin API, the executors in this
	// process and over NATS, and the helpers of the tests that run them.
	{"jobs", "jobs/builds", "jobs/api", "jobs/local", "jobs/remote", "internal/jobstest"},
	// The SQL rewriter and the wire protocol, which the job system never
	// needs.
	{"rewrite", "proxy"},
	// The router between them.
	{"routing"},
	// The composition root: the job system of a process, then the proxy's;
	// advise, which reads what the router recorded and decides with rewrite.
	{"internal/app", "advise"},
	{"internal/app/serve"},
	// Binaries, benchmarks, the demo and the end-to-end tests.
	{"cmd/...", "bench/...", "demo", "e2e", "deploy/helm"},
}

// workerMustNotLink are packages pgrollup-worker has no use for: they would
// bring the proxy's code, and the SQL parser the rewriter needs, into it.
var workerMustNotLink = []string{"proxy", "routing", "rewrite", "internal/app/serve"}

type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	Imports    []string
	Deps       []string
	// The package's Go files, by name in Dir; docs_test.go reads them.
	GoFiles, IgnoredGoFiles, TestGoFiles, XTestGoFiles []string
}

// list runs go list -json with args and decodes its packages.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

// layerOf is the layer of a path in the module, -1 when none names it.
func layerOf(path string) int {
	best, bestLen := -1, -1
	for i, l := range layers {
		for _, pat := range l {
			prefix, tree := strings.CutSuffix(pat, "/...")
			if (path == prefix || tree && strings.HasPrefix(path, prefix+"/")) && len(prefix) > bestLen {
				best, bestLen = i, len(prefix)
			}
		}
	}
	return best
}

// TestLayers: no package imports one of a layer above its own.
func TestLayers(t *testing.T) {
	pkgs := list(t, module+"/...")
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		path := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		own := layerOf(path)
		if own < 0 {
			t.Errorf("%s is in no layer: add it to layers", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if l := layerOf(dep); l > own {
				t.Errorf("%s (layer %d) imports %s (layer %d), a layer above it", path, own, dep, l)
			}
		}
	}
}

// TestWorkerLinks: pgrollup-worker links none of the proxy's packages.
func TestWorkerLinks(t *testing.T) {
	worker := list(t, module+"/cmd/worker")
	if len(worker) != 1 || len(worker[0].Deps) == 0 {
		t.Fatalf("go list %s/cmd/worker: %+v", module, worker)
	}
	for _, p := range workerMustNotLink {
		if slices.Contains(worker[0].Deps, module+"/"+p) {
			t.Errorf("pgrollup-worker links %s", p)
		}
	}
}
