package rewrite

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// matchingDoc explains every reason a statement passes through.
const matchingDoc = "../docs/matching.md"

// stringConsts returns the string constants declared in the non-test Go files
// of dir, by value, with the type each was declared with ("" when untyped).
func stringConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				typ := ""
				if id, ok := n.Type.(*ast.Ident); ok {
					typ = id.Name
				}
				for _, v := range n.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out[s] = typ
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					s, _ := strconv.Unquote(n.Value)
					if _, ok := out[s]; !ok {
						out[s] = ""
					}
				}
			}
			return true
		})
	}
	return out
}

// TestMatchingDocReasons checks that docs/matching.md's table of reasons has
// every ReasonCode with its rule and what to do about it, and no reason that
// pgrollup does not give. The statements routing passes through before the
// rewrite engine sees them have reasons of routing's own, with rule "—".
func TestMatchingDocReasons(t *testing.T) {
	data, err := os.ReadFile(matchingDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, found := strings.Cut(string(data), "\n## Every reason\n")
	if !found {
		t.Fatalf("%s has no section \"Every reason\"", matchingDoc)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	documented := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		code := strings.Trim(cells[0], "`")
		if len(cells) != 4 || strings.TrimSpace(cells[3]) == "" {
			t.Errorf("%s: the row of %s wants four cells: reason, rule, what it means, what you can do", matchingDoc, code)
		}
		if _, dup := documented[code]; dup {
			t.Errorf("%s: %s is in the table twice", matchingDoc, code)
		}
		documented[code] = cells
	}

	codes := map[string]bool{}
	for s, typ := range stringConsts(t, ".") {
		if typ == "ReasonCode" && ReasonCode(s) != ReasonMatched {
			codes[s] = true
		}
	}
	if len(codes) < 30 {
		t.Fatalf("found only %d reason codes in the package's source", len(codes))
	}
	for code := range codes {
		cells, ok := documented[code]
		switch {
		case !ok:
			t.Errorf("%s: reason %s is not in the table", matchingDoc, code)
		case len(cells) > 1 && cells[1] != strconv.Itoa(ReasonCode(code).Rule()):
			t.Errorf("%s: reason %s belongs to rule %d, documented as %s", matchingDoc, code, ReasonCode(code).Rule(), cells[1])
		}
	}
	routing := stringConsts(t, "../routing")
	for code, cells := range documented {
		if codes[code] {
			continue
		}
		if _, ok := routing[code]; !ok || len(cells) < 2 || cells[1] != "—" {
			t.Errorf("%s documents reason %s, which neither this package nor routing gives (with rule —)", matchingDoc, code)
		}
	}
}
