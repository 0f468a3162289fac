//go:build !linux

package serve

import (
	"errors"

	"github.com/pgrollup/pgrollup/config"
)

// setSchedPolicy is Linux's only: elsewhere batch reports that it is
// ignored.
func setSchedPolicy(policy string) error {
	if policy != config.SchedBatch {
		return nil
	}
	return errors.New("sched_policy: batch is Linux only; ignored")
}
