// Package rollup turns rollup definitions from the configuration into Parquet files
// and describes what was built.
//
// A Definition is the normalised form of one configured rollup; its Identity is a hash
// of that form, so any change that alters the content of the files (a new dimension, a
// different filter, another build_timezone) makes a new rollup. A Plan is the build SQL
// of a Definition in Postgres's dialect together with the physical layout of its
// Parquet files: dimension i is stored as column "d<i>", the time bucket as "t", and
// measure i as "m<i>_<part>" where part is sum, count, min, max or count_distinct (AVG is
// stored as its sum and count parts). Package layout defines those names and the DuckDB
// type each value is stored as; package rewrite reads the files through it.
//
// The Builder runs a Plan on the warehouse in one read-only snapshot, streams the rows
// through the wire protocol into a private DuckDB database with a memory limit, writes
// one Parquet file per partition sorted by the dimensions and puts it into Storage
// (file:// or s3://). The result is a Version: plain, JSON-encoded data that the catalog
// (package jobs/catalog) stores and that proxies read to decide what a rollup can answer.
package rollup
