package layers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// architectureDoc describes the packages and the code paths through them;
// root is the module's directory, from this package's.
const (
	architectureDoc = "../../docs/architecture.md"
	root            = "../.."
)

// codeSpan is a `code span` of Markdown.
var codeSpan = regexp.MustCompile("`([^`\n]+)`")

// repoPath is a span that may be a path in the repository: a file, a
// directory (trailing slash), a glob or a package pattern (x/...).
var repoPath = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.*-]+)*/?$`)

// qualified is a span Name.Name: a method of a receiver type, or an
// exported name of a package.
var qualified = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$`)

// declarations returns the top-level names a Go file declares: functions,
// types, variables and constants by name, methods as Receiver.Method.
func declarations(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				out[d.Name.Name] = true
				continue
			}
			if recv := receiverName(d.Recv.List[0].Type); recv != "" {
				out[recv+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out[n.Name] = true
					}
				}
			}
		}
	}
	return out
}

// receiverName is the type name of a method's receiver.
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// TestArchitectureDoc keeps docs/architecture.md true to the code: its
// package map lists every package of the module once and nothing else; every
// repository path it names exists (a glob matches something, x/... is a
// directory); every `file.go:Name` names a function, method (Type.Method),
// type, variable or constant declared in that file; and every `Type.Method`
// of a receiver type the module declares, and `package.Name` of a package
// of the module, is declared.
func TestArchitectureDoc(t *testing.T) {
	data, err := os.ReadFile(architectureDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	pkgs := list(t, module+"/...")

	// The package map.
	_, section, found := strings.Cut(doc, "\n## Package map\n")
	if !found {
		t.Fatalf("%s has no section \"Package map\"", architectureDoc)
	}
	section, _, _ = strings.Cut(section, "\n#")
	mapped := map[string]int{}
	for _, line := range strings.Split(section, "\n") {
		if m := codeSpan.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "| `") {
			mapped[m[1]]++
		}
	}
	roots := map[string]bool{"docs": true, "deploy": true, "scripts": true}
	methods := map[string]bool{}   // Type.Method anywhere in the module
	receivers := map[string]bool{} // types with methods
	exported := map[string]bool{}  // package.Name, by package name
	packages := map[string]bool{}  // package names
	for _, p := range pkgs {
		path := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		roots[strings.SplitN(path, "/", 2)[0]] = true
		switch n := mapped[path]; {
		case n == 0:
			t.Errorf("%s: the package map does not list %s", architectureDoc, path)
		case n > 1:
			t.Errorf("%s: the package map lists %s %d times", architectureDoc, path, n)
		}
		delete(mapped, path)
		packages[p.Name] = true
		files := append(append(append(append([]string{}, p.GoFiles...), p.IgnoredGoFiles...), p.TestGoFiles...), p.XTestGoFiles...)
		for _, f := range files {
			for name := range declarations(t, filepath.Join(p.Dir, f)) {
				if recv, _, ok := strings.Cut(name, "."); ok {
					methods[name], receivers[recv] = true, true
				} else if ast.IsExported(name) {
					exported[p.Name+"."+name] = true
				}
			}
		}
	}
	for path := range mapped {
		t.Errorf("%s: the package map lists %s, which is no package of the module", architectureDoc, path)
	}

	// Paths and names in code spans.
	decls := map[string]map[string]bool{}
	for _, m := range codeSpan.FindAllStringSubmatch(doc, -1) {
		span := m[1]
		if file, name, ok := strings.Cut(span, ".go:"); ok && roots[strings.SplitN(file, "/", 2)[0]] {
			file += ".go"
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				t.Errorf("%s names %s, which does not exist", architectureDoc, file)
				continue
			}
			if decls[file] == nil {
				decls[file] = declarations(t, filepath.Join(root, file))
			}
			if !decls[file][name] {
				t.Errorf("%s names %s, which %s does not declare", architectureDoc, span, file)
			}
			continue
		}
		if q := qualified.FindStringSubmatch(span); q != nil {
			switch {
			case receivers[q[1]] && !methods[span]:
				t.Errorf("%s names %s, a method no type %s of the module has", architectureDoc, span, q[1])
			case !receivers[q[1]] && packages[q[1]] && ast.IsExported(q[2]) && !exported[span]:
				t.Errorf("%s names %s, which no package %s of the module declares", architectureDoc, span, q[1])
			}
			continue
		}
		if !repoPath.MatchString(span) || !strings.Contains(span, "/") || !roots[strings.SplitN(span, "/", 2)[0]] {
			continue
		}
		path := filepath.Join(root, strings.TrimSuffix(span, "/..."))
		if strings.Contains(span, "*") {
			if matches, _ := filepath.Glob(path); len(matches) == 0 {
				t.Errorf("%s names %s, which matches no file", architectureDoc, span)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s names %s, which does not exist", architectureDoc, span)
		}
	}
	if len(decls) < 20 {
		t.Errorf("%s names functions in only %d files: is the `file.go:Name` form still in use?", architectureDoc, len(decls))
	}
}
