// Package proxy speaks the Postgres wire protocol (3.0) to clients and to the
// warehouse.
//
// It owns client sessions from the first byte to Terminate: SSL and GSSENC
// negotiation, startup and relayed authentication, cancel requests mapped to
// the right upstream backend, the simple and extended query protocols, COPY and
// asynchronous messages. Every Query and Parse is parsed once (cached by text)
// and handed to a Router together with the session state; statements the
// Router does not claim are relayed to the client's own warehouse connection
// byte for byte. The admin HTTP handler (health, readiness, metrics) is
// internal/admin's, which the worker serves too.
//
// What Postgres does not report of a session the proxy works out from what
// it relays, in the order the warehouse runs it: whether the current
// transaction may have written (then no rollup answers in it) and when it
// began (now()), extra_float_digits and statement_timeout (read back from
// the warehouse after a statement that may have changed them, when a local
// answer needs them), and which of the statements and portals it holds for
// the client DEALLOCATE, DISCARD ALL and CLOSE ALL drop. A statement it
// answers with an error fails the warehouse's transaction too.
package proxy
