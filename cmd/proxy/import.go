package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pgrollup/pgrollup/importer"
)

const importUsage = `usage: pgrollup import cube [--partial] FILE...
       pgrollup import lightdash [--schema S] [--partial] FILE...`

// runImport translates Cube model files or dbt schema files with Lightdash
// metadata into pgrollup tables and rollups, printed on stdout; what it
// cannot translate goes to stderr with file:line and why. Exit 0 when
// everything was translated, or with --partial; 1 when something was left
// out or the input is bad (nothing is printed then, unless --partial, and
// bad input exits 1 even then); 2 on bad arguments.
func runImport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "cube" && args[0] != "lightdash") {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("import "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	partial := fs.Bool("partial", false, "print what was translated even when something was not, and exit 0")
	schema := "public"
	if kind == "lightdash" {
		fs.StringVar(&schema, "schema", schema, "the schema of the models' relations")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	var srcs []importer.Source
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "pgrollup import: %v\n", err)
			return 1
		}
		srcs = append(srcs, importer.Source{Name: path, Data: data})
	}
	var res *importer.Result
	var err error
	if kind == "cube" {
		res, err = importer.Cube(srcs)
	} else {
		res, err = importer.Lightdash(srcs, schema)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
	}
	for _, p := range res.Notes {
		fmt.Fprintf(stderr, "%s (note)\n", p)
	}
	for _, p := range res.Untranslated {
		fmt.Fprintln(stderr, p)
	}
	code := 0
	switch {
	case err != nil:
		// Bad input fails even with --partial, which still prints the rest.
		code = 1
		if !*partial {
			fmt.Fprintln(stderr, "pgrollup import: bad input; nothing printed (--partial prints the rest)")
			return code
		}
	case len(res.Untranslated) > 0 && !*partial:
		fmt.Fprintf(stderr, "pgrollup import: %d item(s) not translated; nothing printed (--partial prints the rest)\n", len(res.Untranslated))
		return 1
	}
	if _, err := stdout.Write(res.YAML()); err != nil {
		fmt.Fprintf(stderr, "pgrollup import: %v\n", err)
		return 1
	}
	return code
}
