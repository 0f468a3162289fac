// Package minio starts a throw-away MinIO server on loopback for tests that need real S3.
//
// MinIO is AGPL-licensed, so it is never a dependency of this module: the pinned release
// is built from its Go module with "go install" into a cache folder outside the module
// ($PGROLLUP_MINIO_CACHE, else the user cache directory under pgrollup/minio/VERSION) by
// `bash scripts/deps.sh minio`, which `make test` runs first (Build, through the command
// in ./build). The build takes minutes, once per machine; a file lock in the cache folder
// lets only one run at a time. Tests never build it: Binary, and so Start, wait for a
// build in progress and otherwise fail with the command to run.
package minio
