package layers

import (
	"go/types"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// exportsOnlyForTests are the packages whose exported names exist for
// tests, or as a vocabulary: they are not checked.
var exportsOnlyForTests = []string{
	// The helpers the job system's tests share.
	"internal/jobstest",
	// Postgres's SQLSTATE codes by name, for the code that raises or
	// looks for them and the tests that expect them alike.
	"internal/sqlstate",
}

// unusedExportsAllowed are exported names only tests use by name, each for
// a reason.
var unusedExportsAllowed = []string{
	// Members of the rollup status enum, which code reaches by converting
	// the catalog's status rather than by name.
	"rewrite.StatusBuilding", "rewrite.StatusFailed", "rewrite.StatusStale",
}

// TestExportedNamesAreUsed: every exported function, variable and constant
// of a non-main package is used by code other than tests, so that the
// packages' surfaces say what the program needs of them. Methods (which
// may satisfy interfaces), fields and types are not checked.
func TestExportedNamesAreUsed(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedSyntax, Dir: "../.."}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[types.Object]string{}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("%s: %v", p.PkgPath, e)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.PkgPath, module), "/")
		if p.Name == "main" || slices.Contains(exportsOnlyForTests, rel) {
			continue
		}
		scope := p.Types.Scope()
		for _, name := range scope.Names() {
			obj := scope.Lookup(name)
			switch obj.(type) {
			case *types.Func, *types.Var, *types.Const:
			default:
				continue
			}
			if obj.Exported() {
				defined[obj] = rel + "." + name
			}
		}
	}
	for _, p := range pkgs {
		for _, obj := range p.TypesInfo.Uses {
			delete(defined, obj)
		}
	}
	var unused []string
	for _, name := range defined {
		if !slices.Contains(unusedExportsAllowed, name) {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	for _, name := range unused {
		t.Errorf("%s is exported but no code outside tests uses it: unexport it, or remove it", name)
	}
}
