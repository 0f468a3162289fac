// Package sqlstate names the SQLSTATE codes pgrollup raises itself or looks
// for in the errors it gets, as Postgres's errcodes.txt spells their
// conditions (invalid_password is InvalidPassword). Errors the warehouse
// returns are relayed to clients as they come; these constants are for the
// errors pgrollup makes up to behave as Postgres does (errors
// with SQLSTATE codes behave as Postgres's) and for deciding what an error
// from the warehouse means.
package sqlstate
