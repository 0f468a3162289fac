// Package advise proposes rollups from the statements a running pgrollup
// passed through to the warehouse (GET /api/misses): what a rollup must
// hold to answer each (rewrite.Needs), candidates merging them per fact
// table, a greedy choice by warehouse time saved per stored row with sizes
// from the warehouse's statistics, and a replay of every statement through
// the rewrite engine against the proposals. `pgrollup advise` prints the
// result as YAML to append to the config.
package advise
