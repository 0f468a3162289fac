// Package layers holds the test that keeps pgrollup's packages in layers: a
// package imports only packages of its own layer or below, so that the
// wire protocol, the rewriter and the job system stay apart, and so that
// pgrollup-worker links none of the proxy's packages. It has no code.
package layers
