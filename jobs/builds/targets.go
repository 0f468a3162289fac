package builds

import (
	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rollup"
)

// Target is one configured rollup: its definition and when to refresh it.
type Target struct {
	Def *rollup.Definition
	// Refresh is the rollup's refresh settings: when a new version is due.
	Refresh config.Refresh
}

// Targets returns the targets of every rollup in cfg.
func Targets(cfg *config.Config) ([]Target, error) {
	defs, err := rollup.Definitions(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]Target, len(defs))
	for i, d := range defs {
		out[i] = Target{Def: d, Refresh: cfg.Rollups[i].Refresh}
	}
	return out, nil
}
