package main

import (
	"fmt"
	"io"
)

// runExplain is replaced by the rewrite engine's explain command.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "pgrollup explain: not available in this build")
	return 1
}
