package app

import "runtime/debug"

// Release names the build this binary was made from (releaseOf its build
// information). Proxies and workers compare releases before a worker
// answers a proxy's rollup queries, since their rollup files and SQL may
// differ.
func Release() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return releaseOf(info)
}

// releaseOf is the release of a build: the module version and, when Go
// recorded it, the VCS revision (with "+dirty" for a modified tree).
func releaseOf(info *debug.BuildInfo) string {
	r := info.Main.Version
	if r == "" {
		r = "(devel)"
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		r += " " + rev
		if dirty {
			r += "+dirty"
		}
	}
	return r
}
