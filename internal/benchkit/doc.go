// Package benchkit holds what the benchmark commands under bench/ and the
// demo share apart from processes (internal/proc): the frame of a command
// (a context that Ctrl-C ends, the exit on an error), the throw-away
// cluster they start and the statements that set it up, their progress
// lines (==> a step, indented results), and the figures they print
// (milliseconds, medians, PASS or MISS).
package benchkit
