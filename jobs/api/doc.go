// Package api is how operators see the rollups: the status of each
// configured rollup as GET /api/rollups and GET /api/rollups/{name} report it
// (and pgrollup status prints it), the manual refresh of POST
// /api/rollups/{name}/refresh, and the gauges of the active versions' rows,
// bytes and age.
package api
