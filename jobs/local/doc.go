// Package local runs rollup queries in this process on its DuckDB, over
// files made local by a cache: the single binary's executor, and the part of
// a worker that answers a proxy's request. It turns what goes wrong with the
// files into the fallback reasons of the executor contract (missing_file,
// broken_file, storage_error), and holds the files, and a concurrency slot,
// as long as the rows are open.
package local
