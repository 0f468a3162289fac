//go:build !linux

package serve

import "testing"

// checkThreadsBatch: scheduling policies are Linux's only.
func checkThreadsBatch(*testing.T) {}
