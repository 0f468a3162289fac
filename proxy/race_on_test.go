//go:build race

package proxy

// raceDetector: the tests run with -race, whose instrumentation allocates.
const raceDetector = true
