package builds

import (
	"testing"

	"github.com/pgrollup/pgrollup/internal/jobstest"
)

func TestMain(m *testing.M) { jobstest.Main(m) }
