// Package integrity decides when a rollup file is broken and acts on it
// (the README's "Broken rollup files"): a file missing from storage, differing from the size,
// SHA-256 or ETag its build recorded, or unreadable takes the active version
// that names it out of service in the catalog, which every router follows at
// once and which makes the scheduler rebuild the rollup; every process then
// drops what it holds of that version. The cache, the executors and the
// scheduler's scrub report to it; storage being unreachable never counts.
package integrity
