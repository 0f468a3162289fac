// Package layout is the contract between the builder (package rollup), which
// writes a rollup's Parquet files, and the rewriter (package rewrite), which
// writes the DuckDB SQL that reads them: what each column is called and the
// DuckDB type it is stored as. Both take these from here, so the files and
// the SQL over them cannot drift apart.
//
// Dimension i of a definition is stored in column d<i>, the time bucket in t,
// and part p of measure i in m<i>_<p>, where p is sum, count, min, max or
// count_distinct; AVG is stored as its sum and count parts (Parts).
//
// A value is stored as the DuckDB type that holds every value of its Postgres
// type exactly (DuckDBType). A type without one (numeric without a declared
// scale, time, interval, ...) is stored as VARCHAR holding Postgres's text
// output, which the rewriter never computes with, except the sums and
// extremes of integers and numeric(p,s), whose scale the aggregated
// expression fixes (StorageType).
//
// The package imports only the standard library and pgx's type OIDs, so that
// package rewrite, which does no I/O, can use it without the builder's
// dependencies.
package layout
