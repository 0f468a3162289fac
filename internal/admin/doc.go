// Package admin is the admin HTTP listener's handler that the proxy and the
// worker share: the open probes /healthz and /readyz for orchestrators, and
// /metrics (and the proxy's /api/) behind the admin token when one is set.
package admin
