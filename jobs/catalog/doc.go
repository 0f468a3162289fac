// Package catalog is the shared record of every rollup definition's state:
// one rollup.State per definition in a JetStream key-value bucket, changed
// only by compare-and-set so that proxies and workers never lose each
// other's updates, and a View that follows it live for the processes that
// route statements or check files by it.
package catalog
