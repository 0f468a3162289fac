// Package cache keeps local copies of rollup files for DuckDB, which reads
// Parquet only from local disk here (the README's Dependencies): each file downloaded
// once however many queries want it, checked against what its build
// recorded, kept while a query reads it, evicted by bytes beyond
// worker.cache_max_bytes, prefetched when a new version becomes active, and
// dropped when its version is taken out of service. Over a file:// storage
// it reads the files in place instead, checking each before use.
package cache
