// Package minio starts a throw-away MinIO server on loopback for tests that need real S3.
//
// MinIO is AGPL-licensed, so it is never a dependency of this module: on first use the
// package builds the pinned release from its Go module with "go install" into a cache
// folder outside the module ($PGROLLUP_MINIO_CACHE, else the user cache directory under
// pgrollup/minio/VERSION), and reuses the binary afterwards. The first build takes
// minutes; later starts take about a second.
package minio
