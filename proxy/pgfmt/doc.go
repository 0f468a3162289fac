// Package pgfmt encodes result values exactly as a Postgres server would send
// them, so that an answer computed from a rollup is indistinguishable, byte for
// byte, from the warehouse's own answer (docs/matching.md, rule 7).
//
// It owns:
//
//   - the text output of bool, int2, int4, int8, float4, float8, numeric, text,
//     varchar, bpchar, name, date, timestamp, timestamptz and interval under the
//     session settings that change it (DateStyle, IntervalStyle, TimeZone,
//     extra_float_digits), see AppendText and Settings;
//   - the binary output of the same types (each type's send function), see
//     AppendBinary;
//   - the numeric arithmetic the proxy re-derives itself: Postgres's division
//     result scale and rounding (NumericDiv, numericAvg).
//
// NULL is not a value here: the caller writes the -1 length itself.
//
// Go values by type (anything else is an error, never a guess):
//
//	bool                 bool
//	int2, int4, int8     int64 (also int, int32, int16), range-checked for the type
//	float4               float32
//	float8               float64
//	numeric              *apd.Decimal or apd.Decimal (display scale = -Exponent,
//	                     at least 0; NaN and ±Infinity forms), or int64
//	text, varchar,       string or []byte, valid UTF-8 without NUL (the session's
//	bpchar, name         client_encoding is assumed to be UTF8); bpchar is sent as
//	                     given, see PadBpchar
//	date                 time.Time: the calendar date in t's own Location, time of
//	                     day must be zero; or Infinity
//	timestamp            time.Time: the wall clock in t's own Location; or Infinity
//	timestamptz          time.Time: the instant (its Location is irrelevant; the
//	                     session TimeZone decides the text); or Infinity
//	interval             Interval
//
// Float NaN is always sent as the bits the server's input function stores
// ('NaN'::float8), whatever payload the Go value carries; the server itself
// would echo the payload of a NaN produced by arithmetic.
//
// Time zones come from the system's tz database (LoadTimeZone); the server
// must read the same release. POSIX TZ strings are evaluated here for every
// year, because Go's own evaluation of them is wrong before 1970.
//
// Not covered: interval infinities (Postgres 17), time, timetz, bytea, uuid,
// json and every other type (supports reports false), and client encodings
// other than UTF8.
//
// Behaviour is verified differentially against a real server (see the tests);
// the reference is Postgres 15. Numeric infinities need a warehouse of 14 or
// later, and the shortest float output of extra_float_digits >= 1 one of 12 or
// later.
package pgfmt
