//go:build linux && !race

package proxy

// raceEnabled: see rawio_race.go.
const raceEnabled = false
