// Package serve is the composition root of the pgrollup proxy ("pgrollup
// serve"): it starts the build machinery (internal/app), the router over
// the warehouse's tables and the rollup executor the configuration calls
// for, the wire-protocol server and the admin listener; it follows the
// build catalog, turning every change into a new catalog snapshot for the
// router; and it applies a configuration file read again on SIGHUP without
// dropping a connection. Run is all of it, so that tests start a whole proxy
// in-process and reload it.
package serve
