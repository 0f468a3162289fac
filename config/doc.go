// Package config owns the pgrollup configuration file (docs/configuration.md): reading it, filling
// defaults, applying environment overrides for secrets and endpoints, resolving relative
// paths against the file's directory, and validating everything up front, SQL snippets
// included, so that a config that loads does not fail later at build or query time.
//
// Every problem is reported at once as Errors, each naming file, line and field, because
// `pgrollup validate` and start-up print them for a person to fix in one pass.
//
// The package only describes intent. Matching queries to rollups (rewrite), building them
// (rollup) and serving them (proxy) interpret the settings; config guarantees they are
// well-formed.
package config
