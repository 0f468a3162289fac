// Package duck is the DuckDB that answers rollup queries in a process: the
// single binary's, over the rollup files in place or in its cache, and each
// worker's, over its cache. It runs an executor.Query whose files are local
// paths, and keeps small files in memory as tables because a dashboard asks
// the same small rollups all day.
package duck
