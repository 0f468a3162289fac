package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	_ "time/tzdata" // build_timezone and refresh zones must resolve in minimal containers without /usr/share/zoneinfo

	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// Default listen addresses (docs/configuration.md). Loopback, so a fresh install exposes nothing.
const (
	DefaultListen      = "127.0.0.1:7432"
	DefaultAdminListen = "127.0.0.1:7480"
)

// Defaults for the remaining settings (docs/configuration.md, which config/docs_test.go checks against them).
const (
	defaultDataDir       = "./data"
	defaultS3Region      = "us-east-1"
	defaultCacheMaxBytes = 10 * GB
	defaultDuckDBMemory  = 2 * GB
	defaultConcurrency   = 8
	defaultWorkerTimeout = Duration(5 * time.Second)
	defaultFinishMaxRows = 100_000
	// One hit in a hundred is checked against the warehouse, at most one a
	// second per proxy.
	defaultVerifyFraction     = 0.01
	defaultVerifyMaxPerMinute = 60
	defaultPrivilegeCacheTTL  = Duration(30 * time.Second)
	defaultResultCacheBytes   = 64 * MB
	defaultMaxMessageBytes    = 64 * MB
	defaultParseMaxBytes      = ByteSize(parselimit.DefaultMaxBytes)
	defaultParseMaxDepth      = parselimit.DefaultMaxDepth
	defaultParseMaxTokens     = parselimit.DefaultMaxTokens
	defaultBuildTimezone      = "UTC"
	defaultAuthRefresh        = Duration(time.Minute)
)

// Load reads, completes and validates the configuration file at path. On failure the error
// is either a read error or Errors, which prints one "file:line: field: message" per line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for a file already in memory; path names it in errors and anchors relative
// paths ("" means the working directory). The process environment may override settings,
// see ParseWithEnv.
func Parse(data []byte, path string) (*Config, error) {
	return ParseWithEnv(data, path, os.Getenv)
}

// envOverrides are the settings the environment may override: secrets, which should not
// sit in a file, and endpoints, which change between deployments of the same file.
var envOverrides = []struct {
	name, path string
	field      func(*Config) *string
}{
	{"PGROLLUP_WAREHOUSE_DSN", "warehouse.dsn", func(c *Config) *string { return &c.Warehouse.DSN }},
	{"PGROLLUP_NATS_URL", "nats.url", func(c *Config) *string { return &c.NATS.URL }},
	{"PGROLLUP_S3_ACCESS_KEY", "storage.s3.access_key", func(c *Config) *string { return &c.Storage.S3.AccessKey }},
	{"PGROLLUP_S3_SECRET_KEY", "storage.s3.secret_key", func(c *Config) *string { return &c.Storage.S3.SecretKey }},
	{"PGROLLUP_S3_ENDPOINT", "storage.s3.endpoint", func(c *Config) *string { return &c.Storage.S3.Endpoint }},
	{"PGROLLUP_ADMIN_TOKEN", "admin.token", func(c *Config) *string { return &c.Admin.Token }},
	{"PGROLLUP_LISTEN", "listen", func(c *Config) *string { return &c.Listen }},
	{"PGROLLUP_ADMIN_LISTEN", "admin.listen", func(c *Config) *string { return &c.Admin.Listen }},
	{"PGROLLUP_AUTH_DSN", "auth.dsn", func(c *Config) *string { return &c.Auth.DSN }},
}

// ParseWithEnv is Parse with the environment lookup injected (os.Getenv in production).
// These variables, when non-empty, replace the file's value: PGROLLUP_WAREHOUSE_DSN,
// PGROLLUP_NATS_URL, PGROLLUP_S3_ACCESS_KEY, PGROLLUP_S3_SECRET_KEY, PGROLLUP_S3_ENDPOINT,
// PGROLLUP_ADMIN_TOKEN, PGROLLUP_LISTEN, PGROLLUP_ADMIN_LISTEN and PGROLLUP_AUTH_DSN.
// Then defaults fill what is unset, relative paths are resolved against the directory of
// path, and the result is validated; all problems come back together as Errors.
func ParseWithEnv(data []byte, path string, getenv func(string) string) (*Config, error) {
	src := newSource(path)
	cfg := &Config{Path: path, src: src}
	errs, ok := decodeYAML(data, cfg, src)
	if !ok {
		return nil, errs.finish(cfg)
	}
	applyEnv(cfg, src, getenv)
	applyDefaults(cfg, src)
	resolvePaths(cfg, baseDir(path))
	fillLines(cfg, src)
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return nil, errs.finish(cfg)
	}
	return cfg, nil
}

// defaults is the configuration of an empty file: every default
// set, paths resolved against the working directory, no warehouse DSN, no tables or rollups,
// no environment overrides. It does not validate (the DSN is missing).
func defaults() *Config {
	c := &Config{}
	applyDefaults(c, nil)
	resolvePaths(c, baseDir(""))
	return c
}

func applyEnv(c *Config, src *source, getenv func(string) string) {
	if getenv == nil {
		return
	}
	for _, o := range envOverrides {
		if v := getenv(o.name); v != "" {
			*o.field(c) = v
			src.env[o.path] = o.name
		}
	}
}

// applyDefaults fills unset settings. Strings default when empty; numbers only when the
// key is absent, so that an explicit 0 is reported by validation rather than replaced.
func applyDefaults(c *Config, src *source) {
	defaultString(&c.Listen, DefaultListen)
	defaultString(&c.Admin.Listen, DefaultAdminListen)
	defaultString(&c.DataDir, defaultDataDir)
	defaultString(&c.Storage.S3.Region, defaultS3Region)
	defaultString(&c.Auth.CleartextWithoutTLS, CleartextLoopback)
	defaultString(&c.SchedPolicy, SchedBatch)
	defaultValue(src, "event_loop", &c.EventLoop, true)
	defaultString(&c.Routing.AnswerOn, AnswerAuto)
	defaultValue(src, "auth.outage_logins", &c.Auth.OutageLogins, true)
	defaultValue(src, "auth.refresh", &c.Auth.Refresh, defaultAuthRefresh)
	defaultString(&c.BuildTimezone, defaultBuildTimezone)
	defaultValue(src, "worker.cache_max_bytes", &c.Worker.CacheMaxBytes, defaultCacheMaxBytes)
	defaultValue(src, "worker.duckdb_memory_limit", &c.Worker.DuckDBMemoryLimit, defaultDuckDBMemory)
	defaultValue(src, "worker.concurrency", &c.Worker.Concurrency, defaultConcurrency)
	defaultValue(src, "routing.worker_timeout", &c.Routing.WorkerTimeout, defaultWorkerTimeout)
	defaultValue(src, "routing.privilege_cache_ttl", &c.Routing.PrivilegeCacheTTL, defaultPrivilegeCacheTTL)
	defaultValue(src, "routing.result_cache_bytes", &c.Routing.ResultCacheBytes, defaultResultCacheBytes)
	defaultValue(src, "routing.finish_max_rows", &c.Routing.FinishMaxRows, defaultFinishMaxRows)
	defaultValue(src, "routing.verify_fraction", &c.Routing.VerifyFraction, defaultVerifyFraction)
	defaultValue(src, "routing.verify_max_per_minute", &c.Routing.VerifyMaxPerMinute, defaultVerifyMaxPerMinute)
	defaultValue(src, "max_message_bytes", &c.MaxMessageBytes, defaultMaxMessageBytes)
	defaultValue(src, "limits.parse_max_bytes", &c.Limits.ParseMaxBytes, defaultParseMaxBytes)
	defaultValue(src, "limits.parse_max_depth", &c.Limits.ParseMaxDepth, defaultParseMaxDepth)
	defaultValue(src, "limits.parse_max_tokens", &c.Limits.ParseMaxTokens, defaultParseMaxTokens)
	for i := range c.Tables {
		for j := range c.Tables[i].Joins {
			join := &c.Tables[i].Joins[j]
			defaultString(&join.Type, JoinLeft)
			defaultString(&join.Relationship, RelationshipManyToOne)
		}
	}
	for i := range c.Rollups {
		defaultString(&c.Rollups[i].Refresh.Timezone, c.BuildTimezone)
	}
}

func defaultString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func defaultValue[T comparable](src *source, path string, v *T, def T) {
	var zero T
	if *v == zero && !src.isSet(path) {
		*v = def
	}
}

// baseDir is the absolute directory relative paths in the file at path are resolved against.
func baseDir(path string) string {
	dir := "."
	if path != "" {
		dir = filepath.Dir(path)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// resolvePaths makes every local path absolute, relative to the config file's directory,
// so that a service started from any working directory reads the same files. The storage
// and cache defaults live under data_dir, so they are derived after data_dir is resolved.
func resolvePaths(c *Config, base string) {
	c.DataDir = resolvePath(base, c.DataDir)
	if c.Storage.URL == "" {
		c.Storage.URL = fileURL(filepath.Join(c.DataDir, "rollups"))
	} else if p, ok := strings.CutPrefix(c.Storage.URL, "file://"); ok && p != "" {
		c.Storage.URL = fileURL(resolvePath(base, p))
	}
	if c.Worker.CacheDir == "" {
		c.Worker.CacheDir = filepath.Join(c.DataDir, "cache")
	} else {
		c.Worker.CacheDir = resolvePath(base, c.Worker.CacheDir)
	}
	c.TLS.CertFile = resolvePath(base, c.TLS.CertFile)
	c.TLS.KeyFile = resolvePath(base, c.TLS.KeyFile)
}

func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// fileURL writes an absolute directory as a file URL; the path is kept literally (no
// percent-encoding), and LocalDir reverses it.
func fileURL(dir string) string { return "file://" + filepath.ToSlash(dir) }

// fillLines copies entry lines into the exported Line fields, so the packages that build
// and match rollups can point at the config in their own messages.
func fillLines(c *Config, src *source) {
	for i := range c.Tables {
		c.Tables[i].Line = src.lines[fmt.Sprintf("tables[%d]", i)]
		for j := range c.Tables[i].Joins {
			c.Tables[i].Joins[j].Line = src.lines[fmt.Sprintf("tables[%d].joins[%d]", i, j)]
		}
	}
	for i := range c.Rollups {
		c.Rollups[i].Line = src.lines[fmt.Sprintf("rollups[%d]", i)]
	}
}

// Rollup returns the rollup with this exact name, or nil.
func (c *Config) Rollup(name string) *Rollup {
	for i := range c.Rollups {
		if c.Rollups[i].Name == name {
			return &c.Rollups[i]
		}
	}
	return nil
}

// Table returns the declared table with this name, or nil. Names compare as Postgres
// compares them: public.Orders finds public.orders, "Orders" does not. An unqualified name
// finds only an unqualified entry; search_path is the warehouse's business.
func (c *Config) Table(name string) *Table {
	key := relationKey(name)
	for i := range c.Tables {
		if relationKey(c.Tables[i].Name) == key {
			return &c.Tables[i]
		}
	}
	return nil
}

// BuildLocation is build_timezone as a location; UTC if the zone does not load, which a
// validated Config rules out.
func (c *Config) BuildLocation() *time.Location {
	loc, err := time.LoadLocation(c.BuildTimezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// LocalDir is the directory of a file:// storage URL; ok is false for other schemes.
func (s Storage) LocalDir() (dir string, ok bool) {
	p, ok := strings.CutPrefix(s.URL, "file://")
	return filepath.FromSlash(p), ok
}

// S3Location splits an s3://bucket/prefix storage URL; ok is false for other schemes.
// The prefix has no leading or trailing slash.
func (s Storage) S3Location() (bucket, prefix string, ok bool) {
	rest, ok := strings.CutPrefix(s.URL, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, strings.Trim(prefix, "/"), true
}

// Enabled reports whether client-side TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Redacted is a copy of c with every secret (the DSN's password, the S3 secret key, the
// admin token) replaced by xxxxx, for logs and status output.
func (c *Config) Redacted() *Config {
	cp := *c
	cp.Warehouse.DSN = RedactDSN(c.Warehouse.DSN)
	cp.Auth.DSN = RedactDSN(c.Auth.DSN)
	if cp.Storage.S3.SecretKey != "" {
		cp.Storage.S3.SecretKey = redactedMark
	}
	if cp.Admin.Token != "" {
		cp.Admin.Token = redactedMark
	}
	return &cp
}

// String is the effective configuration (defaults applied, paths resolved) as YAML, with
// secrets redacted; it parses back to the same settings.
func (c *Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c.Redacted()); err != nil {
		return fmt.Sprintf("<config: %v>", err)
	}
	return b.String()
}

// secrets are the values no error message may contain.
func (c *Config) secrets() []string {
	s := append(dsnSecrets(c.Warehouse.DSN), dsnSecrets(c.Auth.DSN)...)
	return append(s, c.Storage.S3.SecretKey, c.Admin.Token)
}
