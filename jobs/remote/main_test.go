package remote

import (
	"testing"

	"github.com/pgrollup/pgrollup/internal/jobstest"
)

// The fault tests run pgrollup-worker against a warehouse, and one of them
// proxies statements to it.
func TestMain(m *testing.M) { jobstest.Main(m) }
