// Package layers holds the test that keeps pgrollup's packages in layers: a
// package imports only packages of its own layer or below, so that the
// wire protocol, the rewriter and the job system stay apart, and so that
// pgrollup-worker links none of the proxy's packages; and the test that keeps
// docs/architecture.md true to the code: its package map complete, and every
// file, directory and function it names existing. It has no code.
package layers
