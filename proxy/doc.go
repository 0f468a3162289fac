// Package proxy speaks the Postgres wire protocol (3.0) to clients and to the
// warehouse.
//
// It owns client sessions from the first byte to Terminate: SSL and GSSENC
// negotiation, startup and relayed authentication, cancel requests mapped to
// the right upstream backend, the simple and extended query protocols, COPY and
// asynchronous messages. Every Query and Parse is parsed once (cached by text)
// and handed to a Router together with the session state; statements the
// Router does not claim are relayed to the client's own warehouse connection
// byte for byte. The admin HTTP handler (health, readiness, metrics) lives here
// too because it reports on the same server.
package proxy
