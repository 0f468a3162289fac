// Package remote carries rollup queries from proxies to workers over core
// NATS request/reply and streams the rows back (protocol.go describes the
// messages): the Client is the proxy's executor when workers are scaled out,
// the Server answers on a worker with its cache and DuckDB, and codec.go
// keeps every value's Go type as DuckDB's driver returned it, because the
// proxy's conversion to Postgres values depends on it.
//
// Flow control bounds what is in flight whatever the size of the answer,
// heartbeats on both sides tell each that the other is gone, and every
// failure before the first rows carries a fallback reason, so that the
// statement goes to the warehouse instead.
package remote
